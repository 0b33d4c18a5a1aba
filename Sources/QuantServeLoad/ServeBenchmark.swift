import Foundation
import QuantServeJSON
import Synchronization

/// `quantserve bench serve`: requests to an OpenAI-compatible server, streamed and timed as `vllm bench serve` does.
public struct ServeBenchConfig: Sendable {
    public enum Arrivals: Sendable, Equatable {
        /// A closed loop: this many clients, each sending its next request when the last one ends.
        case concurrency(Int)
        /// An open loop: Poisson arrivals at this many requests per second, at most `maxInFlight` at once.
        case rate(Double, maxInFlight: Int)
    }
    public var client: ServeClient
    public var model: String
    public var chat: Bool
    public var arrivals: Arrivals
    public var ignoreEOS: Bool
    public var seed: UInt64
    /// Service-level objectives for goodput (milliseconds): a request counts when it meets every one given.
    public var goodput: [String: Double]

    public init(client: ServeClient, model: String, chat: Bool, arrivals: Arrivals, ignoreEOS: Bool = true,
                seed: UInt64 = 0, goodput: [String: Double] = [:]) {
        self.client = client
        self.model = model
        self.chat = chat
        self.arrivals = arrivals
        self.ignoreEOS = ignoreEOS
        self.seed = seed
        self.goodput = goodput
    }
}

/// One request's outcome: when its tokens came, how many, or why it failed.
public struct ServeRequestRecord: Sendable {
    public var error: String?
    public var inputTokens = 0
    public var outputTokens = 0
    /// Seconds from sending to the first token, between later tokens, and to the end.
    public var ttft: Double?
    public var itl: [Double] = []
    public var latency = 0.0
    public var succeeded: Bool { error == nil }
    /// Seconds per output token after the first (vLLM's TPOT); nil without a second token.
    public var tpot: Double? {
        guard let ttft, outputTokens > 1 else { return nil }
        return (latency - ttft) / Double(outputTokens - 1)
    }
}

/// The figures of one run, named as `vllm bench serve --save-result` names them (times in milliseconds).
public struct ServeBenchResult: Sendable, Codable {
    public var max_concurrency: Int?
    public var request_rate: Double?
    public var num_prompts: Int
    public var completed: Int
    public var failed: Int
    public var duration: Double
    public var total_input_tokens: Int
    public var total_output_tokens: Int
    public var request_throughput: Double
    public var request_goodput: Double?
    public var output_throughput: Double
    public var total_token_throughput: Double
    public var mean_ttft_ms: Double, median_ttft_ms: Double, std_ttft_ms: Double, p99_ttft_ms: Double
    public var mean_tpot_ms: Double, median_tpot_ms: Double, std_tpot_ms: Double, p99_tpot_ms: Double
    public var mean_itl_ms: Double, median_itl_ms: Double, std_itl_ms: Double, p99_itl_ms: Double
    public var mean_e2el_ms: Double, median_e2el_ms: Double, std_e2el_ms: Double, p99_e2el_ms: Double
    /// The first few distinct reasons requests failed.
    public var errors: [String]
}

