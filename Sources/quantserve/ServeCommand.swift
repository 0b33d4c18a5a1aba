import Dispatch
import Foundation
import QuantServe
import QuantServeHTTP

struct ServeCommand: Command {
    static let name = "serve"
    static let summary = "serve the model over an OpenAI-compatible HTTP API"
    static let options: [OptionSpec] = [
        OptionSpec(name: "model", valueName: "PATH[:LEVEL,...]", help: "GGUF model file or Hugging Face model folder; with levels, served once per level as NAME:LEVEL (repeatable: several models in one server, taking turns on the cores)"),
        OptionSpec(name: "quant", valueName: "LEVEL", help: "weights in memory: \(QuantLevel.allCases.map(\.rawValue).joined(separator: ", ")) (default: native for a quantized GGUF file, a pre-quantized folder's own level, else \(QuantLevel.default.rawValue))"),
        .calibration,
        OptionSpec(name: "host", valueName: "ADDR", help: "address to listen on (default 127.0.0.1: this machine only)"),
        OptionSpec(name: "port", valueName: "N", help: "port to listen on (default 8080; 0: any free port)"),
        OptionSpec(name: "api-key", valueName: "KEY", help: "require 'Authorization: Bearer KEY' (not on /health and /metrics)"),
        OptionSpec(name: "api-key-file", valueName: "FILE", help: "read the API key from FILE (first line)"),
        OptionSpec(name: "served-model-name", valueName: "NAME", help: "the model's name in the API (default: the file's or folder's name; one --model only)"),
        OptionSpec(name: "max-waiting", valueName: "N", help: "requests that may wait for the engine; more get 429 (default 256)"),
        OptionSpec(name: "timeout", valueName: "S", help: "close connections idle (or not reading) for S seconds (default 30)"),
        OptionSpec(name: "allowed-origins", valueName: "LIST", help: "browser origins allowed to call the API (CORS), comma-separated, or '*' (default: none)"),
        OptionSpec(name: "no-access-log", valueName: nil, help: "do not log one line per request on stderr"),
        OptionSpec(name: "router-max-wait", valueName: "SECONDS", help: "with several models or levels, 'auto' steps down its ladder when a target's expected queue wait passes this (default 1)"),
        OptionSpec(name: "usd-per-hour", valueName: "X", help: "what an hour of this machine costs, for each answer's usage.cost (default 0.10: a 2-vCPU cloud VM such as AWS c7a.large)"),
    ] + OptionSpec.engine

    static func run(_ arguments: ParsedArguments) throws {
        _ = try arguments.required("model")
        let level = try parseLevel(arguments.string("quant"))
        let entries = try servedEntries(arguments.strings("model"), quant: level,
                                        servedName: arguments.string("served-model-name"))
        // A server runs more sequences at once than a batch job: a client behind a crowd of long generations still
        // starts within a step or two instead of waiting for them to end.
        var engineOptions = try arguments.engineOptions(defaultSequences: 64)
        engineOptions.maxWaiting = try arguments.int("max-waiting", range: 1...1_000_000) ?? 256
        if entries.count > 1 {
            // One machine's cores and KV budget shared: the engines take turns step by step.
            engineOptions.computeGate = ComputeGate()
            engineOptions.memoryShares = entries.count
        }
        try engineOptions.validate()
        let calibration = try calibrationText(arguments)

        var http = HTTPServerOptions()
        http.host = arguments.string("host") ?? "127.0.0.1"
        http.port = UInt16(try arguments.int("port", range: 0...65535) ?? 8080)
        http.idleTimeoutSeconds = UInt32(try arguments.int("timeout", range: 1...86400) ?? 30)
        var api = APIServerOptions()
        api.apiKey = try apiKey(arguments)
        api.maxBodyBytes = http.maxBodyBytes
        api.accessLog = AccessLog(enabled: !arguments.flag("no-access-log"))
        api.usdPerHour = try arguments.double("usd-per-hour", range: 0...1_000_000) ?? APIServerOptions.defaultUSDPerHour
        api.routerMaxWaitSeconds = try arguments.double("router-max-wait", range: 0...86_400) ?? 1.0
        api.allowedOrigins = (arguments.string("allowed-origins") ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let models = entries.map { ServedModel(name: $0.name, path: $0.path) }
        let server = APIServer(models: ModelTable(models), options: api)
        let listener = try HTTPServer(options: http, handler: server)
        let base = "http://\(http.host.contains(":") ? "[\(http.host)]" : http.host):\(listener.port)"
        logToStderr("listening on \(base) (loading \(models.map(\.name).joined(separator: ", ")); /health answers 503 until "
                    + "\(models.count > 1 ? "they are" : "it is") ready)")
        let shutdown = Shutdown(server: server, listener: listener, models: models)
        let signals = shutdown.install()

        for (entry, model) in zip(entries, models) {
            let engine: Engine
            do {
                engine = try startEngine(path: entry.path, level: entry.level, options: engineOptions, calibration: calibration)
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
        let auth = api.apiKey == nil ? "" : " -H 'Authorization: Bearer $KEY'"
        FileHandle.standardOutput.write(Data("""
            QuantServe is serving \(models.map(\.name).joined(separator: ", ")) at \(base)/v1 (OpenAI-compatible). Try:
              curl \(base)/v1/chat/completions -H 'Content-Type: application/json'\(auth) \\
                -d '{"model": "\(model.name)", "messages": [{"role": "user", "content": "Write a haiku about CPUs"}]}'
            Ctrl-C stops it.

            """.utf8))
        withExtendedLifetime(signals) { shutdown.wait() }
    }

    /// What one server answers for: a name, the model's file or folder, and its level (nil: the model's default).
    struct ServedEntry: Equatable {
        let name: String
        let path: String
        let level: QuantLevel?
    }

    /// The `--model` values (each `PATH` or `PATH:LEVEL,...`; repeatable) as served entries. A model given with levels
    /// is served once per level as `NAME:LEVEL`; without, as `NAME` at `--quant` (or its default). `NAME` is the file's
    /// or folder's name, or `--served-model-name` when there is one model.
    static func servedEntries(_ values: [String], quant: QuantLevel?, servedName: String?) throws -> [ServedEntry] {
        guard servedName == nil || values.count == 1 else {
            throw UsageError("'--served-model-name' names one model; with several '--model', each is named after its file")
        }
        var entries: [ServedEntry] = []
        for value in values {
            var path = value, levels: [QuantLevel]? = nil
            if !FileManager.default.fileExists(atPath: value), let colon = value.lastIndex(of: ":") {
                path = String(value[..<colon])
                let list = value[value.index(after: colon)...].split(separator: ",", omittingEmptySubsequences: false)
                levels = try list.map { try parseLevel(String($0)) }
                guard Set(levels!).count == levels!.count else { throw UsageError("'--model \(value)' lists a level twice") }
            }
            guard FileManager.default.fileExists(atPath: path) else { throw UsageError("no model at '\(path)'") }
            let name = servedName ?? ServedModel.defaultName(forPath: path)
            if let levels {
                entries += levels.map { ServedEntry(name: "\(name):\($0.rawValue)", path: path, level: $0) }
            } else {
                entries.append(ServedEntry(name: name, path: path, level: quant))
            }
        }
        var seen = Set<String>()
        for e in entries where !seen.insert(e.name).inserted {
            throw UsageError("two served models are named '\(e.name)': give each model once, or its levels in one list")
        }
        return entries
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
