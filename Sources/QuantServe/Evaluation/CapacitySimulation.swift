import Foundation

/// Capacity planning from measurements: how many replicas of one level an autoscaler would run for a traffic
/// profile, and the time to first token it would reach, simulated in small steps over the profile with each
/// replica's speed taken from `quantserve bench` (prefill tokens per second, and aggregate decode tokens per second
/// against the number of sequences decoding at once).
public struct CapacitySimulation {
    /// What one replica of a level does, from a saved bench row.
    public struct Replica: Sendable, Equatable {
        public var prefillTokensPerSecond: Double
        /// (sequences decoding at once, aggregate decode tokens per second), by sequences.
        public var decodeCurve: [(sequences: Int, tokensPerSecond: Double)]
        /// Seconds from a new pod's start to serving (the model's load time plus the container's start).
        public var startSeconds: Double
        /// Sequences one replica runs at once (more wait).
        public var maxSequences: Int

        public init(prefillTokensPerSecond: Double, decodeCurve: [(sequences: Int, tokensPerSecond: Double)],
                    startSeconds: Double, maxSequences: Int = 16) {
            self.prefillTokensPerSecond = prefillTokensPerSecond
            self.decodeCurve = decodeCurve.sorted { $0.sequences < $1.sequences }
            self.startSeconds = startSeconds
            self.maxSequences = maxSequences
        }

        public static func == (a: Replica, b: Replica) -> Bool {
            a.prefillTokensPerSecond == b.prefillTokensPerSecond && a.startSeconds == b.startSeconds
                && a.maxSequences == b.maxSequences && a.decodeCurve.map(\.sequences) == b.decodeCurve.map(\.sequences)
                && a.decodeCurve.map(\.tokensPerSecond) == b.decodeCurve.map(\.tokensPerSecond)
        }

        /// Aggregate decode tokens per second with `k` sequences decoding: the measured curve, linear between its
        /// points, flat past its last (the replica is saturated), proportional below its first.
        public func decodeTokensPerSecond(_ k: Double) -> Double {
            guard k > 0, let first = decodeCurve.first else { return 0 }
            if k <= Double(first.sequences) { return first.tokensPerSecond * k / Double(first.sequences) }
            for (a, b) in zip(decodeCurve, decodeCurve.dropFirst()) where k <= Double(b.sequences) {
                let t = (k - Double(a.sequences)) / Double(b.sequences - a.sequences)
                return a.tokensPerSecond + t * (b.tokensPerSecond - a.tokensPerSecond)
            }
            return decodeCurve.last!.tokensPerSecond
        }
    }

    /// The traffic: from each segment's start until the next, requests per second with their lengths.
    public struct Segment: Sendable, Equatable {
        public var start: Double
        public var requestsPerSecond: Double
        public var promptTokens: Int
        public var outputTokens: Int
        public init(start: Double, requestsPerSecond: Double, promptTokens: Int, outputTokens: Int) {
            self.start = start
            self.requestsPerSecond = requestsPerSecond
            self.promptTokens = promptTokens
            self.outputTokens = outputTokens
        }
    }

    /// The autoscaler, as deploy/kubernetes/hpa.yaml sets it: the larger of the replicas that bring the mean
    /// waiting requests per replica to `targetWaiting` and those that bring the mean share of busy sequence slots to
    /// `targetBusy`, every `syncSeconds`, within a 10% tolerance; up at once, down to the highest recommendation of
    /// the last `scaleDownWindowSeconds`.
    public struct Autoscaler: Sendable, Equatable {
        public var minReplicas = 1
        public var maxReplicas = 20
        public var targetWaiting = 2.0
        public var targetBusy = 0.7
        public var syncSeconds = 15.0
        public var scaleDownWindowSeconds = 300.0
        public init() {}
    }

    public struct Result: Sendable {
        /// Per minute: replicas running (ready or starting) and the p99 time to first token of the requests that
        /// arrived in it (nil: none).
        public var replicasPerMinute: [Int] = []
        public var p99TTFTPerMinute: [Double?] = []
        public var replicaSeconds = 0.0
        public var requests = 0
        public var tokens = 0
        public var p99TTFT = 0.0
        public var meanReplicas: Double { replicasPerMinute.isEmpty ? 0 : Double(replicasPerMinute.reduce(0, +)) / Double(replicasPerMinute.count) }
    }

    public var replica: Replica
    public var traffic: [Segment]
    public var duration: Double
    public var autoscaler: Autoscaler
    public var step = 0.05
    public var seed: UInt64 = 1

    public init(replica: Replica, traffic: [Segment], duration: Double, autoscaler: Autoscaler = Autoscaler()) {
        self.replica = replica
        self.traffic = traffic.sorted { $0.start < $1.start }
        self.duration = duration
        self.autoscaler = autoscaler
    }

    private struct Sequence {
        var arrival: Double
        var prefillLeft: Double
        var decodeLeft: Double
        var tokens: Int
    }

    private final class Pod {
        var readyAt: Double
        var running: [Sequence] = []
        var waiting: [Sequence] = []
        var draining = false
        init(readyAt: Double) { self.readyAt = readyAt }
        var load: Int { running.count + waiting.count }
    }

