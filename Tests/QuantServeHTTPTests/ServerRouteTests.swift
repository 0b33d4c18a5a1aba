import Foundation
import XCTest
import QuantServe
import QuantServeHTTP

/// Every route on a tiny model, the OpenAI shapes of their answers, and SSE framing.
final class ServerRouteTests: XCTestCase {
    /// One server for the class, started on first use.
    static let shared = Result { try TestServer() }
    var server: TestServer { try! Self.shared.get() }

    override func setUpWithError() throws { _ = try Self.shared.get() }

    func testHealthAndModels() throws {
        let health = try server.request("GET", "/health")
        XCTAssertEqual(health.status, 200)
        XCTAssertNotNil(health.headers["x-request-id"])
        let models = try server.request("GET", "/v1/models")
        XCTAssertEqual(models.status, 200)
        let list = models.json as! [String: Any]
        XCTAssertEqual(list["object"] as? String, "list")
        let m = (list["data"] as! [[String: Any]])[0]
        XCTAssertEqual(m["id"] as? String, "tiny-qwen2")
        XCTAssertEqual(m["object"] as? String, "model")
        XCTAssertEqual(m["owned_by"] as? String, "quantserve")
        XCTAssertEqual(m["root"] as? String, TestServer.tinyModel)
        XCTAssertEqual(m["max_model_len"] as? Int, server.engine.description.contextSize)
        XCTAssertNotNil(m["created"] as? Int)
    }

    func testRequestIDIsEchoedOrGenerated() throws {
        let given = try server.request("GET", "/health", headers: ["X-Request-Id": "abc-123"])
        XCTAssertEqual(given.headers["x-request-id"], "abc-123")
        let hostile = try server.request("GET", "/health", headers: ["X-Request-Id": "a b"])
        XCTAssertTrue(hostile.headers["x-request-id"]?.hasPrefix("req-") ?? false)
    }

