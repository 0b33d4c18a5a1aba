import QuantServe
import Synchronization

/// Answers to deterministic requests (temperature 0, or a fixed seed), kept to answer the same request again: same
/// served model, same prompt tokens, same parameters. Bounded to `capacity` answers, least recently used out first.
/// A hit is replayed through the same formatting as a live answer (so a stream streams) and costs no engine time.
final class ResponseCache: Sendable {
    /// What makes two requests the same: the served model, the API (completion or chat), every prompt's tokens and
    /// every parameter that changes the output, as text.
    struct Key: Hashable, Sendable {
        let model: String
        let prompts: [[Int32]]
        let parameters: String
    }

    /// One choice of a cached answer: its tokens (with log-probabilities when the request asked for them), the text
    /// released at the end, and why it ended.
    struct Choice: Sendable {
        var tokens: [GeneratedToken]
        var finalText: String
        var finishReason: FinishReason
        var promptTokens: Int
    }

    /// Answers longer than this many tokens in all are not kept (bounds one entry's memory).
    static let maxTokensPerEntry = 8192

    /// A cached answer: its choices, and the engine seconds it took when it was computed (what a hit saves).
    struct Answer: Sendable {
        var choices: [Choice]
        var engineSeconds: Double
    }

    private struct Node {
        var key: Key
        var answer: Answer
        var older: Int?
        var newer: Int?
    }

    private struct State {
        var index: [Key: Int] = [:]
        var nodes: [Node?] = []
        var free: [Int] = []
        var newest: Int?
        var oldest: Int?
        var hits: [String: Int] = [:]
        var misses: [String: Int] = [:]
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// The cached answer for `key`, made the most recently used; counts a hit or a miss for its model.
    func lookup(_ key: Key) -> Answer? {
        state.withLock { s in
            guard let i = s.index[key], let node = s.nodes[i] else {
                s.misses[key.model, default: 0] += 1
                return nil
            }
            s.hits[key.model, default: 0] += 1
            Self.unlink(i, &s)
            Self.pushNewest(i, &s)
            return node.answer
        }
    }

    /// Keeps an answer, evicting the least recently used one when full.
    func store(_ key: Key, _ answer: Answer) {
        guard answer.choices.reduce(0, { $0 + $1.tokens.count }) <= Self.maxTokensPerEntry else { return }
        state.withLock { s in
            if let i = s.index[key] {
                s.nodes[i]!.answer = answer
                Self.unlink(i, &s)
                Self.pushNewest(i, &s)
                return
            }
            if s.index.count >= capacity, let old = s.oldest {
                Self.unlink(old, &s)
                s.index[s.nodes[old]!.key] = nil
                s.nodes[old] = nil
                s.free.append(old)
            }
            let node = Node(key: key, answer: answer, older: nil, newer: nil)
            let i: Int
            if let f = s.free.popLast() { s.nodes[f] = node; i = f } else { s.nodes.append(node); i = s.nodes.count - 1 }
            s.index[key] = i
            Self.pushNewest(i, &s)
        }
    }

    var count: Int { state.withLock { $0.index.count } }

    /// Hits and misses by served model.
    var counts: [String: (hits: Int, misses: Int)] {
        state.withLock { s in
            var out: [String: (Int, Int)] = [:]
            for m in Set(s.hits.keys).union(s.misses.keys) { out[m] = (s.hits[m] ?? 0, s.misses[m] ?? 0) }
            return out
        }
    }

    private static func unlink(_ i: Int, _ s: inout State) {
        let older = s.nodes[i]!.older, newer = s.nodes[i]!.newer
        if let o = older { s.nodes[o]!.newer = newer } else { s.oldest = newer }
        if let n = newer { s.nodes[n]!.older = older } else { s.newest = older }
        s.nodes[i]!.older = nil
        s.nodes[i]!.newer = nil
    }

    private static func pushNewest(_ i: Int, _ s: inout State) {
        s.nodes[i]!.older = s.newest
        s.nodes[i]!.newer = nil
        if let n = s.newest { s.nodes[n]!.newer = i }
        s.newest = i
        if s.oldest == nil { s.oldest = i }
    }

    /// `quantserve:response_cache_*` lines.
    func render() -> String {
        let c = counts.sorted { $0.key < $1.key }
        var out = "# HELP quantserve:response_cache_hits_total Requests answered from the response cache.\n"
        out += "# TYPE quantserve:response_cache_hits_total counter\n"
        for (m, v) in c { out += "quantserve:response_cache_hits_total{model_name=\"\(PrometheusText.escape(m))\"} \(v.hits)\n" }
        out += "# HELP quantserve:response_cache_misses_total Cacheable requests the response cache did not hold.\n"
        out += "# TYPE quantserve:response_cache_misses_total counter\n"
        for (m, v) in c { out += "quantserve:response_cache_misses_total{model_name=\"\(PrometheusText.escape(m))\"} \(v.misses)\n" }
        out += "# HELP quantserve:response_cache_entries Answers held by the response cache.\n"
        out += "# TYPE quantserve:response_cache_entries gauge\nquantserve:response_cache_entries \(count)\n"
        return out
    }
}

extension APIServer {
    /// The response cache's key for a request, nil when there is no cache, the request is not deterministic
    /// (temperature above 0 without a seed), or it bypasses the cache (`"cache": false`, `Cache-Control: no-cache`).
    func responseCacheKey(_ kind: APIKind, _ f: RequestFields, _ request: HTTPRequest, _ params: GenerationParameters,
                          topLogprobs: Int?, model: ServedModel, prompts: [[Int32]]) throws(APIError) -> ResponseCache.Key? {
        let wanted = try f.bool("cache") ?? true
        guard responseCache != nil, wanted else { return nil }
        let control = request.header("cache-control")?.lowercased() ?? ""
        if control.contains("no-cache") || control.contains("no-store") { return nil }
        guard params.sampling.temperature == 0 || params.sampling.seed != nil else { return nil }
        let parameters = "\(kind)|\(params.maxTokens.map(String.init) ?? "-")|\(params.sampling)|\(params.stop)|\(params.n)|"
            + "\(topLogprobs.map(String.init) ?? "-")|\(params.ignoreEOS)|\(params.jsonObject)|\(params.jsonSchema?.serialized ?? "-")"
        return ResponseCache.Key(model: model.name, prompts: prompts, parameters: parameters)
    }
}
