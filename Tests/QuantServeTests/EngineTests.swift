import Synchronization
import XCTest
@testable import QuantServe

/// The engine on the real default model at int8: batching, preemption and the prefix cache never change a
/// sequence's output, and every block comes back.
final class EngineTests: XCTestCase {
    static let prompts = [
        "def fibonacci(n):",
        "The three laws of thermodynamics are",
        "import json\n\ndef load_config(path):\n    \"\"\"Read a JSON configuration file and return it as a dict.\"\"\"\n",
        "SELECT name, COUNT(*) FROM orders",
        "Once upon a time, in a village by the sea,",
        "#include <stdio.h>\n\nint main(void) {\n",
        "A haiku about autumn:\n",
        "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n",
        "Q: What is the capital of Australia?\nA:",
        "function debounce(fn, ms) {",
        "The quick brown fox",
        "// Binary search over a sorted array of integers.\nint binary_search(const int *a, int n, int key) {\n",
        "Rust's ownership rules say that",
        "fn main() {\n    let v = vec![1, 2, 3];\n",
        "List three prime numbers greater than 100:",
        String(repeating: "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", count: 12) + "In summary,",
    ]

    func requests(_ engine: Engine, maxTokens: Int = 24) -> [GenerationRequest] {
        Self.prompts.map {
            GenerationRequest(prompt: engine.tokenizer.encode($0, addSpecial: true, parseSpecial: false),
                              maxTokens: maxTokens, sampling: .greedy)
        }
    }

    /// Each prompt's greedy output run alone, on an engine of its own with default options (computed once).
    private static let aloneCache = Mutex<[[Int32]]?>(nil)
    func aloneOutputs() throws -> [[Int32]] {
        if let cached = Self.aloneCache.withLock({ $0 }) { return cached }
        let engine = try Engine.load(try Fixtures.defaultModelPath(), level: .int8)
        let outputs = try requests(engine).map { try engine.complete([$0])[0].tokens }
        Self.aloneCache.withLock { $0 = outputs }
        return outputs
    }

    func testBatchedGreedyOutputEqualsEachPromptAlone() throws {
        // A small step budget, so long prompts are prefilled in chunks beside the others' decoding.
        var options = EngineOptions()
        options.scheduler = SchedulerOptions(maxSequences: 16, maxBatchTokens: 64)
        let engine = try Engine.load(try Fixtures.defaultModelPath(), level: .int8, options: options)
        let requests = requests(engine)
        let single = try aloneOutputs()
        let batched = try engine.complete(requests)
        for (i, (a, b)) in zip(single, batched).enumerated() {
            XCTAssertNil(b.error)
            XCTAssertEqual(a, b.tokens, "prompt \(i) alone vs in a batch of \(requests.count)")
        }
        let m = engine.settledMetrics()
        XCTAssertEqual(m.kvBlocksUsed, 0, "every block is released")
        XCTAssertEqual(m.requestsFinished, requests.count)
        XCTAssertGreaterThan(m.steps, 0)
    }

    func testPreemptionKeepsOutputsAndEverySequenceFinishes() throws {
        // 40 blocks hold 640 tokens: 16 sequences of 20-160 tokens cannot all fit.
        var options = EngineOptions()
        options.kvBlocks = 40
        let engine = try Engine.load(try Fixtures.defaultModelPath(), level: .int8, options: options)
        let requests = requests(engine)
        let single = try aloneOutputs()
        let batched = try engine.complete(requests)
        for (i, r) in batched.enumerated() {
            XCTAssertNil(r.error, "prompt \(i)")
            XCTAssertNotNil(r.summary, "prompt \(i) finished")
        }
        for (i, a) in single.enumerated() { XCTAssertEqual(a, batched[i].tokens, "prompt \(i) alone vs preempted batch") }
        let m = engine.settledMetrics()
        XCTAssertGreaterThan(m.preemptions, 0, "the pool was small enough to force preemption")
        XCTAssertEqual(m.kvBlocksUsed, 0)
    }

    func testPrefixCacheHitGivesTheSameLogitsAsAColdRun() throws {
        let engine = try Engine.load(try Fixtures.defaultModelPath(), level: .int8)
        let system = "You are a careful assistant. Answer in one short sentence, never make up facts, and say so "
            + "plainly when you do not know. Prefer simple words over jargon. "
        let prompt = engine.tokenizer.encode(system + "What is a KV cache?", addSpecial: true, parseSpecial: false)
        XCTAssertGreaterThan(prompt.count, 32)
        let request = GenerationRequest(prompt: prompt, maxTokens: 8, sampling: .greedy, logprobs: 5)
        let cold = try engine.complete([request])[0]
        let warm = try engine.complete([request])[0]
        XCTAssertEqual(cold.summary?.cachedPromptTokens, 0)
        XCTAssertEqual(warm.summary?.cachedPromptTokens, (prompt.count - 1) / 16 * 16)
        XCTAssertEqual(cold.tokens, warm.tokens)
        XCTAssertEqual(cold.logprobs, warm.logprobs, "bit-identical log-probabilities with and without the cached prefix")
        // A different question after the same system prompt reuses its blocks too.
        let other = engine.tokenizer.encode(system + "Why is the sky blue?", addSpecial: true, parseSpecial: false)
        let shared = zip(prompt, other).prefix { $0 == $1 }.count
        let third = try engine.complete([GenerationRequest(prompt: other, maxTokens: 2, sampling: .greedy)])[0]
        XCTAssertEqual(third.summary?.cachedPromptTokens, shared / 16 * 16)
        XCTAssertEqual(engine.settledMetrics().kvBlocksUsed, 0)
    }