    public func run() -> Result {
        var result = Result()
        var rng = SplitMix(seed: seed)
        var pods = (0..<autoscaler.minReplicas).map { _ in Pod(readyAt: 0) }
        var recommendations: [(time: Double, replicas: Int)] = []
        var ttfts: [Double] = []
        var minuteTTFTs: [Double] = []
        var segment = 0
        var t = 0.0, nextSync = autoscaler.syncSeconds, nextMinute = 60.0
        var minuteMaxReplicas = pods.count
        while t < duration {
            while segment + 1 < traffic.count, traffic[segment + 1].start <= t { segment += 1 }
            let s = traffic.isEmpty ? Segment(start: 0, requestsPerSecond: 0, promptTokens: 0, outputTokens: 0) : traffic[segment]
            // Arrivals (Poisson), each to the ready replica with the fewest requests (least connections).
            var arrivals = rng.poisson(s.requestsPerSecond * step)
            while arrivals > 0 {
                arrivals -= 1
                let sequence = Sequence(arrival: t, prefillLeft: Double(s.promptTokens), decodeLeft: Double(max(1, s.outputTokens)),
                                        tokens: s.promptTokens + s.outputTokens)
                let ready = pods.filter { $0.readyAt <= t && !$0.draining }
                (ready.min { $0.load < $1.load } ?? pods.min { $0.readyAt < $1.readyAt }!).waiting.append(sequence)
            }
            // Each ready replica's step: waiting requests join up to the sequence limit; prompts are computed first
            // (oldest first), the rest of the step decodes every sequence past its prompt at the measured rate.
            for pod in pods where pod.readyAt <= t {
                while pod.running.count < replica.maxSequences, !pod.waiting.isEmpty { pod.running.append(pod.waiting.removeFirst()) }
                var budget = step
                for i in pod.running.indices where pod.running[i].prefillLeft > 0 && budget > 0 {
                    let seconds = min(budget, pod.running[i].prefillLeft / replica.prefillTokensPerSecond)
                    pod.running[i].prefillLeft -= seconds * replica.prefillTokensPerSecond
                    budget -= seconds
                    if pod.running[i].prefillLeft <= 1e-9 {
                        pod.running[i].prefillLeft = 0
                        let ttft = t + step - budget - pod.running[i].arrival
                        ttfts.append(ttft)
                        minuteTTFTs.append(ttft)
                    }
                }
                let decoding = pod.running.indices.filter { pod.running[$0].prefillLeft == 0 }
                if budget > 0, !decoding.isEmpty {
                    let each = replica.decodeTokensPerSecond(Double(decoding.count)) / Double(decoding.count) * budget
                    for i in decoding { pod.running[i].decodeLeft -= each }
                }
                let done = pod.running.filter { $0.prefillLeft == 0 && $0.decodeLeft <= 1e-9 }
                result.requests += done.count
                result.tokens += done.reduce(0) { $0 + $1.tokens }
                pod.running.removeAll { $0.prefillLeft == 0 && $0.decodeLeft <= 1e-9 }
            }
            pods.removeAll { $0.draining && $0.load == 0 }
            result.replicaSeconds += Double(pods.count) * step
            minuteMaxReplicas = max(minuteMaxReplicas, pods.count)
            t += step
            if t >= nextSync {
                nextSync += autoscaler.syncSeconds
                let desired = desiredReplicas(pods.filter { !$0.draining }, now: t)
                recommendations.append((t, desired))
                recommendations.removeAll { $0.time < t - autoscaler.scaleDownWindowSeconds }
                let active = pods.filter { !$0.draining }
                if desired > active.count {
                    for _ in active.count..<desired { pods.append(Pod(readyAt: t + replica.startSeconds)) }
                } else {
                    let floor = recommendations.map(\.replicas).max() ?? desired
                    if floor < active.count {
                        // The least loaded go first; they finish what they run (graceful termination).
                        for pod in active.sorted(by: { $0.load < $1.load }).prefix(active.count - floor) {
                            pod.draining = true
                            for s in pod.waiting { active.first { !$0.draining }?.waiting.append(s) }
                            pod.waiting.removeAll()
                        }
                    }
                }
            }
            if t >= nextMinute || t >= duration {
                nextMinute += 60
                result.replicasPerMinute.append(minuteMaxReplicas)
                result.p99TTFTPerMinute.append(minuteTTFTs.isEmpty ? nil : Self.percentile(minuteTTFTs, 0.99))
                minuteTTFTs.removeAll()
                minuteMaxReplicas = pods.count
            }
        }
        result.p99TTFT = ttfts.isEmpty ? 0 : Self.percentile(ttfts, 0.99)
        return result
    }

    /// The autoscaler's recommendation: as Kubernetes does, pods still starting count as idle (no waiting, no busy
    /// slots), so that a scale-up in flight is not multiplied again at every sync while its pods load.
    private func desiredReplicas(_ active: [Pod], now: Double) -> Int {
        let ready = active.filter { $0.readyAt <= now }
        let current = active.count
        guard current > 0 else { return autoscaler.minReplicas }
        let waiting = Double(ready.reduce(0) { $0 + $1.waiting.count }) / Double(current)
        let busy = Double(ready.reduce(0) { $0 + $1.running.count }) / Double(current * replica.maxSequences)
        func want(_ ratio: Double) -> Int {
            abs(ratio - 1) <= 0.1 ? current : Int((Double(current) * ratio).rounded(.up))
        }
        let desired = max(want(waiting / autoscaler.targetWaiting), want(busy / autoscaler.targetBusy))
        return min(autoscaler.maxReplicas, max(autoscaler.minReplicas, desired))
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }
}

/// A small seeded generator (SplitMix64) with Poisson draws, so that a plan is the same every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
    mutating func poisson(_ mean: Double) -> Int {
        guard mean > 0 else { return 0 }
        let limit = exp(-mean)
        var k = 0, p = next()
        while p > limit { k += 1; p *= next() }
        return k
    }
}
