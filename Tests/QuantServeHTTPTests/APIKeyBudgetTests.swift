import Foundation
import XCTest
import Synchronization
@testable import QuantServe
@testable import QuantServeHTTP

/// Named API keys: each request is counted under its key's name, and a key whose token budget is spent gets 429
/// `quota_exceeded` with `Retry-After` until its window renews, while other keys go on.
final class APIKeyBudgetTests: XCTestCase {
    func testASpentBudgetIsRefusedUntilItsWindowRenewsAndOtherKeysGoOn() throws {
        let server = try TestServer(apiKey: "sk-cli") { o in
            o.apiKeys = [ServerConfig.APIKey(name: "alice", key: "sk-alice", tokenBudget: 30, windowSeconds: 3600),
                         ServerConfig.APIKey(name: "bob", key: "sk-bob", tokenBudget: nil, windowSeconds: 3600)]
        }
        defer { server.stop() }
        let body = #"{"prompt": "hello", "max_tokens": 10, "ignore_eos": true}"#
        func post(_ key: String?) throws -> RawHTTPClient.Response {
            try server.request("POST", "/v1/completions", json: body, headers: key.map { ["Authorization": "Bearer \($0)"] } ?? [:])
        }
        XCTAssertEqual(try post(nil).status, 401)
        XCTAssertEqual(try post("sk-mallory").status, 401)
        // Within budget: each request runs to its end (13 tokens each: 3 prompt, 10 generated).
        var spent = 0
        while spent < 30 {
            let r = try post("sk-alice")
            XCTAssertEqual(r.status, 200, r.text)
            let usage = try XCTUnwrap((r.json as? [String: Any])?["usage"] as? [String: Any])
            spent += try XCTUnwrap(usage["total_tokens"] as? Int)
        }
        let refused = try post("sk-alice")
        XCTAssertEqual(refused.status, 429, refused.text)
        XCTAssertEqual(refused.error?["code"] as? String, "quota_exceeded")
        XCTAssertEqual(refused.error?["type"] as? String, "insufficient_quota")
        let retry = try XCTUnwrap(Int(refused.headers["retry-after"] ?? ""))
        XCTAssertTrue((3500...3600).contains(retry), "\(retry)")
        // Other keys, and the command line's key (named `default`), are not affected.
        XCTAssertEqual(try post("sk-bob").status, 200)
        XCTAssertEqual(try post("sk-cli").status, 200)
        XCTAssertEqual(try server.request("GET", "/v1/models", headers: ["Authorization": "Bearer sk-alice"]).status, 200)

        let metrics = try server.request("GET", "/metrics").text
        XCTAssertTrue(metrics.contains(#"quantserve:api_key_refused_total{key="alice"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"quantserve:api_key_requests_total{key="bob"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"quantserve:api_key_requests_total{key="default"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"quantserve:api_key_generation_tokens_total{key="bob"} 10"#), metrics)
        XCTAssertTrue(metrics.contains(#"quantserve:api_key_budget_remaining_tokens{key="alice"} 0"#), metrics)
        XCTAssertFalse(metrics.contains("sk-alice"), "a key itself is never shown")
        XCTAssertEqual(try server.request("GET", "/health").status, 200)
    }

    func testTheWindowRenews() throws {
        let now = Mutex(1000.0)
        let ledger = APIKeyLedger(keys: [ServerConfig.APIKey(name: "a", key: "k", tokenBudget: 10, windowSeconds: 60)],
                                  clock: { now.withLock { $0 } })
        XCTAssertEqual(ledger.identify("Bearer k"), "a")
        XCTAssertNil(ledger.identify("Bearer kk"))
        XCTAssertNil(ledger.identify(nil))
        try ledger.admit("a")
        ledger.charge("a", promptTokens: 4, completionTokens: 6, usd: 0)
        now.withLock { $0 = 1030 }
        XCTAssertThrowsError(try ledger.admit("a")) { error in
            let e = error as! APIError
            XCTAssertEqual(e.status, 429)
            XCTAssertEqual(e.headers["Retry-After"], "30")
        }
        now.withLock { $0 = 1061 }
        XCTAssertNoThrow(try ledger.admit("a"))
    }
}
