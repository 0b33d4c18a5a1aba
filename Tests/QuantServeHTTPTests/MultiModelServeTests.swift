import Foundation
import XCTest

/// `quantserve serve` with several models and levels: `--model PATH:LEVEL,LEVEL` serves one engine per level as
/// `NAME:LEVEL`, a second `--model` adds a model; each answers under its own name, the bare name means the first
/// level, the engines take turns on the cores, and every metric carries its model's name.
final class MultiModelServeTests: XCTestCase {
    func testSeveralModelsAndLevelsBehindOneEndpoint() throws {
        let fixtures = TestServer.repositoryRoot.appendingPathComponent("Tests/QuantServeTests/Fixtures")
        let llama = fixtures.appendingPathComponent("tiny-llama.gguf").path
        let (process, _, log, p) = try ShutdownTests.startServe(
            ["serve", "--model", "\(llama):int8,fp16", "--model", TestServer.tinyModel, "--port", "0", "--no-access-log",
             "--threads", "2"], engines: 3)
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        XCTAssertEqual(log.components(separatedBy: "ready:").count, 4, log)
        XCTAssertTrue(log.contains("ready: tiny-llama:int8 at int8"), log)
        XCTAssertTrue(log.contains("ready: tiny-llama:fp16 at fp16"), log)
        XCTAssertTrue(log.contains("ready: tiny-qwen2 at int8"), log)

        let list = try RawHTTPClient.request(p, "GET", "/v1/models")
        XCTAssertEqual(list.status, 200)
        let ids = ((object(list.text)["data"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
        XCTAssertEqual(ids, ["tiny-llama:int8", "tiny-llama:fp16", "tiny-qwen2", "auto"])

        // `auto`: hard work to the top of the ladder (the order given), easy work to its bottom; the answer and its
        // X-QuantServe-Model header name the target that answered, and the decisions are counted.
        for (prompt, target) in [("Debug this traceback: ZeroDivisionError", "tiny-llama:int8"), ("Translate hello", "tiny-qwen2")] {
            let r = try RawHTTPClient.request(p, "POST", "/v1/completions",
                                              json: #"{"model": "auto", "prompt": "\#(prompt)", "max_tokens": 3}"#)
            XCTAssertEqual(r.status, 200, r.text)
            XCTAssertEqual(object(r.text)["model"] as? String, target, r.text)
            XCTAssertEqual(r.headers["x-quantserve-model"], target)
        }
        let streamed = try RawHTTPClient.request(p, "POST", "/v1/completions",
                                                 json: #"{"model": "auto", "prompt": "Prove it step by step", "max_tokens": 3, "stream": true}"#)
        XCTAssertEqual(streamed.status, 200, streamed.text)
        XCTAssertEqual(streamed.headers["x-quantserve-model"], "tiny-llama:int8")
        let routed = try RawHTTPClient.request(p, "GET", "/metrics").text
        XCTAssertTrue(routed.contains(#"quantserve:router_decisions_total{router="auto",target="tiny-llama:int8",reason="rule_hard"} 2"#), routed)
        XCTAssertTrue(routed.contains(#"quantserve:router_decisions_total{router="auto",target="tiny-qwen2",reason="rule_easy"} 1"#), routed)
        let tokenized = try RawHTTPClient.request(p, "POST", "/tokenize", json: #"{"model": "auto", "prompt": "hello"}"#)
        XCTAssertEqual(tokenized.status, 200, tokenized.text)

        // Each name its own engine; the bare name is the first level; an unknown level is a 404.
        for (asked, answered) in [("tiny-llama:fp16", "tiny-llama:fp16"), ("tiny-llama:int8", "tiny-llama:int8"),
                                  ("tiny-llama", "tiny-llama:int8"), ("tiny-qwen2", "tiny-qwen2")] {
            let r = try RawHTTPClient.request(p, "POST", "/v1/completions",
                                              json: #"{"model": "\#(asked)", "prompt": "hello", "max_tokens": 4, "temperature": 0}"#)
            XCTAssertEqual(r.status, 200, r.text)
            XCTAssertEqual(object(r.text)["model"] as? String, answered, r.text)
        }
        let missing = try RawHTTPClient.request(p, "POST", "/v1/completions",
                                                json: #"{"model": "tiny-llama:int4", "prompt": "hello", "max_tokens": 4}"#)
        XCTAssertEqual(missing.status, 404, missing.text)

        // Two levels busy at once: both finish (the engines take turns on the cores).
        let group = DispatchGroup()
        let statuses = LockedStatuses()
        for name in ["tiny-llama:int8", "tiny-llama:fp16", "tiny-llama:int8", "tiny-llama:fp16"] {
            group.enter()
            DispatchQueue.global().async {
                let r = try? RawHTTPClient.request(p, "POST", "/v1/completions",
                                                   json: #"{"model": "\#(name)", "prompt": "a b c", "max_tokens": 48, "ignore_eos": true}"#)
                statuses.append(r?.status ?? 0)
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(statuses.values, [200, 200, 200, 200])

        let metrics = try RawHTTPClient.request(p, "GET", "/metrics").text
        for name in ["tiny-llama:int8", "tiny-llama:fp16", "tiny-qwen2"] {
            XCTAssertTrue(metrics.contains("quantserve:num_requests_running{model_name=\"\(name)\"}"), name)
            XCTAssertTrue(metrics.contains("quantserve:request_success_total{model_name=\"\(name)\",finished_reason=\"length\"}"), name)
        }
        XCTAssertEqual(try RawHTTPClient.request(p, "GET", "/health").status, 200)
    }

    /// `serve --config FILE`: the file's models, levels, router, keys and cache, and `quantserve report` against it.
    func testAConfigFileServesItsModelsRouterAndKeysAndTheReportCommandReadsIt() throws {
        let fixtures = TestServer.repositoryRoot.appendingPathComponent("Tests/QuantServeTests/Fixtures")
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("serve-config-\(getpid()).json")
        defer { try? FileManager.default.removeItem(at: config) }
        try Data(#"""
            {"models": [{"name": "ll", "path": "\#(fixtures.path)/tiny-llama.gguf", "levels": ["fp16", "int8"],
                         "engine": {"threads": 2, "max-seqs": 4}}],
             "routers": [{"name": "cheap", "ladder": ["ll:fp16", "ll:int8"],
                          "rules": [{"name": "greeting", "any_words": ["hello"], "target": "bottom"}]}],
             "api_keys": [{"name": "team", "key": "sk-team"}],
             "response_cache": {"max_entries": 8},
             "usd_per_hour": 3.6}
            """#.utf8).write(to: config)
        let (process, _, log, p) = try ShutdownTests.startServe(
            ["serve", "--config", config.path, "--port", "0", "--no-access-log"], engines: 2)
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        XCTAssertTrue(log.contains("ready: ll:fp16 at fp16, 2 threads"), log)
        XCTAssertTrue(log.contains("ready: ll:int8 at int8, 2 threads"), log)
        let auth = ["Authorization": "Bearer sk-team"]
        XCTAssertEqual(try RawHTTPClient.request(p, "GET", "/v1/models").status, 401)
        let list = try RawHTTPClient.request(p, "GET", "/v1/models", headers: auth)
        let ids = ((object(list.text)["data"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
        XCTAssertEqual(ids, ["ll:fp16", "ll:int8", "cheap"])
        let body = #"{"model": "cheap", "prompt": "hello there", "max_tokens": 4, "temperature": 0}"#
        let first = try RawHTTPClient.request(p, "POST", "/v1/completions", json: body, headers: auth)
        XCTAssertEqual(object(first.text)["model"] as? String, "ll:int8", first.text)
        let again = try RawHTTPClient.request(p, "POST", "/v1/completions", json: body, headers: auth)
        XCTAssertEqual(again.headers["x-quantserve-cache"], "hit")
        // $3.60 an hour: a dollar a thousand seconds.
        let cost = ((object(first.text)["usage"] as? [String: Any])?["cost"] as? [String: Double]) ?? [:]
        XCTAssertEqual(try XCTUnwrap(cost["usd"]), try XCTUnwrap(cost["cpu_seconds"]) / 1000, accuracy: 1e-12)

        let report = try runQuantserve(["report", "--url", "http://127.0.0.1:\(p)", "--api-key", "sk-team",
                                                 "--format", "markdown", "--window", "600"])
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertTrue(report.stdout.contains("| ll:int8 | 2 |"), report.stdout)
        XCTAssertTrue(report.stdout.contains("cheap/rule_greeting: 2"), report.stdout)
        let denied = try runQuantserve(["report", "--url", "http://127.0.0.1:\(p)"])
        XCTAssertNotEqual(denied.status, 0)
        XCTAssertTrue(denied.stderr.contains("the server answered 401"), denied.stderr)
    }

    /// Runs `quantserve` to its end: exit status, stdout and stderr.
    func runQuantserve(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = try ShutdownTests.binary()
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
}

/// Status codes collected from several threads.
private final class LockedStatuses: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Int] = []
    func append(_ s: Int) { lock.lock(); list.append(s); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return list.sorted() }
}
