import Foundation
import XCTest
@testable import QuantServe
@testable import QuantServeHTTP

/// The report sums what the server did per model over a window; and the issue's check in small: two levels behind a
/// router, under a load that fills the top level's queue, step down instead of waiting, with no errors, every answer
/// carrying a cost that sums to the engines' busy time at the hourly rate.
final class ReportAndLoadTests: XCTestCase {
    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var items: [(status: Int, model: String, header: String, usd: Double, seconds: Double)] = []
        func add(_ r: RawHTTPClient.Response) {
            let o = r.json as? [String: Any]
            let cost = ((o?["usage"] as? [String: Any])?["cost"] as? [String: Any]) ?? [:]
            lock.lock()
            items.append((r.status, o?["model"] as? String ?? "", r.headers["x-quantserve-model"] ?? "",
                          cost["usd"] as? Double ?? -1, cost["cpu_seconds"] as? Double ?? -1))
            lock.unlock()
        }
    }

    func testUnderLoadRequestsStepDownAndCostsAddUpToTheBusyTime() throws {
        // The top level runs one sequence at a time, so a crowd of requests fills its queue at once; the tiny model
        // is fast, so the bound on the expected wait is small too.
        var top = EngineOptions()
        top.scheduler.maxSequences = 1
        let server = try TestServer(level: .fp16, options: top, name: "t:fp16", more: [("t:int8", .int8, EngineOptions())]) { o in
            o.routers = [ServerConfig.Router(name: "auto", ladder: ["t:fp16", "t:int8"],
                                             rules: [RouterRule(name: "hard", anyWords: ["debug"], target: .top)],
                                             maxWaitSeconds: 0.01)]
        }
        defer { server.stop() }
        let results = Results()
        // Threads of their own, all at once (the dispatch pool would run only a few blocking clients at a time).
        let threads = (0..<12).map { i in
            Thread {
                if let r = try? server.request("POST", "/v1/completions",
                                               json: #"{"model": "auto", "prompt": "debug this \#(i)", "max_tokens": 120, "ignore_eos": true}"#) {
                    results.add(r)
                }
            }
        }
        threads.forEach { $0.start() }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, results.items.count < 12 { usleep(10_000) }
        let items = results.items
        XCTAssertEqual(items.count, 12)
        XCTAssertTrue(items.allSatisfy { $0.status == 200 }, "\(items)")
        XCTAssertTrue(items.allSatisfy { $0.model == $0.header })
        let down = items.filter { $0.model == "t:int8" }.count
        XCTAssertGreaterThan(down, 0, "nothing stepped down: \(items)")
        XCTAssertGreaterThan(items.count - down, 0)
        let metrics = try server.request("GET", "/metrics").text
        XCTAssertTrue(metrics.contains(#"quantserve:router_decisions_total{router="auto",target="t:int8",reason="load"} \#(down)"#), metrics)

        // Every answer's cost, summed, is the engines' busy time at the hourly rate (within 10%; here ~exact).
        let busy = server.models.reduce(0.0) { s, m in
            let deadline = Date().addingTimeInterval(5)
            while Date() < deadline, m.engine!.metrics.runningSequences > 0 { usleep(5_000) }
            return s + m.engine!.metrics.busySeconds
        }
        let rate = server.api.metrics.usdPerHour
        let usd = items.reduce(0) { $0 + $1.usd }
        XCTAssertEqual(usd, busy * rate / 3600, accuracy: busy * rate / 3600 * 0.1)

        // The report: requests, tokens and cost per model, and the router's decisions.
        let report = try XCTUnwrap(try server.request("GET", "/v1/quantserve/report?window=600").json as? [String: Any])
        let rows = try XCTUnwrap(report["models"] as? [[String: Any]])
        let int8 = try XCTUnwrap(rows.first { $0["model"] as? String == "t:int8" })
        XCTAssertEqual(int8["requests"] as? Int, down)
        XCTAssertEqual(int8["completion_tokens"] as? Int, down * 120)
        let routed = try XCTUnwrap((int8["routed"] as? [[String: Any]])?.first)
        XCTAssertEqual(routed["reason"] as? String, "load")
        XCTAssertEqual(routed["requests"] as? Int, down)
        let total = try XCTUnwrap(report["total"] as? [String: Any])
        XCTAssertEqual(total["requests"] as? Int, 12)
        XCTAssertEqual(try XCTUnwrap(total["cost_usd"] as? Double), usd, accuracy: usd * 1e-6)
        let perMillion = try XCTUnwrap(total["usd_per_million_tokens"] as? Double)
        let tokens = try XCTUnwrap(total["prompt_tokens"] as? Int) + (total["completion_tokens"] as? Int ?? 0)
        XCTAssertEqual(perMillion, usd / Double(tokens) * 1e6, accuracy: perMillion * 1e-9)
    }

    func testTheReportsFormatsAndErrors() throws {
        let server = try TestServer(apiKey: "k") { $0.responseCacheEntries = 4 }
        defer { server.stop() }
        let auth = ["Authorization": "Bearer k"]
        for _ in 0..<2 {
            XCTAssertEqual(try server.request("POST", "/v1/completions", json: #"{"prompt": "hi", "max_tokens": 4, "temperature": 0}"#,
                                              headers: auth).status, 200)
        }
        XCTAssertEqual(try server.request("POST", "/v1/completions", json: #"{"prompt": "hi", "max_tokens": -1}"#, headers: auth).status, 400)
        XCTAssertEqual(try server.request("GET", "/v1/quantserve/report").status, 401)
        let json = try XCTUnwrap(try server.request("GET", "/v1/quantserve/report", headers: auth).json as? [String: Any])
        let row = try XCTUnwrap((json["models"] as? [[String: Any]])?.first)
        XCTAssertEqual(row["requests"] as? Int, 2)
        XCTAssertEqual(row["failed"] as? Int, 1)
        XCTAssertEqual((row["response_cache"] as? [String: Any])?["hits"] as? Int, 1)
        XCTAssertGreaterThan((row["response_cache"] as? [String: Any])?["saved_seconds"] as? Double ?? 0, 0)
        XCTAssertEqual((row["api_keys"] as? [String: Any])?["default"] as? Int, 2)
        let markdown = try server.request("GET", "/v1/quantserve/report?format=markdown&window=60", headers: auth)
        XCTAssertEqual(markdown.status, 200)
        XCTAssertTrue(markdown.headers["content-type"]?.hasPrefix("text/markdown") ?? false)
        XCTAssertTrue(markdown.text.contains("| tiny-qwen2 | 2 |"), markdown.text)
        let text = try server.request("GET", "/v1/quantserve/report?format=text", headers: auth)
        XCTAssertTrue(text.text.contains("total"), text.text)
        for bad in ["?window=0", "?window=abc", "?format=xml"] {
            let r = try server.request("GET", "/v1/quantserve/report\(bad)", headers: auth)
            XCTAssertEqual(r.status, 400, bad)
        }
    }
}
