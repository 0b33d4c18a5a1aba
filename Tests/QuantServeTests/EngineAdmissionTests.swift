import Synchronization
import XCTest
@testable import QuantServe

/// The bounded waiting queue, request phases and times, and prompt copies that share KV blocks (tiny model).
final class EngineAdmissionTests: XCTestCase {
    func tinyEngine(maxWaiting: Int = 256) throws -> Engine {
        var options = EngineOptions(contextSize: 256)
        options.maxWaiting = maxWaiting
        return try Engine.load(try Fixtures.path("tiny-qwen2.gguf"), level: .int8, options: options)
    }

    func testSubmissionsOverTheQueueBoundAreRefusedWhole() throws {
        let engine = try tinyEngine(maxWaiting: 2)
        let request = GenerationRequest(prompt: [1, 2, 3], maxTokens: 4, sampling: .greedy)
        XCTAssertThrowsError(try engine.submit(copies: [request, request, request], handlers: [{ _ in }, { _ in }, { _ in }])) {
            XCTAssertEqual($0 as? EngineError, .queueFull(limit: 2))
        }
        XCTAssertEqual(engine.metrics.queuedRequests, 0, "a refused group takes no place")
        let results = try engine.complete([request, request])
        XCTAssertTrue(results.allSatisfy { $0.error == nil })
        XCTAssertEqual(engine.settledMetrics().queuedRequests, 0)
    }

    func testSummaryTimesAreOrdered() throws {
        let engine = try tinyEngine()
        let r = try engine.complete([GenerationRequest(prompt: [1, 2, 3, 4], maxTokens: 5, sampling: .greedy)])[0]
        let s = try XCTUnwrap(r.summary)
        XCTAssertGreaterThanOrEqual(s.queueSeconds, 0)
        XCTAssertLessThanOrEqual(s.queueSeconds, s.timeToFirstToken)
        XCTAssertLessThanOrEqual(s.timeToFirstToken, s.totalSeconds)
        XCTAssertEqual(s.preemptions, 0)
    }

    /// Copies of a prompt wait for its first computation, then read its full blocks from the prefix cache; greedy
    /// copies give the same tokens as the original.
    func testCopiesShareThePromptAndMatchIt() throws {
        let engine = try tinyEngine()
        let prompt = (0..<70).map { Int32($0 % 500 + 3) }
        let request = GenerationRequest(prompt: prompt, maxTokens: 6, sampling: .greedy)
        let outputs = Mutex([[Int32]](repeating: [], count: 3))
        let done = DispatchGroup()
        let handlers: [@Sendable (TokenEvent) -> Void] = (0..<3).map { i in
            done.enter()
            return { event in
                switch event {
                case .token(let t): outputs.withLock { $0[i].append(t.id) }
                case .finished, .failed: done.leave()
                }
            }
        }
        _ = try engine.submit(copies: [request, request, request], handlers: handlers)
        done.wait()
        let o = outputs.withLock { $0 }
        XCTAssertEqual(o[0], o[1])
        XCTAssertEqual(o[0], o[2])
        let m = engine.settledMetrics()
        XCTAssertEqual(m.prefixCacheHitTokens, 2 * 64, "each copy reused the prompt's four full blocks")
        XCTAssertEqual(m.kvBlocksUsed, 0)
    }

    /// `/health` turns 503 only for a loop that is awake with work and has made no step for the limit.
    func testStallRule() {
        let now = DispatchTime.now()
        var m = EngineMetrics()
        m.lastProgress = now.uptimeNanoseconds - 31_000_000_000
        XCTAssertFalse(m.isStalled(after: 30, now: now), "no work: not stalled")
        m.runningSequences = 1
        XCTAssertTrue(m.isStalled(after: 30, now: now))
        m.loopIdle = true
        XCTAssertFalse(m.isStalled(after: 30, now: now), "asleep waiting for work: a submission wakes it")
        m.loopIdle = false
        m.runningSequences = 0
        m.queuedRequests = 2
        XCTAssertTrue(m.isStalled(after: 30, now: now))
        m.lastProgress = now.uptimeNanoseconds - 1_000_000_000
        XCTAssertFalse(m.isStalled(after: 30, now: now))
    }

    /// A request the forward pass refuses (here a token outside the vocabulary, which `submit` would have refused)
    /// fails alone with an error; the requests in the same step go on to finish.
    func testAFaultyRequestFailsAloneInItsStep() throws {
        let engine = try tinyEngine()
        let good = GenerationRequest(prompt: [1, 2, 3, 4, 5], maxTokens: 8, sampling: .greedy)
        let expected = try engine.complete([good])[0].tokens
        let events = Mutex<[Int: [TokenEvent]]>([:])
        let done = DispatchGroup()
        func handler(_ i: Int) -> @Sendable (TokenEvent) -> Void {
            done.enter()
            return { event in
                events.withLock { $0[i, default: []].append(event) }
                switch event { case .finished, .failed: done.leave(); default: break }
            }
        }
        let bad = GenerationRequest(prompt: [1, 2, Int32(engine.description.configuration.vocabularySize) + 7], maxTokens: 8)
        _ = try engine.mailbox.submit([good, bad, good], sharingPrompt: false, maxWaiting: 256,
                                      handlers: [handler(0), handler(1), handler(2)])
        done.wait()
        let e = events.withLock { $0 }
        guard case .failed(.internalError(let message))? = e[1]?.last else { return XCTFail("the faulty request did not fail: \(String(describing: e[1]))") }
        XCTAssertTrue(message.contains("outside") || message.contains("vocabulary"), message)
        for i in [0, 2] {
            let tokens = e[i]!.compactMap { if case .token(let t) = $0 { return t.id } else { return nil } }
            XCTAssertEqual(tokens, expected, "request \(i) in the faulty step")
            guard case .finished? = e[i]!.last else { return XCTFail("request \(i) did not finish") }
        }
        XCTAssertEqual(engine.settledMetrics().kvBlocksUsed, 0)
    }
}
