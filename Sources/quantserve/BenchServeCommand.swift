import Foundation
import QuantServe
import QuantServeLoad

/// `quantserve bench serve`: load on any OpenAI-compatible server over HTTP, reported as `vllm bench serve` does.
struct BenchServeCommand: Command {
    static let name = "bench serve"
    static let summary = "load an OpenAI-compatible server (ours, llama-server, vLLM) and report throughput, TTFT, TPOT, ITL"
    static let options: [OptionSpec] = [
        OptionSpec(name: "url", valueName: "URL", help: "the server, http://HOST:PORT (required)"),
        OptionSpec(name: "model", valueName: "NAME", help: "the model to ask for (default: the first /v1/models lists)"),
        OptionSpec(name: "endpoint", valueName: "KIND", help: "completions or chat (default completions)"),
        OptionSpec(name: "concurrency", valueName: "LIST", help: "clients, one run per value, comma-separated (default 16)"),
        OptionSpec(name: "request-rate", valueName: "R", help: "Poisson arrivals at R requests/s instead of fixed clients"),
        OptionSpec(name: "max-concurrency", valueName: "N", help: "with --request-rate: most requests in flight (default 256)"),
        OptionSpec(name: "num-prompts", valueName: "N", help: "requests per run (default 64)"),
        OptionSpec(name: "input-len", valueName: "N", help: "random prompts of N tokens, through the server's /tokenize (default 128)"),
        OptionSpec(name: "output-len", valueName: "N", help: "tokens asked for per request (default 64)"),
        OptionSpec(name: "dataset", valueName: "FILE.jsonl", help: "prompts instead: {\"prompt\": ...} or {\"messages\": [...]}, optional \"max_tokens\""),
        OptionSpec(name: "no-ignore-eos", valueName: nil, help: "let requests end at end-of-generation (default: ignore_eos, exact lengths)"),
        OptionSpec(name: "goodput", valueName: "SLOS", help: "requests/s meeting every bound, e.g. ttft:500,tpot:100 (ms; also e2el)"),
        OptionSpec(name: "warmup", valueName: "N", help: "untimed requests first (default 1; it also checks the endpoint)"),
        OptionSpec(name: "seed", valueName: "S", help: "seed for prompts and arrivals (default 0)"),
        OptionSpec(name: "timeout", valueName: "S", help: "longest wait for any read from the server, seconds (default 600)"),
        OptionSpec(name: "api-key", valueName: "KEY", help: "sent as 'Authorization: Bearer KEY'"),
        OptionSpec(name: "json", valueName: nil, help: "print a JSON list, one object per run"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let endpoint: HTTPEndpoint
        do { endpoint = try HTTPEndpoint(url: try arguments.required("url")) } catch { throw UsageError("\(error)") }
        let timeout = try arguments.double("timeout", range: 0.1...86_400) ?? 600
        let client = ServeClient(endpoint: endpoint, apiKey: arguments.string("api-key"), timeout: timeout)
        let chat: Bool
        switch arguments.string("endpoint") ?? "completions" {
        case "completions": chat = false
        case "chat": chat = true
        case let other: throw UsageError("'--endpoint' must be completions or chat, got '\(other)'")
        }
        let count = try arguments.int("num-prompts", range: 1...1_000_000) ?? 64
        let outputLength = try arguments.int("output-len", range: 1...1_000_000) ?? 64
        let inputLength = try arguments.int("input-len", range: 1...1_000_000) ?? 128
        let dataset = arguments.string("dataset")
        if dataset != nil, arguments.string("input-len") != nil {
            throw UsageError("'--input-len' and '--dataset' exclude each other")
        }
        let seed = try arguments.string("seed").map { s -> UInt64 in
            guard let v = UInt64(s) else { throw UsageError("'--seed' must be a non-negative integer, got '\(s)'") }
            return v
        } ?? 0
        let warmup = try arguments.int("warmup", range: 0...1000) ?? 1
        var runs: [ServeBenchConfig.Arrivals]
        if let rate = try arguments.double("request-rate", range: 0.001...1_000_000) {
            guard arguments.string("concurrency") == nil else { throw UsageError("'--concurrency' and '--request-rate' exclude each other") }
            runs = [.rate(rate, maxInFlight: try arguments.int("max-concurrency", range: 1...1024) ?? 256)]
        } else {
            guard arguments.string("max-concurrency") == nil else { throw UsageError("'--max-concurrency' goes with '--request-rate'") }
            runs = try intList(arguments.string("concurrency") ?? "16", option: "concurrency", range: 1...1024).map { .concurrency($0) }
        }
        let goodput = try arguments.string("goodput").map(parseGoodput) ?? [:]
        let json = arguments.flag("json")

        let model: String
        let prompts: [ServePrompt]
        do {
            model = try arguments.string("model") ?? client.firstModel()
            if let dataset {
                prompts = try ServeWorkload.dataset(path: dataset, count: count + warmup, outputTokens: outputLength)
            } else {
                prompts = try ServeWorkload.randomPrompts(count: count + warmup, inputTokens: inputLength, outputTokens: outputLength,
                                                          chat: chat, seed: seed, client: client)
            }
        } catch let error as ServeWorkloadError {
            throw UsageError("\(error)")
        } catch {
            throw ChildFailure(description: "\(endpoint.host):\(endpoint.port): \(error)")
        }
        var results: [ServeBenchResult] = []
        for (k, arrivals) in runs.enumerated() {
            let config = ServeBenchConfig(client: client, model: model, chat: chat, arrivals: arrivals,
                                          ignoreEOS: !arguments.flag("no-ignore-eos"), seed: seed &+ UInt64(k), goodput: goodput)
            // Warm-up requests, untimed; the first run's also checks that the server answers at all.
            if warmup > 0 {
                let check = ServeBenchmark.run(ServeBenchConfig(client: client, model: model, chat: chat, arrivals: .concurrency(1),
                                                                ignoreEOS: config.ignoreEOS),
                                               prompts: Array(prompts.suffix(warmup)))
                if check.completed == 0 {
                    throw ChildFailure(description: "the warm-up request failed: \(check.errors.first ?? "unknown error")")
                }
            }
            if !json { logToStderr("bench serve: \(describe(arrivals)), \(count) requests to \(model) at \(endpoint.host):\(endpoint.port)") }
            let result = ServeBenchmark.run(config, prompts: Array(prompts.prefix(count)))
            results.append(result)
            if !json { print(ServeBenchmark.text(result, goodput: !goodput.isEmpty)) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        }
    }

    static func describe(_ arrivals: ServeBenchConfig.Arrivals) -> String {
        switch arrivals {
        case .concurrency(let c): "\(c) concurrent clients"
        case .rate(let r, let m): "Poisson arrivals at \(r) req/s (at most \(m) in flight)"
        }
    }

    /// `ttft:500,tpot:100,e2el:3000` (milliseconds).
    static func parseGoodput(_ raw: String) throws -> [String: Double] {
        var bounds: [String: Double] = [:]
        for part in raw.split(separator: ",") {
            let pieces = part.split(separator: ":")
            guard pieces.count == 2, ["ttft", "tpot", "e2el"].contains(String(pieces[0])),
                  let ms = Double(pieces[1]), ms > 0, ms.isFinite else {
                throw UsageError("'--goodput' takes NAME:MS pairs with NAME ttft, tpot or e2el, got '\(part)'")
            }
            bounds[String(pieces[0])] = ms
        }
        return bounds
    }
}
