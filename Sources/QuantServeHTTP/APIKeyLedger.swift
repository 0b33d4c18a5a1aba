import Foundation
import Synchronization

/// The API keys a server accepts (`--api-key`, and config `api_keys` with names and optional token budgets), what
/// each has used, and the budgets' windows. A key's budget counts prompt and completion tokens of finished requests
/// in a window that starts with its first request and lasts `windowSeconds`; once spent, requests get 429
/// `quota_exceeded` with `Retry-After` the seconds until the window ends. A request that starts within budget runs
/// to its end (it may overshoot the budget by its own tokens).
public final class APIKeyLedger: Sendable {
    struct Usage: Sendable {
        var requests = 0
        var promptTokens = 0
        var completionTokens = 0
        var costUSD = 0.0
        var refused = 0
        /// Tokens in the current budget window, and when it started.
        var windowTokens = 0
        var windowStart: Double?
    }

    public let keys: [ServerConfig.APIKey]
    private let usage: Mutex<[String: Usage]>
    /// Seconds, monotonic; a parameter so that tests can move time.
    private let clock: @Sendable () -> Double

    public init(keys: [ServerConfig.APIKey], clock: @escaping @Sendable () -> Double = APIKeyLedger.monotonicSeconds) {
        self.keys = keys
        self.clock = clock
        usage = Mutex(Dictionary(uniqueKeysWithValues: keys.map { ($0.name, Usage()) }))
    }

    public static func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Whether requests must send a key.
    public var required: Bool { !keys.isEmpty }

    /// The name of the key an `Authorization: Bearer KEY` header sends, nil when it sends none of them. Every key
    /// is compared in time that depends only on the lengths.
    public func identify(_ header: String?) -> String? {
        var found: String?
        for k in keys where APIServer.authorized(header, key: k.key) { found = k.name }
        return found
    }

    /// Counts a request of `name` and refuses it when the key's budget is spent.
    public func admit(_ name: String) throws(APIError) {
        let now = clock()
        let refusal = usage.withLock { all -> Double? in
            guard let key = keys.first(where: { $0.name == name }) else { return nil }
            var u = all[name] ?? Usage()
            defer { all[name] = u }
            if let start = u.windowStart, now - start >= key.windowSeconds { u.windowStart = nil; u.windowTokens = 0 }
            if u.windowStart == nil { u.windowStart = now }
            if let budget = key.tokenBudget, u.windowTokens >= budget {
                u.refused += 1
                return key.windowSeconds - (now - u.windowStart!)
            }
            u.requests += 1
            return nil
        }
        if let wait = refusal {
            var e = APIError(status: 429, message: "the API key '\(name)' has used its token budget for this window; "
                             + "it renews in \(Int(wait.rounded(.up))) s", type: "insufficient_quota", code: "quota_exceeded")
            e.headers["Retry-After"] = String(max(1, Int(wait.rounded(.up))))
            throw e
        }
    }

    /// A finished request's tokens and cost, charged to its key.
    public func charge(_ name: String, promptTokens: Int, completionTokens: Int, usd: Double) {
        usage.withLock { all in
            guard all[name] != nil else { return }
            all[name]!.promptTokens += promptTokens
            all[name]!.completionTokens += completionTokens
            all[name]!.costUSD += usd
            all[name]!.windowTokens += promptTokens + completionTokens
        }
    }

    /// `quantserve:api_key_*` counters, one line per key name.
    func render() -> String {
        guard !keys.isEmpty else { return "" }
        let snapshot = usage.withLock { $0 }.sorted { $0.key < $1.key }
        var out = ""
        let families: [(String, String, (Usage) -> String)] = [
            ("api_key_requests_total", "Requests admitted, by API key name.", { "\($0.requests)" }),
            ("api_key_refused_total", "Requests refused because the key's token budget was spent.", { "\($0.refused)" }),
            ("api_key_prompt_tokens_total", "Prompt tokens of finished requests, by API key name.", { "\($0.promptTokens)" }),
            ("api_key_generation_tokens_total", "Tokens generated for finished requests, by API key name.", { "\($0.completionTokens)" }),
            ("api_key_cost_usd_total", "What finished requests cost, by API key name.", { "\($0.costUSD)" }),
        ]
        for (name, help, value) in families {
            out += "# HELP quantserve:\(name) \(help)\n# TYPE quantserve:\(name) counter\n"
            for (key, u) in snapshot { out += "quantserve:\(name){key=\"\(key)\"} \(value(u))\n" }
        }
        out += "# HELP quantserve:api_key_budget_remaining_tokens Tokens left in the key's current budget window.\n"
        out += "# TYPE quantserve:api_key_budget_remaining_tokens gauge\n"
        for key in keys.sorted(by: { $0.name < $1.name }) {
            guard let budget = key.tokenBudget else { continue }
            let used = snapshot.first { $0.key == key.name }?.value.windowTokens ?? 0
            out += "quantserve:api_key_budget_remaining_tokens{key=\"\(key.name)\"} \(max(0, budget - used))\n"
        }
        return out
    }

    /// Per key name: requests, prompt and completion tokens, cost (for the report).
    var totals: [(name: String, requests: Int, promptTokens: Int, completionTokens: Int, usd: Double, refused: Int)] {
        usage.withLock { $0 }.sorted { $0.key < $1.key }.map {
            ($0.key, $0.value.requests, $0.value.promptTokens, $0.value.completionTokens, $0.value.costUSD, $0.value.refused)
        }
    }
}
