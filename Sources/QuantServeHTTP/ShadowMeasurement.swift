import Dispatch
import QuantServe
import Synchronization

/// Shadow measurement of a level on live traffic (config `shadow`): a sample (`rate`) of the requests `from`
/// answers is replayed on `to`, another level of the same model, after the client has its answer and only while
/// `to` is idle. The first `tokens` tokens of the answer are teacher-forced through `to`, and at each position the
/// two levels' whole distributions are compared: the same top-1 token (as `perplexity --compare` counts it), the
/// shadow's top-1 equal to the token the client got, and KL(from ‖ to).
public final class ShadowPair: Sendable {
    struct Totals: Sendable {
        var sampled = 0
        var compared = 0
        var skippedBusy = 0
        /// Answers with no token to compare (an end of generation first).
        var empty = 0
        var failed = 0
        var tokens = 0
        var sameTop1 = 0
        var sameServed = 0
        var klSum = 0.0
        var engineSeconds = 0.0
    }

    public let from: ServedModel
    public let to: ServedModel
    public let rate: Double
    public let tokens: Int
    /// Requests whose distributions are being captured or replayed: at most `maxInFlight` (each holds `tokens`
    /// whole distributions, 600 KB a token on a 151k vocabulary).
    private let inFlight = Atomic<Int>(0)
    static let maxInFlight = 2
    private let totals = Mutex(Totals())
    /// Called with each comparison's (tokens, same top-1, same as served, KL sum) for the report.
    private let onCompared: @Sendable (Int, Int, Int, Double) -> Void

    public init(from: ServedModel, to: ServedModel, rate: Double, tokens: Int,
                onCompared: @escaping @Sendable (Int, Int, Int, Double) -> Void = { _, _, _, _ in }) {
        self.from = from
        self.to = to
        self.rate = rate
        self.tokens = tokens
        self.onCompared = onCompared
    }

    /// Whether the shadow can take work now: loaded, nothing running and nothing waiting, and no request waiting
    /// for `from` either (the engines share the cores: a replay must not delay live traffic that is queueing).
    var shadowIsIdle: Bool {
        guard let engine = to.engine, let primary = from.engine else { return false }
        let m = engine.metrics
        return m.runningSequences == 0 && m.requestsWaiting == 0 && primary.metrics.requestsWaiting == 0
    }

    /// Decides whether a request to `from` is sampled; when it is, the caller captures distributions of its first
    /// `tokens` tokens and hands them to `replay`.
    func sample() -> Bool {
        guard rate > 0, Double.random(in: 0..<1) < rate else { return false }
        guard shadowIsIdle else {
            totals.withLock { $0.skippedBusy += 1 }
            return false
        }
        guard inFlight.add(1, ordering: .relaxed).newValue <= Self.maxInFlight else {
            inFlight.subtract(1, ordering: .relaxed)
            totals.withLock { $0.skippedBusy += 1 }
            return false
        }
        totals.withLock { $0.sampled += 1 }
        return true
    }

    /// A sampled request did not finish normally: nothing to compare.
    func abandon() { inFlight.subtract(1, ordering: .relaxed) }

    /// Replays the answer's first tokens on the shadow and compares the distributions when it is done.
    /// `served`: the tokens the client got, each with `from`'s distribution.
    func replay(prompt: [Int32], served: [GeneratedToken]) {
        let captured = served.prefix(tokens).filter { $0.distribution != nil }
        guard !captured.isEmpty else {
            totals.withLock { $0.empty += 1 }
            abandon()
            return
        }
        guard let engine = to.engine, shadowIsIdle else {
            totals.withLock { $0.skippedBusy += 1 }
            abandon()
            return
        }
        let ids = captured.map(\.id)
        let request = GenerationRequest(prompt: prompt, maxTokens: ids.count, sampling: SamplingParameters(temperature: 0),
                                        ignoreEndOfGeneration: true, forcedTokens: ids, captureDistributions: ids.count)
        let collected = Mutex<[[Float]]>([])
        do {
            _ = try engine.submit(request) { [self] event in
                switch event {
                case .token(let t):
                    if let d = t.distribution { collected.withLock { $0.append(d) } }
                case .finished(let summary):
                    let shadow = collected.withLock { $0 }
                    totals.withLock { $0.engineSeconds += summary.engineSeconds }
                    // The comparison reads 2 × tokens distributions: off the engine's thread.
                    DispatchQueue.global(qos: .utility).async { self.compare(captured, shadow) }
                case .failed:
                    totals.withLock { $0.failed += 1 }
                    abandon()
                }
            }
        } catch {
            totals.withLock { $0.failed += 1 }
            abandon()
        }
    }