public enum ServeBenchmark {
    /// Sends every prompt per `config.arrivals` and waits for all; a server error, a broken or truncated stream or a
    /// timeout makes a request fail (counted, never timed).
    public static func run(_ config: ServeBenchConfig, prompts: [ServePrompt]) -> ServeBenchResult {
        let records = Mutex([ServeRequestRecord?](repeating: nil, count: prompts.count))
        let group = DispatchGroup()
        let start = DispatchTime.now()
        @Sendable func launch(_ i: Int, then: @escaping @Sendable () -> Void = {}) {
            group.enter()
            let thread = Thread {
                let record = send(prompts[i], config)
                records.withLock { $0[i] = record }
                then()
                group.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        switch config.arrivals {
        case .concurrency(let clients):
            let next = Atomic<Int>(0)
            @Sendable func client() {
                let i = next.add(1, ordering: .relaxed).oldValue
                guard i < prompts.count else { return }
                launch(i, then: client)
            }
            for _ in 0..<min(clients, prompts.count) { client() }
        case .rate(let rate, let maxInFlight):
            let slots = DispatchSemaphore(value: maxInFlight)
            for (i, offset) in ServeWorkload.poissonArrivals(count: prompts.count, rate: rate, seed: config.seed).enumerated() {
                let wait = offset - DispatchTime.now().seconds(since: start)
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                slots.wait()
                launch(i) { slots.signal() }
            }
        }
        group.wait()
        let duration = DispatchTime.now().seconds(since: start)
        return summarize(records.withLock { $0.map { $0! } }, duration: duration, config: config)
    }

    /// The request body for one prompt.
    static func body(_ prompt: ServePrompt, _ config: ServeBenchConfig) -> JSONValue {
        var fields: [(key: String, value: JSONValue)] = [
            ("model", .string(config.model)), ("max_tokens", JSONValue(prompt.outputTokens)), ("temperature", 0),
            ("stream", true), ("stream_options", ["include_usage": true]),
        ]
        if config.ignoreEOS { fields.append(("ignore_eos", true)) }
        switch prompt.content {
        case .messages(let messages): fields.append(("messages", messages))
        case .text(let text) where config.chat: fields.append(("messages", [["role": "user", "content": .string(text)]]))
        case .text(let text): fields.append(("prompt", .string(text)))
        case .tokens(let ids): fields.append(("prompt", .array(ids.map { JSONValue($0) })))
        }
        return .object(fields)
    }

    /// One streamed request, timed: the first token's arrival, each later one's, the end.
    static func send(_ prompt: ServePrompt, _ config: ServeBenchConfig) -> ServeRequestRecord {
        var record = ServeRequestRecord()
        record.inputTokens = prompt.inputTokens ?? 0
        let start = DispatchTime.now()
        let path = config.chat || { if case .messages = prompt.content { return true }; return false }()
            ? "/v1/chat/completions" : "/v1/completions"
        do {
            let exchange = try HTTPExchange(endpoint: config.client.endpoint, method: "POST", path: path,
                                            headers: config.client.headers, body: Array(body(prompt, config).serialized.utf8),
                                            timeout: config.client.timeout)
            guard exchange.status == 200 else {
                let bytes = (try? exchange.readWholeBody(limit: 1 << 20)) ?? []
                throw ServeError.status(exchange.status, ServeError.summary(bytes))
            }
            var parser = SSEParser()
            var done = false
            var chunks = 0
            var usage: (prompt: Int?, completion: Int?) = (nil, nil)
            var last = start
            var failure: String?
            try exchange.readBody { bytes in
                for data in parser.feed(bytes) {
                    if data == "[DONE]" { done = true; return false }
                    guard let event = try? JSONValue.parse(Array(data.utf8)) else {
                        failure = "an event that is not JSON: \(data.prefix(80))"; return false
                    }
                    if let error = event["error"] {
                        failure = "an error in the stream: \(error["message"]?.string ?? error.serialized)"; return false
                    }
                    if let u = event["usage"], !u.isNull {
                        usage = (u["prompt_tokens"]?.int, u["completion_tokens"]?.int)
                    }
                    let choice = event["choices"]?.array?.first
                    let text = choice?["text"]?.string ?? choice?["delta"]?["content"]?.string ?? ""
                    guard !text.isEmpty else { continue }
                    let now = DispatchTime.now()
                    if record.ttft == nil { record.ttft = now.seconds(since: start) } else { record.itl.append(now.seconds(since: last)) }
                    last = now
                    chunks += 1
                }
                return !parser.overflowed
            }
            if let failure { throw ServeError.protocolError(failure) }
            if parser.overflowed { throw ServeError.protocolError("an event line over \(SSEParser.lineLimit) bytes") }
            guard done else { throw ServeError.protocolError("the stream ended without [DONE]") }
            guard record.ttft != nil else { throw ServeError.protocolError("no token was streamed") }
            record.outputTokens = usage.completion ?? chunks
            if let p = usage.prompt { record.inputTokens = p }
            record.latency = DispatchTime.now().seconds(since: start)
        } catch {
            record.error = "\(error)"
        }
        return record
    }

    static func summarize(_ records: [ServeRequestRecord], duration: Double, config: ServeBenchConfig) -> ServeBenchResult {
        let ok = records.filter(\.succeeded)
        let ttft = ok.compactMap(\.ttft).map { $0 * 1000 }
        let tpot = ok.compactMap(\.tpot).map { $0 * 1000 }
        let itl = ok.flatMap(\.itl).map { $0 * 1000 }
        let e2el = ok.map { $0.latency * 1000 }
        let input = ok.reduce(0) { $0 + $1.inputTokens }, output = ok.reduce(0) { $0 + $1.outputTokens }
        var good: Double?
        if !config.goodput.isEmpty {
            let meeting = ok.filter { r in
                let figures: [String: Double] = [
                    "ttft": r.ttft! * 1000, "e2el": r.latency * 1000,
                    "tpot": (r.tpot ?? 0) * 1000,
                ]
                return config.goodput.allSatisfy { key, bound in (figures[key] ?? .infinity) <= bound }
            }
            good = Double(meeting.count) / duration
        }
        var errors: [String] = []
        for r in records { if let e = r.error, !errors.contains(e), errors.count < 5 { errors.append(e) } }
        typealias S = ServeStatistics
        var concurrency: Int?, rate: Double?
        switch config.arrivals {
        case .concurrency(let c): concurrency = c
        case .rate(let r, let m): rate = r; concurrency = m
        }
        return ServeBenchResult(
            max_concurrency: concurrency, request_rate: rate, num_prompts: records.count, completed: ok.count,
            failed: records.count - ok.count, duration: duration, total_input_tokens: input, total_output_tokens: output,
            request_throughput: Double(ok.count) / duration, request_goodput: good,
            output_throughput: Double(output) / duration, total_token_throughput: Double(input + output) / duration,
            mean_ttft_ms: S.mean(ttft), median_ttft_ms: S.percentile(ttft, 50), std_ttft_ms: S.std(ttft), p99_ttft_ms: S.percentile(ttft, 99),
            mean_tpot_ms: S.mean(tpot), median_tpot_ms: S.percentile(tpot, 50), std_tpot_ms: S.std(tpot), p99_tpot_ms: S.percentile(tpot, 99),
            mean_itl_ms: S.mean(itl), median_itl_ms: S.percentile(itl, 50), std_itl_ms: S.std(itl), p99_itl_ms: S.percentile(itl, 99),
            mean_e2el_ms: S.mean(e2el), median_e2el_ms: S.percentile(e2el, 50), std_e2el_ms: S.std(e2el), p99_e2el_ms: S.percentile(e2el, 99),
            errors: errors)
    }

    /// The report as `vllm bench serve` prints it.
    public static func text(_ r: ServeBenchResult, goodput: Bool) -> String {
        func row(_ label: String, _ value: String) -> String { label.padding(toLength: 41, withPad: " ", startingAt: 0) + value }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        var lines = [String(repeating: "=", count: 12) + " Serving Benchmark Result " + String(repeating: "=", count: 12)]
        if let c = r.max_concurrency { lines.append(row(r.request_rate == nil ? "Concurrency:" : "Maximum request concurrency:", "\(c)")) }
        if let rate = r.request_rate { lines.append(row("Request rate (req/s):", f(rate))) }
        lines += [row("Successful requests:", "\(r.completed)"), row("Failed requests:", "\(r.failed)"),
                  row("Benchmark duration (s):", f(r.duration)), row("Total input tokens:", "\(r.total_input_tokens)"),
                  row("Total generated tokens:", "\(r.total_output_tokens)"),
                  row("Request throughput (req/s):", f(r.request_throughput))]
        if goodput, let g = r.request_goodput { lines.append(row("Request goodput (req/s):", f(g))) }
        lines += [row("Output token throughput (tok/s):", f(r.output_throughput)),
                  row("Total token throughput (tok/s):", f(r.total_token_throughput))]
        for (title, key, mean, median, p99) in [
            ("Time to First Token", "TTFT", r.mean_ttft_ms, r.median_ttft_ms, r.p99_ttft_ms),
            ("Time per Output Token (excl. 1st token)", "TPOT", r.mean_tpot_ms, r.median_tpot_ms, r.p99_tpot_ms),
            ("Inter-token Latency", "ITL", r.mean_itl_ms, r.median_itl_ms, r.p99_itl_ms),
            ("End-to-end Latency", "E2EL", r.mean_e2el_ms, r.median_e2el_ms, r.p99_e2el_ms),
        ] {
            let pad = max(0, 50 - title.count)
            lines.append(String(repeating: "-", count: pad / 2) + title + String(repeating: "-", count: pad - pad / 2))
            lines += [row("Mean \(key) (ms):", f(mean)), row("Median \(key) (ms):", f(median)), row("P99 \(key) (ms):", f(p99))]
        }
        for e in r.errors { lines.append("failure: \(e)") }
        lines.append(String(repeating: "=", count: 50))
        return lines.joined(separator: "\n")
    }
}
