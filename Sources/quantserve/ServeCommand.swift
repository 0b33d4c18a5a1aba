import Dispatch
import Foundation
import QuantServe
import QuantServeHTTP
import QuantServeJSON

struct ServeCommand: Command {
    static let name = "serve"
    static let summary = "serve the model over an OpenAI-compatible HTTP API"
    static let options: [OptionSpec] = [
        OptionSpec(name: "config", valueName: "FILE", help: "a JSON file of models, levels, routers, API keys with budgets, the history policy, the response cache and shadow measurement (docs/server.md; examples/serve-config.json); instead of --model"),
        OptionSpec(name: "model", valueName: "PATH[:LEVEL,...]", help: "GGUF model file or Hugging Face model folder; with levels, served once per level as NAME:LEVEL (repeatable: several models in one server, taking turns on the cores)"),
        OptionSpec(name: "quant", valueName: "LEVEL", help: "weights in memory: \(QuantLevel.allCases.map(\.rawValue).joined(separator: ", ")) (default: native for a quantized GGUF file, a pre-quantized folder's own level, else \(QuantLevel.default.rawValue))"),
        .calibration,
        OptionSpec(name: "host", valueName: "ADDR", help: "address to listen on (default 127.0.0.1: this machine only)"),
        OptionSpec(name: "port", valueName: "N", help: "port to listen on (default 8080; 0: any free port)"),
        OptionSpec(name: "api-key", valueName: "KEY", help: "require 'Authorization: Bearer KEY' (not on /health and /metrics)"),
        OptionSpec(name: "api-key-file", valueName: "FILE", help: "read the API key from FILE (first line)"),
        OptionSpec(name: "served-model-name", valueName: "NAME", help: "the model's name in the API (default: the file's or folder's name; one --model only)"),
        OptionSpec(name: "timeout", valueName: "S", help: "close connections idle (or not reading) for S seconds (default 30)"),
        OptionSpec(name: "allowed-origins", valueName: "LIST", help: "browser origins allowed to call the API (CORS), comma-separated, or '*' (default: none)"),
        OptionSpec(name: "no-access-log", valueName: nil, help: "do not log one line per request on stderr"),
        OptionSpec(name: "router-max-wait", valueName: "SECONDS", help: "with several models or levels, 'auto' steps down its ladder when a target's expected queue wait passes this (default 1)"),
        OptionSpec(name: "usd-per-hour", valueName: "X", help: "what an hour of this machine costs, for each answer's usage.cost (default 0.10: a 2-vCPU cloud VM such as AWS c7a.large)"),
        OptionSpec(name: "bench-results", valueName: "FILE", help: "a saved 'quantserve bench --save-result' file, for the web page's cost explorer"),
        OptionSpec(name: "response-cache", valueName: "N", help: "answer repeated deterministic requests (temperature 0 or a seed) from a cache of N answers (default 0: off)"),
        maxWaitingOption,
    ] + OptionSpec.engine

