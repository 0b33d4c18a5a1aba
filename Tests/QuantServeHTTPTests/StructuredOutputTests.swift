import Foundation
import XCTest
@testable import QuantServe
@testable import QuantServeHTTP

/// `response_format: {"type": "json_object"}` on the default model: sampled at temperature 1 with several seeds,
/// whole and streamed, chat and completions, every answer that ends is one JSON object that Foundation's parser reads.
final class StructuredOutputTests: XCTestCase {
    func testJSONModeAnswersAlwaysParse() throws {
        let server = try TestServer(path: try TestServer.defaultModel(), level: .native) { $0.responseCacheEntries = 8 }
        defer { server.stop() }
        func object(_ text: String) -> [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
        }
        var ended = 0
        for seed in 0..<4 {
            let stream = seed % 2 == 1
            let r = try server.request("POST", "/v1/chat/completions", json: #"""
                {"messages": [{"role": "user", "content": "Describe a fictional city: its name, population and three landmarks."}],
                 "response_format": {"type": "json_object"}, "temperature": 1, "seed": \#(seed), "max_tokens": 256,
                 "stream": \#(stream)}
                """#)
            XCTAssertEqual(r.status, 200, r.text)
            var text = "", finish = ""
            if stream {
                for e in sseEvents(r.text).dropLast() {
                    let chunk = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(e.utf8)) as? [String: Any])
                    let choice = try XCTUnwrap((chunk["choices"] as? [[String: Any]])?.first)
                    text += ((choice["delta"] as? [String: Any])?["content"] as? String) ?? ""
                    if let f = choice["finish_reason"] as? String { finish = f }
                }
            } else {
                let choice = try XCTUnwrap(((r.json as? [String: Any])?["choices"] as? [[String: Any]])?.first)
                text = try XCTUnwrap((choice["message"] as? [String: Any])?["content"] as? String)
                finish = try XCTUnwrap(choice["finish_reason"] as? String)
            }
            XCTAssertTrue(text.hasPrefix("{"), text)
            if finish == "stop" {
                ended += 1
                XCTAssertNotNil(object(text), "seed \(seed): \(text)")
            }
        }
        XCTAssertGreaterThanOrEqual(ended, 3, "most answers should close their object within 256 tokens")

        // Completions too; and JSON mode is its own entry in the response cache.
        let prompt = #"{"prompt": "A JSON object with the keys a and b:", "max_tokens": 64, "temperature": 0"#
        let plain = try server.request("POST", "/v1/completions", json: prompt + "}")
        XCTAssertEqual(plain.headers["x-quantserve-cache"], "miss")
        let json = try server.request("POST", "/v1/completions", json: prompt + #", "response_format": {"type": "json_object"}}"#)
        XCTAssertEqual(json.headers["x-quantserve-cache"], "miss")
        let choice = try XCTUnwrap(((json.json as? [String: Any])?["choices"] as? [[String: Any]])?.first)
        let text = try XCTUnwrap(choice["text"] as? String)
        if choice["finish_reason"] as? String == "stop" { XCTAssertNotNil(object(text), text) } else { XCTAssertTrue(text.hasPrefix("{"), text) }
    }
}
