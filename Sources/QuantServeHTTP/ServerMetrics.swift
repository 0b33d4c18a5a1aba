import Foundation
import QuantServe
import Synchronization

/// What the server counts per served model besides the engine's own counters, and the Prometheus page that
/// shows both under vLLM's names with the `quantserve:` prefix.
public final class ServerMetrics: Sendable {
    struct ModelCounters: Sendable {
        var timeToFirstToken = Histogram(bounds: Histogram.timeToFirstToken)
        var interToken = Histogram(bounds: Histogram.interToken)
        var endToEnd = Histogram(bounds: Histogram.requestLatency)
        var queueTime = Histogram(bounds: Histogram.requestLatency)
        var success: [String: Int] = ["stop": 0, "length": 0, "abort": 0]
        var failure: [String: Int] = [:]
        /// The engine seconds charged to finished requests, and their cost.
        var engineSeconds = 0.0
        var costUSD = 0.0
    }

    private let counters = Mutex<[String: ModelCounters]>([:])
    /// What an hour of the machine costs (`serve --usd-per-hour`): a request's cost is its engine seconds at this rate.
    public let usdPerHour: Double

    public init(usdPerHour: Double = APIServerOptions.defaultUSDPerHour) { self.usdPerHour = usdPerHour }

    /// The mean time of a finished request to `model` (arrival to last byte), nil before the first.
    func meanRequestSeconds(_ model: String) -> Double? {
        counters.withLock { c in
            guard let h = c[model]?.endToEnd, h.count > 0 else { return nil }
            return h.sum / Double(h.count)
        }
    }

    /// A request's cost from its engine seconds.
    func cost(engineSeconds: Double) -> Double { engineSeconds * usdPerHour / 3600 }

    func record(_ model: String, _ body: (inout ModelCounters) -> Void) {
        counters.withLock { body(&$0[model, default: ModelCounters()]) }
    }

    /// A request that ended in an error (`reason`: the error's code or type).
    func failed(_ model: String, reason: String) { record(model) { $0.failure[reason, default: 0] += 1 } }

    func finished(_ model: String, reason: String) { record(model) { $0.success[reason, default: 0] += 1 } }

    /// The Prometheus text exposition (version 0.0.4) of every model's metrics and the process's.
    func render(_ models: [ServedModel]) -> String {
        let snapshot = counters.withLock { $0 }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ body: () -> Void) {
            out += "# HELP quantserve:\(name) \(help)\n# TYPE quantserve:\(name) \(type)\n"
            body()
        }
        let ready = models.compactMap { m in m.engine.map { (m.name, $0.metrics, $0) } }
        func gauge(_ name: String, _ help: String, _ value: (EngineMetrics) -> Double) {
            family(name, "gauge", help) {
                for (n, m, _) in ready { out += "quantserve:\(name){model_name=\"\(escape(n))\"} \(value(m))\n" }
            }
        }
        func counter(_ name: String, _ help: String, _ value: (EngineMetrics) -> Int) {
            family(name, "counter", help) {
                for (n, m, _) in ready { out += "quantserve:\(name){model_name=\"\(escape(n))\"} \(value(m))\n" }
            }
        }
        gauge("num_requests_running", "Requests running in the engine (prefilling or decoding).") { Double($0.runningSequences) }
        gauge("num_requests_waiting", "Requests waiting to run (queued or preempted).") { Double($0.requestsWaiting) }
        gauge("kv_cache_usage_perc", "Fraction of KV-cache blocks referenced by live sequences (0 to 1).") {
            $0.kvBlocksTotal > 0 ? Double($0.kvBlocksUsed) / Double($0.kvBlocksTotal) : 0
        }
        counter("prompt_tokens_total", "Prompt tokens submitted.") { $0.promptTokens }
        counter("generation_tokens_total", "Tokens generated.") { $0.generatedTokens }
        counter("num_preemptions_total", "Sequences preempted to free KV-cache blocks.") { $0.preemptions }
        counter("prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.") { $0.prefixCacheQueryTokens }
        counter("prefix_cache_hits_total", "Prompt tokens found in the prefix cache.") { $0.prefixCacheHitTokens }
        family("prefix_cache_saved_seconds_total", "counter",
               "Prefill time the prefix cache saved: its hits at the measured prefill seconds per token.") {
            for (n, m, _) in ready { out += "quantserve:prefix_cache_saved_seconds_total{model_name=\"\(escape(n))\"} \(m.prefixCacheSavedSeconds)\n" }
        }
        family("request_success_total", "counter", "Requests finished, by finish reason.") {
            for (n, c) in snapshot.sorted(by: { $0.key < $1.key }) {
                for (reason, count) in c.success.sorted(by: { $0.key < $1.key }) {
                    out += "quantserve:request_success_total{model_name=\"\(escape(n))\",finished_reason=\"\(reason)\"} \(count)\n"
                }
            }
        }
        family("request_failure_total", "counter", "Requests answered with an error, by reason.") {
            for (n, c) in snapshot.sorted(by: { $0.key < $1.key }) {
                for (reason, count) in c.failure.sorted(by: { $0.key < $1.key }) {
                    out += "quantserve:request_failure_total{model_name=\"\(escape(n))\",reason=\"\(escape(reason))\"} \(count)\n"
                }
            }
        }
        let costs: [(String, String, KeyPath<ModelCounters, Double>)] = [
            ("engine_seconds_total", "Engine compute seconds charged to finished requests (each step's time by its tokens).", \.engineSeconds),
            ("cost_usd_total", "What finished requests cost: their engine seconds at --usd-per-hour.", \.costUSD),
        ]
        for (name, help, path) in costs {
            family(name, "counter", help) {
                for (n, c) in snapshot.sorted(by: { $0.key < $1.key }) {
                    out += "quantserve:\(name){model_name=\"\(escape(n))\"} \(c[keyPath: path])\n"
                }
            }
        }
        let histograms: [(String, String, KeyPath<ModelCounters, Histogram>)] = [
            ("time_to_first_token_seconds", "Time from arrival to the first token.", \.timeToFirstToken),
            ("inter_token_latency_seconds", "Time between consecutive tokens of a sequence.", \.interToken),
            ("e2e_request_latency_seconds", "Time from arrival to the last byte of the answer.", \.endToEnd),
            ("request_queue_time_seconds", "Time a sequence waited before its first step.", \.queueTime),
        ]
        for (name, help, path) in histograms {
            family(name, "histogram", help) {
                for (n, c) in snapshot.sorted(by: { $0.key < $1.key }) {
                    c[keyPath: path].render("quantserve:\(name)", labels: "model_name=\"\(escape(n))\"", into: &out)
                }
            }
        }
        out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        out += "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes \(Self.residentBytes())\n"
        return out
    }

    private func escape(_ s: String) -> String { PrometheusText.escape(s) }

    /// From /proc/self/statm (resident pages).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
