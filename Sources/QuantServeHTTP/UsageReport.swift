import Foundation
import QuantServeJSON
import Synchronization

/// What the server did, per served model and minute, for `GET /v1/quantserve/report` and `quantserve report`:
/// requests, tokens, engine time and cost, what the response cache and the prefix cache saved, router decisions
/// and shadow agreement. Kept for the last `retentionMinutes`; a report sums the minutes of its window.
public final class UsageReport: Sendable {
    struct Bucket: Sendable {
        var requests = 0
        var failed = 0
        var promptTokens = 0
        var completionTokens = 0
        var engineSeconds = 0.0
        var usd = 0.0
        var responseCacheHits = 0
        var responseCacheMisses = 0
        /// Engine seconds the cached answers took when they were computed.
        var responseCacheSavedSeconds = 0.0
        var prefixCachedTokens = 0
        var prefixCacheSavedSeconds = 0.0
        /// "router\0reason" → requests routed here.
        var routed: [String: Int] = [:]
        /// Shadow level → (tokens, same top-1, same as served, KL sum).
        var shadow: [String: ShadowSums] = [:]
        var keys: [String: Int] = [:]

        mutating func add(_ b: Bucket) {
            requests += b.requests; failed += b.failed
            promptTokens += b.promptTokens; completionTokens += b.completionTokens
            engineSeconds += b.engineSeconds; usd += b.usd
            responseCacheHits += b.responseCacheHits; responseCacheMisses += b.responseCacheMisses
            responseCacheSavedSeconds += b.responseCacheSavedSeconds
            prefixCachedTokens += b.prefixCachedTokens; prefixCacheSavedSeconds += b.prefixCacheSavedSeconds
            for (k, v) in b.routed { routed[k, default: 0] += v }
            for (k, v) in b.shadow { shadow[k, default: ShadowSums()].add(v) }
            for (k, v) in b.keys { keys[k, default: 0] += v }
        }
    }

    struct ShadowSums: Sendable {
        var tokens = 0, sameTop1 = 0, sameServed = 0
        var kl = 0.0
        mutating func add(_ o: ShadowSums) { tokens += o.tokens; sameTop1 += o.sameTop1; sameServed += o.sameServed; kl += o.kl }
    }

    public static let retentionMinutes = 24 * 60
    let usdPerHour: Double
    private let started: Double
    /// Minute (since the epoch) → model → bucket.
    private let minutes = Mutex<[Int: [String: Bucket]]>([:])
    private let clock: @Sendable () -> Double

    public init(usdPerHour: Double, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.usdPerHour = usdPerHour
        self.clock = clock
        started = clock()
    }

    func record(_ model: String, _ body: (inout Bucket) -> Void) {
        let minute = Int(clock() / 60)
        minutes.withLock { m in
            body(&m[minute, default: [:]][model, default: Bucket()])
            if m.count > Self.retentionMinutes + 1 {
                for old in m.keys where old <= minute - Self.retentionMinutes { m[old] = nil }
            }
        }
    }

    /// The sums over the last `window` seconds (at most the retention), by model.
    func totals(window: Double) -> [String: Bucket] {
        let now = clock()
        let first = Int((now - window) / 60), last = Int(now / 60)
        return minutes.withLock { m in
            var out: [String: Bucket] = [:]
            for (minute, models) in m where minute >= first && minute <= last {
                for (name, b) in models { out[name, default: Bucket()].add(b) }
            }
            return out
        }
    }

    /// The report over the last `window` seconds as JSON.
    public func json(window: Double) -> JSONValue {
        let now = clock()
        let window = min(window, now - started + 60, Double(Self.retentionMinutes * 60))
        var all = Bucket()
        var models: [JSONValue] = []
        for (name, b) in totals(window: window).sorted(by: { $0.key < $1.key }) {
            all.add(b)
            models.append(entry(name, b))
        }
        return ["window_seconds": JSONValue(window.rounded()), "generated_at": JSONValue(Self.iso(now)),
                "usd_per_hour": JSONValue(usdPerHour), "models": .array(models), "total": entry(nil, all)]
    }

