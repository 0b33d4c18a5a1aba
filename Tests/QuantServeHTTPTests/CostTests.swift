import Foundation
import XCTest
@testable import QuantServe
@testable import QuantServeHTTP

/// `usage.cost` in every answer: each request's share of the engine's steps (by its tokens), at `--usd-per-hour`.
final class CostTests: XCTestCase {
    func testEveryAnswerCarriesItsCostAndTheyAddUpToTheBusyTime() throws {
        let server = try TestServer()
        defer { server.stop() }
        let rate = server.api.metrics.usdPerHour
        XCTAssertEqual(rate, APIServerOptions.defaultUSDPerHour)
        var charged = 0.0
        // Plain, streamed and several choices at once, some running side by side.
        let bodies = [#"{"prompt": "hello there", "max_tokens": 16, "ignore_eos": true}"#,
                      #"{"prompt": "a b c", "max_tokens": 8, "n": 2, "ignore_eos": true}"#,
                      #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 12, "ignore_eos": true}"#]
        for (i, body) in bodies.enumerated() {
            let route = i == 2 ? "/v1/chat/completions" : "/v1/completions"
            let r = try server.request("POST", route, json: body)
            XCTAssertEqual(r.status, 200, r.text)
            let usage = try XCTUnwrap((r.json as? [String: Any])?["usage"] as? [String: Any])
            let cost = try XCTUnwrap(usage["cost"] as? [String: Double], "\(usage)")
            let seconds = try XCTUnwrap(cost["cpu_seconds"]), usd = try XCTUnwrap(cost["usd"])
            XCTAssertGreaterThan(seconds, 0)
            XCTAssertEqual(usd, seconds * rate / 3600, accuracy: 1e-12)
            charged += seconds
        }
        let stream = try server.request("POST", "/v1/completions", json: #"{"prompt": "x", "max_tokens": 6, "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}}"#)
        let last = try XCTUnwrap(sseEvents(stream.text).dropLast().last)
        let usage = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])?["usage"] as? [String: Any])
        charged += try XCTUnwrap((usage["cost"] as? [String: Double])?["cpu_seconds"])
        // Every step's time went to the requests in it: the charges add up to the engine's busy time.
        let busy = server.settledMetrics().busySeconds
        XCTAssertEqual(charged, busy, accuracy: busy * 0.01 + 1e-6)
        let total = try XCTUnwrap(try server.metric("quantserve:cost_usd_total{"))
        XCTAssertEqual(total, charged * rate / 3600, accuracy: charged * rate / 3600 * 0.01 + 1e-12)
    }

    /// A repeated prompt's cached tokens are valued at the measured prefill time per token.
    func testPrefixCacheSavingsAreCounted() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ids = (0..<96).map { String(100 + $0 % 60) }.joined(separator: ", ")
        XCTAssertEqual(try server.metric("quantserve:prefix_cache_saved_seconds_total{"), 0)
        for _ in 0..<2 {
            let r = try server.request("POST", "/v1/completions", json: #"{"prompt": [\#(ids)], "max_tokens": 2}"#)
            XCTAssertEqual(r.status, 200, r.text)
        }
        let m = server.settledMetrics()
        XCTAssertGreaterThan(m.prefixCacheHitTokens, 0)
        XCTAssertGreaterThan(m.prefillSecondsPerToken, 0)
        XCTAssertEqual(m.prefixCacheSavedSeconds, Double(m.prefixCacheHitTokens) * m.prefillSecondsPerToken,
                       accuracy: m.prefixCacheSavedSeconds * 0.5, "hits valued at about the measured rate")
        XCTAssertEqual(try XCTUnwrap(try server.metric("quantserve:prefix_cache_saved_seconds_total{")),
                       m.prefixCacheSavedSeconds, accuracy: 1e-9)
    }
}