    static func run(_ arguments: ParsedArguments) throws {
        let level = try parseLevel(arguments.string("quant"))
        let config: ServerConfig
        if let file = arguments.string("config") {
            guard arguments.strings("model").isEmpty, arguments.string("served-model-name") == nil else {
                throw UsageError("give '--config FILE' or '--model PATH', not both (the file lists the models)")
            }
            do { config = try ServerConfig.load(path: file) } catch { throw UsageError("\(error)") }
        } else {
            _ = try arguments.required("model")
            config = ServerConfig(models: try servedModels(arguments.strings("model"),
                                                           servedName: arguments.string("served-model-name")))
        }
        let targets = config.targets
        var seen = Set<String>()
        for t in targets where !seen.insert(t.name).inserted {
            throw UsageError("two served models are named '\(t.name)': give each model once, or its levels in one list")
        }
        // Each engine's settings: the command line's, and a config file's per-model ones over them.
        var settings: [(options: EngineOptions, calibration: String?)] = []
        for t in targets {
            let own = try ParsedArguments(t.engine.sorted { $0.key < $1.key }.flatMap { ["--\($0.key)", $0.value] },
                                          specs: OptionSpec.engine + [maxWaitingOption, .calibration])
            let merged = arguments.overridden(by: own)
            // A server runs more sequences at once than a batch job: a client behind a crowd of long generations
            // still starts within a step or two instead of waiting for them to end.
            var options = try merged.engineOptions(defaultSequences: 64)
            options.maxWaiting = try merged.int("max-waiting", range: 1...1_000_000) ?? 256
            settings.append((options, try calibrationText(merged)))
        }
        if targets.count > 1 {
            // One machine's cores and KV budget shared: the engines take turns step by step.
            let gate = ComputeGate()
            for i in settings.indices {
                settings[i].options.computeGate = gate
                settings[i].options.memoryShares = targets.count
            }
        }
        for s in settings { try s.options.validate() }

        var http = HTTPServerOptions()
        http.host = arguments.string("host") ?? "127.0.0.1"
        http.port = UInt16(try arguments.int("port", range: 0...65535) ?? 8080)
        http.idleTimeoutSeconds = UInt32(try arguments.int("timeout", range: 1...86400) ?? 30)
        var api = APIServerOptions()
        api.apiKey = try apiKey(arguments)
        api.maxBodyBytes = http.maxBodyBytes
        api.accessLog = AccessLog(enabled: !arguments.flag("no-access-log"))
        api.usdPerHour = try arguments.double("usd-per-hour", range: 0...1_000_000) ?? config.usdPerHour
            ?? APIServerOptions.defaultUSDPerHour
        api.routerMaxWaitSeconds = try arguments.double("router-max-wait", range: 0...86_400) ?? 1.0
        api.allowedOrigins = (arguments.string("allowed-origins") ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        api.routers = config.routers.isEmpty ? nil : config.routers
        api.apiKeys = config.apiKeys
        api.history = config.history
        api.responseCacheEntries = try arguments.int("response-cache", range: 0...1_000_000) ?? config.responseCacheEntries
        api.shadows = config.shadows
        api.benchResults = try benchResults(arguments.string("bench-results"))
        let models = targets.map { ServedModel(name: $0.name, path: $0.path) }
        let server = APIServer(models: ModelTable(models), options: api)
        let listener = try HTTPServer(options: http, handler: server)
        let base = "http://\(http.host.contains(":") ? "[\(http.host)]" : http.host):\(listener.port)"
        logToStderr("listening on \(base) (loading \(models.map(\.name).joined(separator: ", ")); /health answers 503 until "
                    + "\(models.count > 1 ? "they are" : "it is") ready)")
        let shutdown = Shutdown(server: server, listener: listener, models: models)
        let signals = shutdown.install()

        for ((target, setting), model) in zip(zip(targets, settings), models) {
            let engine: Engine
            do {
                engine = try startEngine(path: target.path, level: target.level ?? level, options: setting.options,
                                         calibration: setting.calibration)
            } catch {
                model.failed("\(error)")
                listener.stop()
                for m in models { m.engine?.shutdown() }
                throw error
            }
            model.ready(engine)
            let d = engine.description
            logToStderr("ready: \(model.name) at \(d.level.rawValue), \(d.threads) threads, context \(d.contextSize), "
                        + "\(d.kvBlocks) KV blocks, load \(String(format: "%.2f", d.loadSeconds)) s")
        }
        let model = models[0]
        let auth = server.keys.required ? " -H 'Authorization: Bearer $KEY'" : ""
        FileHandle.standardOutput.write(Data("""
            QuantServe is serving \(models.map(\.name).joined(separator: ", ")) at \(base)/v1 (OpenAI-compatible).
            Open \(base)/ in a browser to chat and compare levels, or try:
              curl \(base)/v1/chat/completions -H 'Content-Type: application/json'\(auth) \\
                -d '{"model": "\(model.name)", "messages": [{"role": "user", "content": "Write a haiku about CPUs"}]}'
            Ctrl-C stops it.

            """.utf8))
        withExtendedLifetime(signals) { shutdown.wait() }
    }

    /// A saved bench result: a JSON list of level rows, each with its `quant`.
    static func benchResults(_ path: String?) throws -> JSONValue? {
        guard let path else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { throw UsageError("cannot read '--bench-results' \(path)") }
        guard let value = try? JSONValue.parse(Array(data)), let rows = value.array, !rows.isEmpty,
              rows.allSatisfy({ $0["quant"]?.string != nil }) else {
            throw UsageError("'--bench-results' \(path) is not a saved bench result (a JSON list of rows with 'quant'; "
                             + "write one with 'quantserve bench --save-result FILE')")
        }
        return value
    }

    /// Also a config file's per-model setting.
    static let maxWaitingOption = OptionSpec(name: "max-waiting", valueName: "N",
                                             help: "requests that may wait for the engine; more get 429 (default 256)")

    /// The `--model` values (each `PATH` or `PATH:LEVEL,...`; repeatable) as the models of a config. A model given
    /// with levels is served once per level as `NAME:LEVEL`; without, as `NAME` at `--quant` (or its default). `NAME`
    /// is the file's or folder's name, or `--served-model-name` when there is one model.
    static func servedModels(_ values: [String], servedName: String?) throws -> [ServerConfig.Model] {
        guard servedName == nil || values.count == 1 else {
            throw UsageError("'--served-model-name' names one model; with several '--model', each is named after its file")
        }
        var models: [ServerConfig.Model] = []
        for value in values {
            var path = value, levels: [QuantLevel] = []
            if !FileManager.default.fileExists(atPath: value), let colon = value.lastIndex(of: ":") {
                path = String(value[..<colon])
                let list = value[value.index(after: colon)...].split(separator: ",", omittingEmptySubsequences: false)
                levels = try list.map { try parseLevel(String($0)) }
                guard Set(levels).count == levels.count else { throw UsageError("'--model \(value)' lists a level twice") }
            }
            guard FileManager.default.fileExists(atPath: path) else { throw UsageError("no model at '\(path)'") }
            models.append(ServerConfig.Model(name: servedName ?? ServedModel.defaultName(forPath: path), path: path, levels: levels))
        }
        return models
    }

    static func apiKey(_ arguments: ParsedArguments) throws -> String? {
        let inline = arguments.string("api-key"), file = arguments.string("api-key-file")
        guard inline == nil || file == nil else { throw UsageError("give at most one of '--api-key' and '--api-key-file'") }
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else { throw UsageError("cannot read '--api-key-file' \(file)") }
            let key = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            guard !key.isEmpty else { throw UsageError("'--api-key-file' \(file) is empty") }
            return key.trimmingCharacters(in: .whitespaces)
        }
        if let inline, inline.isEmpty { throw UsageError("'--api-key' is empty") }
        return inline
    }
}