    private func entry(_ name: String?, _ b: Bucket) -> JSONValue {
        let tokens = b.promptTokens + b.completionTokens
        let perMillion: JSONValue = tokens > 0 ? JSONValue(b.usd / Double(tokens) * 1e6) : nil
        let perMillionOut: JSONValue = b.completionTokens > 0 ? JSONValue(b.usd / Double(b.completionTokens) * 1e6) : nil
        let usd = usdPerHour / 3600
        var members: [(key: String, value: JSONValue)] = []
        if let name { members.append(("model", .string(name))) }
        members += [
            ("requests", JSONValue(b.requests)), ("failed", JSONValue(b.failed)),
            ("prompt_tokens", JSONValue(b.promptTokens)), ("completion_tokens", JSONValue(b.completionTokens)),
            ("engine_seconds", JSONValue(b.engineSeconds)), ("cost_usd", JSONValue(b.usd)),
            ("usd_per_million_tokens", perMillion), ("usd_per_million_completion_tokens", perMillionOut),
            ("response_cache", ["hits": JSONValue(b.responseCacheHits), "misses": JSONValue(b.responseCacheMisses),
                                "saved_seconds": JSONValue(b.responseCacheSavedSeconds),
                                "saved_usd": JSONValue(b.responseCacheSavedSeconds * usd)]),
            ("prefix_cache", ["cached_tokens": JSONValue(b.prefixCachedTokens),
                              "saved_seconds": JSONValue(b.prefixCacheSavedSeconds),
                              "saved_usd": JSONValue(b.prefixCacheSavedSeconds * usd)]),
            ("routed", .array(b.routed.sorted { $0.key < $1.key }.map { key, count in
                let parts = key.split(separator: "\u{0}", maxSplits: 1).map(String.init)
                return ["router": .string(parts[0]), "reason": .string(parts.count > 1 ? parts[1] : ""), "requests": JSONValue(count)]
            })),
            ("shadow", .array(b.shadow.sorted { $0.key < $1.key }.map { to, s in
                ["to": .string(to), "tokens": JSONValue(s.tokens),
                 "same_top1": s.tokens > 0 ? JSONValue(Double(s.sameTop1) / Double(s.tokens)) : nil,
                 "same_as_served": s.tokens > 0 ? JSONValue(Double(s.sameServed) / Double(s.tokens)) : nil,
                 "kld_mean": s.tokens > 0 ? JSONValue(s.kl / Double(s.tokens)) : nil]
            })),
            ("api_keys", .object(b.keys.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue($0.value)) })),
        ]
        return .object(members)
    }

    static func iso(_ t: Double) -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: Date(timeIntervalSince1970: t))
    }

    /// The report as a Markdown table (and, plain, as aligned text).
    public func render(window: Double, markdown: Bool) -> String {
        let report = json(window: window)
        let rows = (report["models"]?.array ?? []) + [report["total"] ?? nil]
        let header = ["model", "requests", "prompt tok", "output tok", "engine s", "cost $", "$/M tok",
                      "resp-cache hits", "saved s", "prefix-cached tok", "saved s", "routed", "shadow top-1 / KLD"]
        var table: [[String]] = []
        for (i, r) in rows.enumerated() {
            func n(_ v: JSONValue?, _ digits: Int = 0) -> String {
                guard let d = v?.number else { return "-" }
                return digits == 0 ? String(Int(d.rounded())) : String(format: "%.\(digits)f", d)
            }
            let routed = (r["routed"]?.array ?? []).map { "\($0["router"]?.string ?? "")/\($0["reason"]?.string ?? ""): \(n($0["requests"]))" }
            let shadow = (r["shadow"]?.array ?? []).map {
                "\($0["to"]?.string ?? ""): \(n(($0["same_top1"]?.number).map { JSONValue($0 * 100) }, 1))% / \(n($0["kld_mean"], 4))"
            }
            table.append([i == rows.count - 1 ? "total" : r["model"]?.string ?? "", n(r["requests"]), n(r["prompt_tokens"]),
                          n(r["completion_tokens"]), n(r["engine_seconds"], 2), n(r["cost_usd"], 6),
                          n(r["usd_per_million_tokens"], 4), n(r["response_cache"]?["hits"]),
                          n(r["response_cache"]?["saved_seconds"], 2), n(r["prefix_cache"]?["cached_tokens"]),
                          n(r["prefix_cache"]?["saved_seconds"], 2), routed.isEmpty ? "-" : routed.joined(separator: ", "),
                          shadow.isEmpty ? "-" : shadow.joined(separator: ", ")])
        }
        let title = "QuantServe report: the last \(n0(report["window_seconds"])) s to \(report["generated_at"]?.string ?? ""), at $\(report["usd_per_hour"]?.number ?? 0)/hour"
        if markdown {
            var out = "## \(title)\n\n| " + header.joined(separator: " | ") + " |\n|" + header.map { _ in "---" }.joined(separator: "|") + "|\n"
            for row in table { out += "| " + row.joined(separator: " | ") + " |\n" }
            return out
        }
        var widths = header.map(\.count)
        for row in table { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([title, "", line(header)] + table.map(line)).joined(separator: "\n") + "\n"
    }

    private func n0(_ v: JSONValue?) -> String { v?.number.map { String(Int($0)) } ?? "-" }
}
