import Foundation
import XCTest
@testable import QuantServe
@testable import QuantServeHTTP

/// Shadow measurement: a sampled request's first tokens are replayed on another level and the two distributions
/// compared position by position. Against an identical engine the replay must agree exactly (same top-1 at every
/// position, KL divergence ~0): an answer compared off by one position, or against the wrong prompt, would not.
final class ShadowMeasurementTests: XCTestCase {
    func waitForComparisons(_ pair: ShadowPair, _ count: Int) -> ShadowPair.Totals {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, pair.snapshot.compared + pair.snapshot.failed + pair.snapshot.empty < count { usleep(20_000) }
        return pair.snapshot
    }

    func testAShadowOfTheSameLevelAgreesExactlyAndALowerLevelIsMeasured() throws {
        let server = try TestServer(level: .fp16, name: "t:fp16",
                                    more: [("t:copy", .fp16, nil), ("t:int4", .int4, nil)]) { o in
            o.shadows = [ServerConfig.Shadow(from: "t:fp16", to: "t:copy", rate: 1, tokens: 8),
                         ServerConfig.Shadow(from: "t:copy", to: "t:int4", rate: 1, tokens: 8)]
        }
        defer { server.stop() }
        let same = try XCTUnwrap(server.api.shadows.first { $0.to.name == "t:copy" })
        let lower = try XCTUnwrap(server.api.shadows.first { $0.to.name == "t:int4" })
        for (i, prompt) in ["the cat sat on the", "one two three", "hello world, this is"].enumerated() {
            // Sampled at temperature 1, greedy, and streamed: the replay forces the tokens the client got.
            let extra = i == 0 ? #", "temperature": 1"# : i == 1 ? #", "temperature": 0"# : #", "stream": true"#
            let r = try server.request("POST", "/v1/completions",
                                       json: #"{"model": "t:fp16", "prompt": "\#(prompt)", "max_tokens": 12, "ignore_eos": true\#(extra)}"#)
            XCTAssertEqual(r.status, 200, r.text)
            _ = waitForComparisons(same, i + 1)
        }
        let t = same.snapshot
        XCTAssertEqual(t.compared, 3, "\(t)")
        XCTAssertEqual(t.tokens, 24)
        XCTAssertEqual(t.sameTop1, 24)
        XCTAssertLessThan(t.klSum / Double(t.tokens), 1e-4)
        // The greedy answer's tokens are the shadow's own top-1 choices.
        XCTAssertGreaterThanOrEqual(t.sameServed, 8)

        // A lower level: measured, in range, and counted in /metrics and the report.
        for prompt in ["a b c d", "the quick brown fox"] {
            let r = try server.request("POST", "/v1/completions",
                                       json: #"{"model": "t:copy", "prompt": "\#(prompt)", "max_tokens": 8, "temperature": 0, "ignore_eos": true}"#)
            XCTAssertEqual(r.status, 200, r.text)
            _ = waitForComparisons(lower, 1)
        }
        let l = waitForComparisons(lower, 2)
        XCTAssertEqual(l.compared, 2, "\(l)")
        XCTAssertGreaterThan(l.klSum, 0)
        let metrics = try server.request("GET", "/metrics").text
        XCTAssertTrue(metrics.contains(#"quantserve:shadow_same_top1_ratio{from="t:fp16",to="t:copy"} 1.0"#), metrics)
        XCTAssertTrue(metrics.contains(#"quantserve:shadow_tokens_compared_total{from="t:copy",to="t:int4"} \#(l.tokens)"#), metrics)
        XCTAssertTrue(metrics.contains(#"quantserve:shadow_kld_mean{from="t:copy",to="t:int4"}"#), metrics)
        let report = try XCTUnwrap(try server.request("GET", "/v1/quantserve/report").json as? [String: Any])
        let rows = try XCTUnwrap(report["models"] as? [[String: Any]])
        let shadow = try XCTUnwrap((rows.first { $0["model"] as? String == "t:fp16" }?["shadow"] as? [[String: Any]])?.first)
        XCTAssertEqual(shadow["to"] as? String, "t:copy")
        XCTAssertEqual(shadow["same_top1"] as? Double, 1.0)
        XCTAssertEqual(shadow["tokens"] as? Int, 24)
    }

    /// A busy shadow is not given work: the sample is skipped, counted, and the client's answer is unaffected.
    func testABusyShadowIsSkipped() throws {
        let server = try TestServer(level: .fp16, name: "t:fp16", more: [("t:int8", .int8, nil)]) { o in
            o.shadows = [ServerConfig.Shadow(from: "t:fp16", to: "t:int8", rate: 1, tokens: 4)]
        }
        defer { server.stop() }
        let pair = try XCTUnwrap(server.api.shadows.first)
        // Keep the shadow busy with a long generation of its own.
        let busy = DispatchGroup()
        busy.enter()
        DispatchQueue.global().async {
            _ = try? server.request("POST", "/v1/completions", json: #"{"model": "t:int8", "prompt": "x", "max_tokens": 240, "ignore_eos": true}"#)
            busy.leave()
        }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, server.models[1].engine!.metrics.runningSequences == 0 { usleep(2_000) }
        let r = try server.request("POST", "/v1/completions", json: #"{"model": "t:fp16", "prompt": "y", "max_tokens": 4}"#)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(pair.snapshot.skippedBusy, 1)
        XCTAssertEqual(pair.snapshot.compared, 0)
        XCTAssertEqual(busy.wait(timeout: .now() + 30), .success)
    }
}
