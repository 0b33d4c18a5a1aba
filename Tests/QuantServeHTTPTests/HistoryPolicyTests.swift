import Foundation
import XCTest
@testable import QuantServe
@testable import QuantServeHTTP

/// The chat history policy: a request that opts in (or every chat request, when the config says so) keeps its
/// system messages and the newest turns that fit the limit, and the answer says how many prompt tokens were dropped.
final class HistoryPolicyTests: XCTestCase {
    static func message(_ role: String, _ text: String) -> String { #"{"role": "\#(role)", "content": "\#(text)"}"# }

    /// A system prompt and six turns, long enough that the limit drops the oldest.
    static let conversation: [String] = [
        message("system", "You answer briefly."),
        message("user", "Tell me about the moon and the tides and the sea."),
        message("assistant", "The moon pulls the oceans, which makes the tides rise and fall twice a day."),
        message("user", "And the sun, does it pull the sea as well?"),
        message("assistant", "Yes, about half as strongly, so spring tides come when the two line up."),
        message("user", "What is a neap tide?"),
    ]

    func tokens(_ server: TestServer, _ messages: [String]) throws -> Int {
        let r = try server.request("POST", "/tokenize", json: #"{"messages": [\#(messages.joined(separator: ","))]}"#)
        return try XCTUnwrap((r.json as? [String: Any])?["count"] as? Int, r.text)
    }

    func testOptedInRequestsKeepTheSystemPromptAndTheNewestTurnsThatFit() throws {
        let server = try TestServer { $0.history = ServerConfig.HistoryPolicy(maxPromptTokens: 60) }
        defer { server.stop() }
        let c = Self.conversation
        let whole = try tokens(server, c)
        // What the policy must keep: the system message and the last user turn, with the newest turns before it
        // that still fit (a kept history starts on a user message).
        let lastTwo = try tokens(server, [c[0], c[3], c[4], c[5]])
        let lastOne = try tokens(server, [c[0], c[5]])
        XCTAssertGreaterThan(whole, 60)
        let expected = lastTwo <= 60 ? lastTwo : lastOne
        func post(_ extra: String) throws -> [String: Any] {
            let r = try server.request("POST", "/v1/chat/completions",
                                       json: #"{"messages": [\#(c.joined(separator: ","))], "max_tokens": 2\#(extra)}"#)
            XCTAssertEqual(r.status, 200, r.text)
            return try XCTUnwrap((r.json as? [String: Any])?["usage"] as? [String: Any])
        }
        let trimmed = try post(#", "truncate_history": true"#)
        XCTAssertEqual(trimmed["prompt_tokens"] as? Int, expected)
        XCTAssertEqual((trimmed["prompt_tokens_details"] as? [String: Any])?["truncated_tokens"] as? Int, whole - expected)
        // A request's own limit; the last turn alone when even it is over the limit.
        let own = try post(#", "truncate_history": \#(lastOne + 1)"#)
        XCTAssertEqual(own["prompt_tokens"] as? Int, lastOne)
        XCTAssertEqual(try post(#", "truncate_history": 1"#)["prompt_tokens"] as? Int, lastOne)
        // Not opted in: the whole conversation, and nothing said about truncation.
        let plain = try post("")
        XCTAssertEqual(plain["prompt_tokens"] as? Int, whole)
        XCTAssertNil((plain["prompt_tokens_details"] as? [String: Any])?["truncated_tokens"])
        XCTAssertEqual(try post(#", "truncate_history": false"#)["prompt_tokens"] as? Int, whole)

        let wrongType = try server.request("POST", "/v1/chat/completions",
                                           json: #"{"messages": [\#(c[5])], "truncate_history": "yes"}"#)
        XCTAssertEqual(wrongType.status, 400)
        XCTAssertEqual(wrongType.error?["param"] as? String, "truncate_history")
        let onCompletion = try server.request("POST", "/v1/completions", json: #"{"prompt": "x", "truncate_history": true}"#)
        XCTAssertEqual(onCompletion.status, 400)
        XCTAssertTrue((onCompletion.error?["message"] as? String ?? "").contains("truncate_prompt_tokens"))
    }

    func testAPolicyByDefaultAppliesToEveryChatRequest() throws {
        let server = try TestServer { $0.history = ServerConfig.HistoryPolicy(maxPromptTokens: 40, byDefault: true) }
        defer { server.stop() }
        let c = Self.conversation
        let r = try server.request("POST", "/v1/chat/completions", json: #"{"messages": [\#(c.joined(separator: ","))], "max_tokens": 2}"#)
        let usage = try XCTUnwrap((r.json as? [String: Any])?["usage"] as? [String: Any])
        let lastTwo = try tokens(server, [c[0], c[3], c[4], c[5]]), lastOne = try tokens(server, [c[0], c[5]])
        XCTAssertEqual(usage["prompt_tokens"] as? Int, lastTwo <= 40 ? lastTwo : lastOne)
        // A request may still opt out.
        let out = try server.request("POST", "/v1/chat/completions",
                                     json: #"{"messages": [\#(c.joined(separator: ","))], "max_tokens": 2, "truncate_history": false}"#)
        XCTAssertEqual(((out.json as? [String: Any])?["usage"] as? [String: Any])?["prompt_tokens"] as? Int, try tokens(server, c))
    }
}
