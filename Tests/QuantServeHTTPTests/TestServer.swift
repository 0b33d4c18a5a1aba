import Foundation
import XCTest
import QuantServe
import QuantServeHTTP

/// A server on an ephemeral loopback port, in this process, over a model loaded once per server.
final class TestServer: Sendable {
    let model: ServedModel
    /// Every served model (the first is `model`).
    let models: [ServedModel]
    let api: APIServer
    let http: HTTPServer
    var port: UInt16 { http.port }
    var engine: Engine { model.engine! }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    static var tinyModel: String { repositoryRoot.appendingPathComponent("Tests/QuantServeTests/Fixtures/tiny-qwen2.gguf").path }
    static func defaultModel() throws -> String {
        let path = repositoryRoot.appendingPathComponent("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").path
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("the default model is missing at \(path): run models/fetch (make test does)")
            throw XCTSkip("default model missing")
        }
        return path
    }

    /// `more`: further served models of the same file, by name and level (each its own engine with `options`);
    /// `configure`: the API options beyond these (routers, keys, caches, shadows).
    init(path: String = TestServer.tinyModel, level: QuantLevel = .int8, options: EngineOptions = EngineOptions(),
         apiKey: String? = nil, idleTimeout: UInt32 = 30, name: String? = nil, allowedOrigins: [String] = [],
         more: [(name: String, level: QuantLevel, options: EngineOptions?)] = [],
         configure: (inout APIServerOptions) -> Void = { _ in }) throws {
        model = ServedModel(name: name ?? ServedModel.defaultName(forPath: path), path: path)
        models = [model] + more.map { ServedModel(name: $0.name, path: path) }
        var apiOptions = APIServerOptions()
        apiOptions.apiKey = apiKey
        apiOptions.allowedOrigins = allowedOrigins
        apiOptions.accessLog = AccessLog(enabled: false)
        configure(&apiOptions)
        api = APIServer(models: ModelTable(models), options: apiOptions)
        var httpOptions = HTTPServerOptions()
        httpOptions.port = 0
        httpOptions.idleTimeoutSeconds = idleTimeout
        http = try HTTPServer(options: httpOptions, handler: api)
        let levels = [(level, options)] + more.map { ($0.level, $0.options ?? options) }
        for (m, (l, o)) in zip(models, levels) {
            m.ready(try Engine(options: o) { context in try ModelLoader.load(path: path, level: l, context: context) })
        }
    }

    func stop() {
        api.shutdown(drainSeconds: 1)
        http.stop()
        for m in models { m.engine?.shutdown() }
    }

    func request(_ method: String, _ path: String, json: String? = nil, headers: [String: String] = [:]) throws -> RawHTTPClient.Response {
        try RawHTTPClient.request(port, method, path, json: json, headers: headers)
    }

    /// The engine's metrics once it has settled (no sequence running or waiting), or after `timeout`.
    func settledMetrics(timeout: Double = 10) -> EngineMetrics {
        let deadline = Date().addingTimeInterval(timeout)
        var m = engine.metrics
        while Date() < deadline {
            m = engine.metrics
            if m.runningSequences == 0, m.requestsWaiting == 0, m.kvBlocksUsed == 0 { break }
            usleep(10_000)
        }
        return m
    }

    /// The value of a Prometheus sample line starting with `prefix`.
    func metric(_ prefix: String) throws -> Double? {
        let text = try request("GET", "/metrics").text
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            return Double(line.split(separator: " ").last!)
        }
        return nil
    }
}

/// The `data:` payloads of an SSE body, checking the framing: every event is `data: PAYLOAD\n\n` and nothing else.
func sseEvents(_ body: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
    var events: [String] = []
    var rest = Substring(body)
    while !rest.isEmpty {
        guard rest.hasPrefix("data: "), let end = rest.range(of: "\n\n") else {
            XCTFail("not an SSE event at: \(rest.prefix(80))", file: file, line: line)
            return events
        }
        let payload = rest[rest.index(rest.startIndex, offsetBy: 6)..<end.lowerBound]
        XCTAssertFalse(payload.contains("\n"), "an event spans lines", file: file, line: line)
        events.append(String(payload))
        rest = rest[end.upperBound...]
    }
    return events
}

func object(_ json: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
}