    func testCancellationFreesBlocksAndTheEngineGoesOn() async throws {
        let engine = try Engine.load(try Fixtures.defaultModelPath(), level: .int8)
        let prompt = engine.tokenizer.encode("Write a long story about a lighthouse.", addSpecial: true, parseSpecial: false)
        // The consumer walks away after three tokens.
        var seen = 0
        for try await event in try engine.stream(GenerationRequest(prompt: prompt, maxTokens: 500, sampling: .greedy,
                                                                   ignoreEndOfGeneration: true)) {
            if case .token = event { seen += 1 }
            if seen == 3 { break }
        }
        // And one cancelled by id.
        let finished = expectation(description: "cancelled")
        let id = try engine.submit(GenerationRequest(prompt: prompt, maxTokens: 500, ignoreEndOfGeneration: true)) { event in
            if case .finished(let s) = event, s.finishReason == .cancelled { finished.fulfill() }
        }
        engine.cancel(id)
        await fulfillment(of: [finished], timeout: 30)
        let m = engine.settledMetrics()
        XCTAssertEqual(m.kvBlocksUsed, 0)
        XCTAssertEqual(m.requestsCancelled, 2)
        let after = try engine.complete([GenerationRequest(prompt: prompt, maxTokens: 3, sampling: .greedy)])[0]
        XCTAssertEqual(after.tokens.count, 3, "the engine serves on")
    }

    func testRequestErrorsAreClearAndLeaveTheEngineServing() throws {
        var options = EngineOptions()
        options.contextSize = 64
        options.kvBlocks = 3
        let engine = try Engine.load(try Fixtures.defaultModelPath(), level: .int8, options: options)
        let ok = GenerationRequest(prompt: [9707, 11], maxTokens: 2, sampling: .greedy)
        func rejects(_ r: GenerationRequest, _ expected: EngineError) {
            XCTAssertThrowsError(try engine.submit(r) { _ in }) { XCTAssertEqual($0 as? EngineError, expected) }
        }
        var r = ok; r.prompt = []
        rejects(r, .invalidRequest("the prompt is empty (no tokens)"))
        r = ok; r.prompt = Array(repeating: 11, count: 64)
        rejects(r, .promptTooLong(tokens: 64, contextSize: 64))
        r = ok; r.prompt = [-5]
        rejects(r, .invalidRequest("token id -5 is outside the vocabulary of 151936"))
        r = ok; r.maxTokens = 60
        rejects(r, .exceedsCache(blocksNeeded: 4, blocksInPool: 3))
        r = ok; r.sampling.topP = 0
        XCTAssertThrowsError(try engine.submit(r) { _ in })
        r = ok; r.logprobs = 100
        XCTAssertThrowsError(try engine.submit(r) { _ in })
        XCTAssertEqual(try engine.complete([ok])[0].tokens.count, 2)
        XCTAssertThrowsError(try EngineOptions(scheduler: SchedulerOptions(maxSequences: 0)).validate())
    }

    func testStopStringsSeedsAndMaxTokens() throws {
        let engine = try Engine.load(try Fixtures.defaultModelPath(), level: .int8)
        let prompt = engine.tokenizer.encode("def add(a, b):\n", addSpecial: true, parseSpecial: false)
        let plain = try engine.complete([GenerationRequest(prompt: prompt, maxTokens: 16, sampling: .greedy)])[0]
        XCTAssertEqual(plain.summary?.finishReason, .length)
        XCTAssertEqual(plain.tokens.count, 16)
        // Stop at the first "return": the text ends right before it.
        let stopped = try engine.complete([GenerationRequest(prompt: prompt, maxTokens: 16, sampling: .greedy,
                                                             stop: ["return"])])[0]
        XCTAssertEqual(stopped.summary?.finishReason, .stop)
        let cut = try XCTUnwrap(plain.text.range(of: "return"), "the greedy text has a return: \(plain.text.debugDescription)")
        XCTAssertEqual(stopped.text, String(plain.text[..<cut.lowerBound]))
        // A seed makes sampling reproducible, alone or beside other requests.
        let sampled = GenerationRequest(prompt: prompt, maxTokens: 12,
                                        sampling: SamplingParameters(temperature: 1, topK: 0, topP: 1, seed: 1234))
        let first = try engine.complete([sampled])[0].tokens
        let crowd = try engine.complete([sampled, GenerationRequest(prompt: [9707], maxTokens: 12), sampled])
        XCTAssertEqual(first, crowd[0].tokens)
        XCTAssertEqual(first, crowd[2].tokens)
    }
}
