import Foundation
import XCTest

/// vLLM's `truncate_prompt_tokens`: only the newest k tokens of a prompt are used, the answer is the one those
/// tokens alone give, and `usage.prompt_tokens_details.truncated_tokens` says how many were dropped.
final class TruncationTests: XCTestCase {
    func usage(_ r: RawHTTPClient.Response) -> [String: Any] { (r.json as? [String: Any])?["usage"] as? [String: Any] ?? [:] }

    func testOnlyTheNewestTokensAreUsedAndTheDroppedOnesCounted() throws {
        let server = try TestServer()
        defer { server.stop() }
        let ids = (0..<20).map { String(100 + $0 * 7) }.joined(separator: ", ")
        let tail = (15..<20).map { String(100 + $0 * 7) }.joined(separator: ", ")
        let truncated = try server.request("POST", "/v1/completions",
                                           json: #"{"prompt": [\#(ids)], "max_tokens": 6, "temperature": 0, "truncate_prompt_tokens": 5}"#)
        XCTAssertEqual(truncated.status, 200, truncated.text)
        let u = usage(truncated)
        XCTAssertEqual(u["prompt_tokens"] as? Int, 5)
        XCTAssertEqual((u["prompt_tokens_details"] as? [String: Any])?["truncated_tokens"] as? Int, 15)
        let alone = try server.request("POST", "/v1/completions", json: #"{"prompt": [\#(tail)], "max_tokens": 6, "temperature": 0}"#)
        let text = { (r: RawHTTPClient.Response) in (((r.json as? [String: Any])?["choices"] as? [[String: Any]])?.first?["text"] as? String) }
        XCTAssertEqual(text(truncated), text(alone))
        XCTAssertNil((usage(alone)["prompt_tokens_details"] as? [String: Any])?["truncated_tokens"], "only when asked")

        // A prompt already short enough loses nothing; -1 keeps what fits the context with max_tokens.
        let short = try server.request("POST", "/v1/completions", json: #"{"prompt": [\#(tail)], "max_tokens": 2, "truncate_prompt_tokens": 50}"#)
        XCTAssertEqual((usage(short)["prompt_tokens_details"] as? [String: Any])?["truncated_tokens"] as? Int, 0)
        let context = server.engine.description.contextSize
        let long = (0..<(context + 40)).map { String(100 + $0 % 50) }.joined(separator: ", ")
        let fitted = try server.request("POST", "/v1/completions", json: #"{"prompt": [\#(long)], "max_tokens": 8, "truncate_prompt_tokens": -1}"#)
        XCTAssertEqual(fitted.status, 200, fitted.text)
        XCTAssertEqual(usage(fitted)["prompt_tokens"] as? Int, context - 8)
        let refused = try server.request("POST", "/v1/completions", json: #"{"prompt": [\#(long)], "max_tokens": 8}"#)
        XCTAssertEqual(refused.status, 400, "without truncation the prompt is too long")

        for bad in ["0", "-2", "\"5\"", "1.5"] {
            let r = try server.request("POST", "/v1/completions", json: #"{"prompt": "hi", "truncate_prompt_tokens": \#(bad)}"#)
            XCTAssertEqual(r.status, 400, bad)
            XCTAssertEqual(r.error?["param"] as? String, "truncate_prompt_tokens", r.text)
        }
    }
}