    func testPlainCompletionMatchesTheEngine() throws {
        let r = try server.request("POST", "/v1/completions", json: #"{"model": "tiny-qwen2", "prompt": "Hello world", "max_tokens": 8, "temperature": 0}"#)
        XCTAssertEqual(r.status, 200, r.text)
        let o = r.json as! [String: Any]
        XCTAssertEqual(o["object"] as? String, "text_completion")
        XCTAssertTrue((o["id"] as? String)?.hasPrefix("cmpl-") ?? false)
        let choice = (o["choices"] as! [[String: Any]])[0]
        XCTAssertEqual(choice["finish_reason"] as? String, "length")
        let usage = o["usage"] as! [String: Any]
        let prompt = server.engine.tokenizer.encode("Hello world", addSpecial: true, parseSpecial: true)
        XCTAssertEqual(usage["prompt_tokens"] as? Int, prompt.count)
        XCTAssertEqual(usage["completion_tokens"] as? Int, 8)
        XCTAssertEqual(usage["total_tokens"] as? Int, prompt.count + 8)
        XCTAssertNotNil((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int)
        // The same request through the engine directly gives the same text.
        let expected = try generateDirectly(prompt, maxTokens: 8)
        XCTAssertEqual(choice["text"] as? String, expected)
    }

    /// `model` may be the served name, absent, or `default` (what load generators send when given no name);
    /// any other name is 404.
    func testModelNames() throws {
        for body in [#"{"model": "tiny-qwen2", "prompt": "a", "max_tokens": 1}"#, #"{"prompt": "a", "max_tokens": 1}"#,
                     #"{"model": "default", "prompt": "a", "max_tokens": 1}"#] {
            let r = try server.request("POST", "/v1/completions", json: body)
            XCTAssertEqual(r.status, 200, body)
            XCTAssertEqual((r.json as? [String: Any])?["model"] as? String, "tiny-qwen2")
        }
        XCTAssertEqual(try server.request("POST", "/v1/completions", json: #"{"model": "tiny", "prompt": "a"}"#).status, 404)
    }

    func testPromptShapes() throws {
        let ids = server.engine.tokenizer.encode("Hello world", addSpecial: true, parseSpecial: true)
        let idList = ids.map(String.init).joined(separator: ",")
        let byText = try server.request("POST", "/v1/completions", json: #"{"prompt": "Hello world", "max_tokens": 4, "temperature": 0}"#)
        let byIDs = try server.request("POST", "/v1/completions", json: #"{"prompt": [\#(idList)], "max_tokens": 4, "temperature": 0}"#)
        func text(_ r: RawHTTPClient.Response, _ i: Int = 0) -> String? {
            ((r.json as? [String: Any])?["choices"] as? [[String: Any]])?[i]["text"] as? String
        }
        XCTAssertEqual(text(byText), text(byIDs))
        let two = try server.request("POST", "/v1/completions", json: #"{"prompt": ["Hello world", "Goodbye"], "max_tokens": 4, "temperature": 0}"#)
        XCTAssertEqual(((two.json as! [String: Any])["choices"] as! [[String: Any]]).count, 2)
        XCTAssertEqual(text(two, 0), text(byText))
        let lists = try server.request("POST", "/v1/completions", json: #"{"prompt": [[\#(idList)], [\#(idList)]], "max_tokens": 4, "temperature": 0}"#)
        XCTAssertEqual(text(lists, 1), text(byText))
    }

    func testNCopiesShareThePromptBlocks() throws {
        let prompt = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 8)
        let hitsBefore = server.engine.metrics.prefixCacheHitTokens
        let r = try server.request("POST", "/v1/completions", json: #"{"prompt": "\#(prompt)", "max_tokens": 4, "n": 3, "seed": 7}"#)
        XCTAssertEqual(r.status, 200, r.text)
        let o = r.json as! [String: Any]
        let choices = o["choices"] as! [[String: Any]]
        XCTAssertEqual(choices.map { $0["index"] as? Int }, [0, 1, 2])
        let promptTokens = (o["usage"] as! [String: Any])["prompt_tokens"] as! Int
        XCTAssertEqual((o["usage"] as! [String: Any])["completion_tokens"] as? Int, 12)
        let fullBlocks = (promptTokens - 1) / 16 * 16
        let hits = server.settledMetrics().prefixCacheHitTokens - hitsBefore
        XCTAssertGreaterThanOrEqual(hits, 2 * fullBlocks, "the two copies read the prompt's full blocks from the cache")
    }

    func testChatCompletion() throws {
        let r = try server.request("POST", "/v1/chat/completions", json: """
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": " there"}]}], "max_completion_tokens": 5, "temperature": 0, "logprobs": true, "top_logprobs": 2}
            """)
        XCTAssertEqual(r.status, 200, r.text)
        let o = r.json as! [String: Any]
        XCTAssertEqual(o["object"] as? String, "chat.completion")
        let choice = (o["choices"] as! [[String: Any]])[0]
        let message = choice["message"] as! [String: Any]
        XCTAssertEqual(message["role"] as? String, "assistant")
        let template = try server.engine.tokenizer.makeChatTemplate()
        let prompt = try server.engine.tokenizer.encodeChat(messages: [ChatMessage(role: "system", content: "Be brief."),
                                                                      ChatMessage(role: "user", content: "Hi there")],
                                                           template: template)
        XCTAssertEqual((o["usage"] as! [String: Any])["prompt_tokens"] as? Int, prompt.count)
        let content = (choice["logprobs"] as! [String: Any])["content"] as! [[String: Any]]
        XCTAssertEqual(content.count, (o["usage"] as! [String: Any])["completion_tokens"] as? Int)
        for entry in content {
            XCTAssertNotNil(entry["token"] as? String)
            XCTAssertLessThanOrEqual(entry["logprob"] as! Double, 0)
            XCTAssertEqual((entry["top_logprobs"] as! [[String: Any]]).count, 2)
            XCTAssertNotNil(entry["bytes"] as? [Int])
        }
    }

    func testCompletionLogprobs() throws {
        let r = try server.request("POST", "/v1/completions", json: #"{"prompt": "Hello", "max_tokens": 3, "temperature": 0, "logprobs": 2}"#)
        let choice = ((r.json as! [String: Any])["choices"] as! [[String: Any]])[0]
        let lp = choice["logprobs"] as! [String: Any]
        XCTAssertEqual((lp["tokens"] as! [String]).count, 3)
        XCTAssertEqual((lp["token_logprobs"] as! [Double]).count, 3)
        XCTAssertEqual((lp["top_logprobs"] as! [[String: Double]]).map(\.count), [2, 2, 2])
        XCTAssertEqual((lp["text_offset"] as! [Int]).first, 0)
        // Greedy: each chosen token is the most likely one.
        for (chosen, top) in zip(lp["token_logprobs"] as! [Double], lp["top_logprobs"] as! [[String: Double]]) {
            XCTAssertEqual(chosen, top.values.max()!, accuracy: 1e-5)
        }
    }

    /// The exact bytes of a streamed chat: the role first, one event per token, the finish reason, usage, [DONE].
    func testChatStreamFramingByteForByte() throws {
        let c = try RawHTTPClient(port: server.port)
        c.sendRequest("POST", "/v1/chat/completions", body: Array(#"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6, "temperature": 0, "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}}"#.utf8))
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.headers["content-type"], "text/event-stream")
        XCTAssertEqual(r.headers["transfer-encoding"], "chunked")
        let events = sseEvents(r.text)
        guard events.count == 1 + 6 + 1 + 1 + 1 else { return XCTFail("\(events.count) events: \(r.text)") }
        XCTAssertEqual(events.last, "[DONE]")
        let chunks = events.dropLast().map(object)
        let id = chunks[0]["id"] as! String
        XCTAssertTrue(id.hasPrefix("chatcmpl-"))
        for chunk in chunks {
            XCTAssertEqual(chunk["id"] as? String, id)
            XCTAssertEqual(chunk["object"] as? String, "chat.completion.chunk")
            XCTAssertEqual(chunk["model"] as? String, "tiny-qwen2")
        }
        // The first chunk carries the role, as its own event.
        XCTAssertEqual(events[0], #"{"id":"\#(id)","object":"chat.completion.chunk","created":\#(chunks[0]["created"] as! Int),"model":"tiny-qwen2","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#)
        var text = ""
        for chunk in chunks[1...6] {
            let choice = (chunk["choices"] as! [[String: Any]])[0]
            XCTAssertTrue(choice["finish_reason"] is NSNull)
            text += (choice["delta"] as! [String: Any])["content"] as! String
        }
        let last = (chunks[7]["choices"] as! [[String: Any]])[0]
        XCTAssertEqual(last["finish_reason"] as? String, "length")
        XCTAssertEqual((chunks[8]["choices"] as! [Any]).count, 0)
        let usage = chunks[8]["usage"] as! [String: Any]
        XCTAssertEqual(usage["completion_tokens"] as? Int, 6)
        XCTAssertNotNil((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"])
        // The streamed text is the plain answer's.
        let plain = try server.request("POST", "/v1/chat/completions", json: #"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6, "temperature": 0, "ignore_eos": true}"#)
        let message = (((plain.json as! [String: Any])["choices"] as! [[String: Any]])[0]["message"] as! [String: Any])
        XCTAssertEqual(text + ((last["delta"] as! [String: Any])["content"] as? String ?? ""), message["content"] as? String)
    }

    func testCompletionStreamWithoutUsage() throws {
        let r = try server.request("POST", "/v1/completions", json: #"{"prompt": "Hello", "max_tokens": 3, "stream": true, "ignore_eos": true}"#)
        let events = sseEvents(r.text)
        XCTAssertEqual(events.count, 3 + 1 + 1)
        XCTAssertEqual(events.last, "[DONE]")
        let last = object(events[3])
        XCTAssertEqual(last["object"] as? String, "text_completion")
        XCTAssertNil(last["usage"])
        XCTAssertEqual(((last["choices"] as! [[String: Any]])[0])["finish_reason"] as? String, "length")
    }

    func testTokenizeAndDetokenize() throws {
        let r = try server.request("POST", "/tokenize", json: #"{"model": "tiny-qwen2", "prompt": "Hello world"}"#)
        XCTAssertEqual(r.status, 200, r.text)
        let o = r.json as! [String: Any]
        let expected = server.engine.tokenizer.encode("Hello world", addSpecial: true, parseSpecial: true)
        XCTAssertEqual((o["tokens"] as! [Int]).map(Int32.init), expected)
        XCTAssertEqual(o["count"] as? Int, expected.count)
        XCTAssertEqual(o["max_model_len"] as? Int, server.engine.description.contextSize)
        let chat = try server.request("POST", "/tokenize", json: #"{"messages": [{"role": "user", "content": "Hi"}]}"#)
        XCTAssertGreaterThan((chat.json as! [String: Any])["count"] as! Int, 3)
        let d = try server.request("POST", "/detokenize", json: #"{"tokens": \#(expected)}"#)
        XCTAssertEqual((d.json as! [String: Any])["prompt"] as? String, server.engine.tokenizer.decode(expected))
    }

    func testMetricsNamesAndCounts() throws {
        _ = try server.request("POST", "/v1/completions", json: #"{"prompt": "Hello", "max_tokens": 2}"#)
        let text = try server.request("GET", "/metrics").text
        for name in ["num_requests_running", "num_requests_waiting", "kv_cache_usage_perc", "prompt_tokens_total",
                     "generation_tokens_total", "request_success_total", "num_preemptions_total",
                     "prefix_cache_queries_total", "prefix_cache_hits_total", "time_to_first_token_seconds_bucket",
                     "inter_token_latency_seconds_bucket", "e2e_request_latency_seconds_count",
                     "request_queue_time_seconds_sum"] {
            XCTAssertTrue(text.contains("quantserve:\(name){model_name=\"tiny-qwen2\""), "missing \(name)")
        }
        XCTAssertTrue(text.contains("process_resident_memory_bytes "))
        XCTAssertTrue(text.contains("# TYPE quantserve:time_to_first_token_seconds histogram"))
        XCTAssertGreaterThan(try server.metric("quantserve:generation_tokens_total{") ?? 0, 0)
        XCTAssertGreaterThan(try server.metric("quantserve:e2e_request_latency_seconds_count{") ?? 0, 0)
    }

    func testAnIdleServerHoldsNoBlocks() throws {
        _ = try server.request("POST", "/v1/completions", json: #"{"prompt": "Hello", "max_tokens": 2}"#)
        XCTAssertEqual(server.settledMetrics().kvBlocksUsed, 0)
        XCTAssertEqual(try server.metric("quantserve:kv_cache_usage_perc{"), 0)
    }

    private func generateDirectly(_ prompt: [Int32], maxTokens: Int) throws -> String {
        let done = DispatchSemaphore(value: 0)
        let text = Mutex("")
        try server.engine.submit(GenerationRequest(prompt: prompt, maxTokens: maxTokens, sampling: .greedy)) { event in
            switch event {
            case .token(let t): text.withLock { $0 += t.text }
            case .finished(let s): text.withLock { $0 += s.finalText }; done.signal()
            case .failed: done.signal()
            }
        }
        done.wait()
        return text.withLock { $0 }
    }
}

import Synchronization