    private func compare(_ served: [GeneratedToken], _ shadow: [[Float]]) {
        defer { abandon() }
        let n = min(served.count, shadow.count)
        guard n > 0 else { return }
        var same = 0, sameServed = 0, kl = 0.0
        for i in 0..<n {
            guard let p = served[i].distribution, p.count == shadow[i].count else { return }
            let top = Logprobs.argmax(shadow[i])
            if top == Logprobs.argmax(p) { same += 1 }
            if top == Int(served[i].id) { sameServed += 1 }
            kl += Logprobs.klDivergence(p, shadow[i])
        }
        totals.withLock {
            $0.compared += 1
            $0.tokens += n
            $0.sameTop1 += same
            $0.sameServed += sameServed
            $0.klSum += kl
        }
        onCompared(n, same, sameServed, kl)
    }

    var snapshot: Totals { totals.withLock { $0 } }

    /// `quantserve:shadow_*` lines for this pair.
    func render() -> String {
        let t = snapshot
        let labels = "from=\"\(PrometheusText.escape(from.name))\",to=\"\(PrometheusText.escape(to.name))\""
        var out = ""
        out += "quantserve:shadow_requests_total{\(labels),outcome=\"compared\"} \(t.compared)\n"
        out += "quantserve:shadow_requests_total{\(labels),outcome=\"skipped_busy\"} \(t.skippedBusy)\n"
        out += "quantserve:shadow_requests_total{\(labels),outcome=\"empty\"} \(t.empty)\n"
        out += "quantserve:shadow_requests_total{\(labels),outcome=\"failed\"} \(t.failed)\n"
        out += "quantserve:shadow_tokens_compared_total{\(labels)} \(t.tokens)\n"
        out += "quantserve:shadow_same_top1_total{\(labels)} \(t.sameTop1)\n"
        out += "quantserve:shadow_same_as_served_total{\(labels)} \(t.sameServed)\n"
        out += "quantserve:shadow_kld_sum{\(labels)} \(t.klSum)\n"
        out += "quantserve:shadow_engine_seconds_total{\(labels)} \(t.engineSeconds)\n"
        if t.tokens > 0 {
            out += "quantserve:shadow_same_top1_ratio{\(labels)} \(Double(t.sameTop1) / Double(t.tokens))\n"
            out += "quantserve:shadow_kld_mean{\(labels)} \(t.klSum / Double(t.tokens))\n"
        }
        return out
    }

    static let help = """
        # HELP quantserve:shadow_requests_total Requests sampled for shadow measurement, by outcome.
        # TYPE quantserve:shadow_requests_total counter
        # HELP quantserve:shadow_tokens_compared_total Answer tokens whose distributions were compared.
        # TYPE quantserve:shadow_tokens_compared_total counter
        # HELP quantserve:shadow_same_top1_total Compared tokens where both levels' most likely token is the same.
        # TYPE quantserve:shadow_same_top1_total counter
        # HELP quantserve:shadow_same_as_served_total Compared tokens where the shadow's most likely token is the one served.
        # TYPE quantserve:shadow_same_as_served_total counter
        # HELP quantserve:shadow_kld_sum Sum over compared tokens of KL(from || to) in nats.
        # TYPE quantserve:shadow_kld_sum counter
        # HELP quantserve:shadow_engine_seconds_total Engine seconds the shadow's replays took (not charged to requests).
        # TYPE quantserve:shadow_engine_seconds_total counter
        # HELP quantserve:shadow_same_top1_ratio Fraction of compared tokens with the same top-1 token.
        # TYPE quantserve:shadow_same_top1_ratio gauge
        # HELP quantserve:shadow_kld_mean Mean KL(from || to) per compared token, in nats.
        # TYPE quantserve:shadow_kld_mean gauge

        """
}

/// The Prometheus text format's label escaping.
enum PrometheusText {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