/// SIGINT or SIGTERM: stop accepting, end every stream with `abort` at once, stop the engine, exit 0 (within 5 s).
final class Shutdown: Sendable {
    let server: APIServer
    let listener: HTTPServer
    let models: [ServedModel]
    private let done = DispatchSemaphore(value: 0)

    init(server: APIServer, listener: HTTPServer, models: [ServedModel]) {
        self.server = server
        self.listener = listener
        self.models = models
    }

    /// Handles the signals from now on; the sources must be kept alive.
    func install() -> [any DispatchSourceSignal] {
        signal(SIGPIPE, SIG_IGN)
        // Each connection takes a socket and an eventfd: let the process open as many files as it is allowed.
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in self.run() }
            source.resume()
            sources.append(source)
        }
        return sources
    }


    private func run() {
        logToStderr("shutting down: ending every stream")
        // Whatever happens below, the process is gone within 5 s.
        DispatchQueue.global().asyncAfter(deadline: .now() + 4.5) { exit(0) }
        let started = DispatchTime.now()
        server.shutdown()
        let drained = DispatchTime.now()
        listener.stop()
        let stopped = DispatchTime.now()
        for model in models { model.engine?.shutdown() }
        logToStderr(String(format: "stopped: streams ended in %.3f s, connections closed in %.3f s",
                           drained.seconds(since: started), stopped.seconds(since: drained)))
        done.signal()
        exit(0)
    }

    func wait() {
        done.wait()
    }
}
