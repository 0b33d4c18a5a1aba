import Foundation
import XCTest
@testable import QuantServe
@testable import QuantServeHTTP

/// `POST /v1/responses` on the chat path: the response object, the stream's events in order and numbered, and what a
/// stateless server refuses.
final class ResponsesAPITests: XCTestCase {
    func testResponsesAndTheirStream() throws {
        let server = try TestServer()
        defer { server.stop() }
        let whole = try server.request("POST", "/v1/responses", json: #"{"input": "hello", "instructions": "be brief", "max_output_tokens": 6, "temperature": 0}"#)
        XCTAssertEqual(whole.status, 200, whole.text)
        let object = try XCTUnwrap(whole.json as? [String: Any])
        XCTAssertEqual(object["object"] as? String, "response")
        XCTAssertTrue((object["id"] as? String ?? "").hasPrefix("resp_"))
        XCTAssertEqual(object["instructions"] as? String, "be brief")
        let item = try XCTUnwrap((object["output"] as? [[String: Any]])?.first)
        XCTAssertEqual(item["type"] as? String, "message")
        XCTAssertEqual(item["role"] as? String, "assistant")
        let part = try XCTUnwrap((item["content"] as? [[String: Any]])?.first)
        XCTAssertEqual(part["type"] as? String, "output_text")
        let usage = try XCTUnwrap(object["usage"] as? [String: Any])
        XCTAssertEqual(usage["output_tokens"] as? Int, 6, "\(usage)")
        XCTAssertEqual(object["status"] as? String, "incomplete")
        XCTAssertEqual((object["incomplete_details"] as? [String: Any])?["reason"] as? String, "max_output_tokens")

        let stream = try server.request("POST", "/v1/responses",
                                        json: #"{"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}], "max_output_tokens": 5, "temperature": 0, "stream": true}"#)
        XCTAssertEqual(stream.status, 200)
        XCTAssertFalse(stream.text.contains("[DONE]"))
        var events: [[String: Any]] = []
        for block in stream.text.components(separatedBy: "\n\n") where !block.isEmpty {
            let lines = block.split(separator: "\n")
            XCTAssertEqual(lines.count, 2, block)
            let type = String(lines[0].dropFirst("event: ".count))
            let data = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines[1].dropFirst("data: ".count).utf8)) as? [String: Any])
            XCTAssertEqual(data["type"] as? String, type)
            events.append(data)
        }
        let types = events.compactMap { $0["type"] as? String }
        XCTAssertEqual(Array(types.prefix(4)), ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"])
        XCTAssertEqual(Array(types.suffix(4)), ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.incomplete"])
        XCTAssertEqual(events.compactMap { $0["sequence_number"] as? Int }, Array(0..<events.count))
        let deltas = events.filter { $0["type"] as? String == "response.output_text.delta" }.compactMap { $0["delta"] as? String }.joined()
        let done = try XCTUnwrap(events.first { $0["type"] as? String == "response.output_text.done" }?["text"] as? String)
        XCTAssertEqual(deltas, done)

        for (body, param) in [(#"{"input": "x", "previous_response_id": "resp_1"}"#, "previous_response_id"),
                              (#"{"input": "x", "tools": [{"type": "function", "name": "f"}]}"#, "tools"),
                              (#"{"input": "x", "store": true}"#, "store"),
                              (#"{}"#, "input"), (#"{"input": 3}"#, "input"),
                              (#"{"input": [{"role": "user", "content": [{"type": "input_image"}]}]}"#, "input[0].content[0]"),
                              (#"{"input": "x", "text": {"format": {"type": "yaml"}}}"#, "text.format.type")] {
            let r = try server.request("POST", "/v1/responses", json: body)
            XCTAssertEqual(r.status, 400, body)
            XCTAssertEqual(r.error?["param"] as? String, param, body)
        }
        XCTAssertEqual(try server.request("GET", "/health").status, 200)
    }
}
