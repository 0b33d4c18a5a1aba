import Foundation
import XCTest
@testable import QuantServe
@testable import QuantServeHTTP

/// The response cache: a repeated deterministic request is answered from it byte for byte (streamed the same way),
/// without engine work and at no cost; requests that are not deterministic, or that bypass it, are never cached;
/// it holds at most its capacity, least recently used out first.
final class ResponseCacheTests: XCTestCase {
    func choicesText(_ r: RawHTTPClient.Response) -> String {
        let object = r.json as? [String: Any]
        let choices = (object?["choices"] as? [[String: Any]]) ?? []
        return choices.map { c in
            (c["text"] as? String) ?? ((c["message"] as? [String: Any])?["content"] as? String) ?? "?"
        }.joined(separator: "|")
    }

    func usage(_ r: RawHTTPClient.Response) -> [String: Any] { ((r.json as? [String: Any])?["usage"] as? [String: Any]) ?? [:] }

    func testARepeatedGreedyRequestIsAnsweredFromTheCache() throws {
        let server = try TestServer { $0.responseCacheEntries = 2 }
        defer { server.stop() }
        let greedy = #"{"prompt": "once upon a time", "max_tokens": 24, "temperature": 0, "logprobs": 2}"#
        let miss = try server.request("POST", "/v1/completions", json: greedy)
        XCTAssertEqual(miss.status, 200, miss.text)
        XCTAssertEqual(miss.headers["x-quantserve-cache"], "miss")
        let generated = server.settledMetrics().generatedTokens
        let hit = try server.request("POST", "/v1/completions", json: greedy)
        XCTAssertEqual(hit.headers["x-quantserve-cache"], "hit")
        // Byte for byte the same choices (text and log-probabilities), no engine work, no cost, and it says so.
        let choices = { (r: RawHTTPClient.Response) in
            (try? JSONSerialization.data(withJSONObject: (r.json as? [String: Any])?["choices"] ?? [], options: .sortedKeys)) ?? Data()
        }
        XCTAssertEqual(choices(hit), choices(miss))
        XCTAssertEqual(server.engine.metrics.generatedTokens, generated)
        let cost = try XCTUnwrap(usage(hit)["cost"] as? [String: Any])
        XCTAssertEqual(cost["usd"] as? Double, 0)
        XCTAssertEqual(cost["cpu_seconds"] as? Double, 0)
        XCTAssertEqual(cost["cached_response"] as? Bool, true)
        XCTAssertEqual(usage(hit)["completion_tokens"] as? Int, usage(miss)["completion_tokens"] as? Int)

        // Streamed, a hit streams the same text in the same pieces as a live answer.
        let streamed = #"{"prompt": "once upon a time", "max_tokens": 24, "temperature": 0, "logprobs": 2, "stream": true}"#
        func pieces(_ r: RawHTTPClient.Response) -> [String] {
            sseEvents(r.text).dropLast().compactMap { e in
                ((try? JSONSerialization.jsonObject(with: Data(e.utf8))) as? [String: Any]).flatMap {
                    ($0["choices"] as? [[String: Any]])?.first?["text"] as? String
                }
            }
        }
        let liveStream = try server.request("POST", "/v1/completions", json: streamed.replacingOccurrences(of: "once", with: "Once"))
        let cachedStream = try server.request("POST", "/v1/completions", json: streamed.replacingOccurrences(of: "once", with: "Once"))
        XCTAssertEqual(liveStream.headers["x-quantserve-cache"], "miss")
        XCTAssertEqual(cachedStream.headers["x-quantserve-cache"], "hit")
        XCTAssertEqual(pieces(cachedStream), pieces(liveStream))
        XCTAssertGreaterThan(pieces(liveStream).count, 1)

        // A seed makes sampling deterministic: cached; temperature without a seed: never.
        let seeded = #"{"prompt": "seeded", "max_tokens": 8, "temperature": 1, "seed": 7}"#
        XCTAssertEqual(try server.request("POST", "/v1/completions", json: seeded).headers["x-quantserve-cache"], "miss")
        let seededHit = try server.request("POST", "/v1/completions", json: seeded)
        XCTAssertEqual(seededHit.headers["x-quantserve-cache"], "hit")
        let random = #"{"prompt": "seeded", "max_tokens": 8, "temperature": 1}"#
        XCTAssertNil(try server.request("POST", "/v1/completions", json: random).headers["x-quantserve-cache"])
        // A request may bypass the cache.
        XCTAssertNil(try server.request("POST", "/v1/completions", json: #"{"prompt": "seeded", "max_tokens": 8, "temperature": 1, "seed": 7, "cache": false}"#).headers["x-quantserve-cache"])
        XCTAssertNil(try server.request("POST", "/v1/completions", json: seeded, headers: ["Cache-Control": "no-cache"]).headers["x-quantserve-cache"])
        XCTAssertEqual(try server.request("POST", "/v1/completions", json: #"{"prompt": "x", "cache": 1}"#).status, 400)
        // Any parameter that changes the answer makes another entry.
        XCTAssertEqual(try server.request("POST", "/v1/completions", json: #"{"prompt": "seeded", "max_tokens": 9, "temperature": 1, "seed": 7}"#).headers["x-quantserve-cache"], "miss")

        // Capacity 2, least recently used out: "seeded"/9 and "seeded"/8 are held; the first greedy prompt is gone.
        XCTAssertEqual(try server.request("POST", "/v1/completions", json: greedy).headers["x-quantserve-cache"], "miss")
        XCTAssertEqual(server.api.responseCache?.count, 2)
        let metrics = try server.request("GET", "/metrics").text
        XCTAssertTrue(metrics.contains(#"quantserve:response_cache_hits_total{model_name="tiny-qwen2"} 3"#), metrics)
        XCTAssertTrue(metrics.contains(#"quantserve:response_cache_misses_total{model_name="tiny-qwen2"} 5"#), metrics)
        XCTAssertTrue(metrics.contains("quantserve:response_cache_entries 2"), metrics)
    }

    func testChatAnswersAndSeveralChoicesAreCachedWhole() throws {
        let server = try TestServer { $0.responseCacheEntries = 8 }
        defer { server.stop() }
        let body = #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 12, "temperature": 0.8, "seed": 3, "n": 3}"#
        let miss = try server.request("POST", "/v1/chat/completions", json: body)
        let hit = try server.request("POST", "/v1/chat/completions", json: body)
        XCTAssertEqual(miss.headers["x-quantserve-cache"], "miss")
        XCTAssertEqual(hit.headers["x-quantserve-cache"], "hit")
        XCTAssertEqual(choicesText(hit), choicesText(miss))
        XCTAssertEqual(choicesText(hit).split(separator: "|", omittingEmptySubsequences: false).count, 3)
    }

    /// Unit: the least recently used answer goes first, and a lookup makes an answer recent.
    func testLeastRecentlyUsedOrder() {
        let cache = ResponseCache(capacity: 2)
        func key(_ n: Int32) -> ResponseCache.Key { ResponseCache.Key(model: "m", prompts: [[n]], parameters: "") }
        let answer = ResponseCache.Answer(choices: [], engineSeconds: 1)
        cache.store(key(1), answer)
        cache.store(key(2), answer)
        XCTAssertNotNil(cache.lookup(key(1)))
        cache.store(key(3), answer)
        XCTAssertNil(cache.lookup(key(2)))
        XCTAssertNotNil(cache.lookup(key(1)))
        XCTAssertNotNil(cache.lookup(key(3)))
        for i in 4..<100 { cache.store(key(Int32(i)), answer) }
        XCTAssertEqual(cache.count, 2)
        XCTAssertNotNil(cache.lookup(key(99)))
        XCTAssertNotNil(cache.lookup(key(98)))
    }
}
