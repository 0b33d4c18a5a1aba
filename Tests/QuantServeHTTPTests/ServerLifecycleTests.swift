import Foundation
import XCTest
import QuantServe
import QuantServeHTTP

/// Clients that leave (mid-stream, mid-prefill, waiting for a whole answer), a full queue, and shutdown with
/// streams in flight, on the real default model (slow enough for a client to leave in the middle).
final class ServerLifecycleTests: XCTestCase {
    /// One sequence at a time and a small step budget: long prompts take many steps to prefill.
    static let shared = Result {
        try TestServer(path: try TestServer.defaultModel(), level: .int8,
                       options: EngineOptions(contextSize: 2048, scheduler: SchedulerOptions(maxSequences: 2, maxBatchTokens: 32),
                                              kvBlocks: 512),
                       idleTimeout: 2)
    }
    var server: TestServer { try! Self.shared.get() }
    override func setUpWithError() throws { _ = try Self.shared.get() }

    static let longPrompt = String(repeating: "The quick brown fox jumps over the lazy dog while the cat sleeps. ", count: 60)

    /// Waits until `condition` holds, at most `seconds`.
    func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(10_000)
        }
        return try condition()
    }

    func testDisconnectMidStreamFreesTheBlocks() throws {
        let c = try RawHTTPClient(port: server.port)
        c.sendRequest("POST", "/v1/completions", body: Array(#"{"prompt": "def quicksort(a):", "max_tokens": 400, "ignore_eos": true, "stream": true}"#.utf8))
        XCTAssertEqual(c.readHead()?.0, 200)
        for _ in 0..<3 { XCTAssertNotNil(c.readChunk()) }
        XCTAssertGreaterThan(server.engine.metrics.kvBlocksUsed, 0)
        let cancelledBefore = server.engine.metrics.requestsCancelled
        c.hangUp()
        XCTAssertTrue(eventually { server.engine.metrics.kvBlocksUsed == 0 }, "blocks still held after the client left")
        XCTAssertEqual(server.engine.metrics.requestsCancelled, cancelledBefore + 1)
        XCTAssertLessThan(server.engine.metrics.generatedTokens, 400)
        XCTAssertEqual(try server.metric("quantserve:kv_cache_usage_perc{"), 0)
        XCTAssertEqual(try server.request("GET", "/health").status, 200)
    }

    func testDisconnectDuringPrefillCancels() throws {
        let c = try RawHTTPClient(port: server.port)
        c.sendRequest("POST", "/v1/completions", body: Array(#"{"prompt": "\#(Self.longPrompt)", "max_tokens": 50, "stream": true}"#.utf8))
        XCTAssertTrue(eventually { server.engine.metrics.kvBlocksUsed > 0 })
        let generated = server.engine.metrics.generatedTokens
        c.hangUp()
        XCTAssertTrue(eventually { server.engine.metrics.kvBlocksUsed == 0 && server.engine.metrics.runningSequences == 0 })
        XCTAssertEqual(server.engine.metrics.generatedTokens, generated, "the prefill was stopped before its first token")
    }

    func testDisconnectFromAPlainRequestCancels() throws {
        let c = try RawHTTPClient(port: server.port)
        c.sendRequest("POST", "/v1/chat/completions", body: Array(#"{"messages": [{"role": "user", "content": "Count to 500"}], "max_tokens": 400, "ignore_eos": true}"#.utf8))
        XCTAssertTrue(eventually { server.engine.metrics.generatedTokens > 0 && server.engine.metrics.runningSequences > 0 })
        let cancelled = server.engine.metrics.requestsCancelled
        c.hangUp()
        XCTAssertTrue(eventually { server.engine.metrics.kvBlocksUsed == 0 })
        XCTAssertEqual(server.engine.metrics.requestsCancelled, cancelled + 1)
    }

    func testAFullQueueAnswers429() throws {
        var options = EngineOptions(contextSize: 512, scheduler: SchedulerOptions(maxSequences: 1, maxBatchTokens: 64))
        options.maxWaiting = 1
        let small = try TestServer(path: try TestServer.defaultModel(), level: .int8, options: options)
        defer { small.stop() }
        let running = try RawHTTPClient(port: small.port)
        running.sendRequest("POST", "/v1/completions", body: Array(#"{"prompt": "a", "max_tokens": 100, "ignore_eos": true, "stream": true}"#.utf8))
        XCTAssertEqual(running.readHead()?.0, 200)
        _ = running.readChunk()
        let waiting = try RawHTTPClient(port: small.port)
        waiting.sendRequest("POST", "/v1/completions", body: Array(#"{"prompt": "b", "max_tokens": 2, "stream": true}"#.utf8))
        XCTAssertTrue(eventually { small.engine.metrics.queuedRequests == 1 })
        let refused = try small.request("POST", "/v1/completions", json: #"{"prompt": "c", "max_tokens": 2}"#)
        XCTAssertEqual(refused.status, 429)
        XCTAssertEqual(refused.headers["retry-after"], "1")
        XCTAssertEqual(refused.error?["type"] as? String, "rate_limit_error")
        running.hangUp()
        // The waiting stream gets its answer once the first is gone, even though it waited longer than no client
        // activity would allow a connection (2 s here is the idle timeout of `server`, 30 s of this one).
        let r = try XCTUnwrap(waiting.readResponse())
        XCTAssertEqual(sseEvents(r.text).last, "[DONE]")
    }

    /// Waiting for the engine is not idleness: a stream queued for longer than the idle timeout is still answered.
    func testQueuedStreamOutlivesTheIdleTimeout() throws {
        let long = try RawHTTPClient(port: server.port)
        long.sendRequest("POST", "/v1/completions", body: Array(#"{"prompt": "x", "max_tokens": 120, "ignore_eos": true}"#.utf8))
        let long2 = try RawHTTPClient(port: server.port)
        long2.sendRequest("POST", "/v1/completions", body: Array(#"{"prompt": "y", "max_tokens": 120, "ignore_eos": true}"#.utf8))
        XCTAssertTrue(eventually { server.engine.metrics.runningSequences == 2 })
        let queued = try RawHTTPClient(port: server.port)
        let started = Date()
        queued.sendRequest("POST", "/v1/completions", body: Array(#"{"prompt": "z", "max_tokens": 3, "stream": true}"#.utf8))
        let r = try XCTUnwrap(queued.readResponse(), "the queued stream was cut")
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 2, "it waited longer than the idle timeout")
        XCTAssertEqual(sseEvents(r.text).last, "[DONE]")
        XCTAssertEqual(long.readResponse()?.status, 200)
        XCTAssertEqual(long2.readResponse()?.status, 200)
    }

    /// A client that never reads its stream: the engine does not wait for it (the sequence finishes and frees its
    /// blocks), other clients are answered meanwhile, and the connection is closed after the idle timeout.
    func testAClientThatDoesNotReadHoldsNothing() throws {
        let stuck = try RawHTTPClient(port: server.port, receiveBuffer: 2048)
        stuck.sendRequest("POST", "/v1/completions", body: Array(#"{"prompt": "x", "max_tokens": 120, "ignore_eos": true, "stream": true, "logprobs": 5}"#.utf8))
        XCTAssertTrue(eventually { server.engine.metrics.runningSequences == 1 })
        let other = try server.request("POST", "/v1/completions", json: #"{"prompt": "y", "max_tokens": 4}"#)
        XCTAssertEqual(other.status, 200)
        XCTAssertTrue(eventually(20) { server.engine.metrics.runningSequences == 0 && server.engine.metrics.kvBlocksUsed == 0 },
                      "the engine waited for a client that does not read")
        // The server closes the connection once it has been idle (unable to write, or done) for 2 s.
        sleep(4)
        XCTAssertTrue(stuck.drainUntilClosed(seconds: 10), "the connection is still open")
        XCTAssertEqual(try server.request("GET", "/health").status, 200)
    }

    /// A connection that sends nothing is closed after the idle timeout and holds nothing.
    func testIdleConnectionIsClosed() throws {
        let c = try RawHTTPClient(port: server.port)
        c.send(Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro".utf8))
        let started = Date()
        XCTAssertNil(c.readResponse())
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        XCTAssertEqual(try server.request("GET", "/health").status, 200)
    }
}
