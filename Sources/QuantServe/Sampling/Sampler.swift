/// Picks tokens from logits: greedy at temperature 0, otherwise top-k, then the softmax at temperature, top-p,
/// min-p, and a draw.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var random: RandomSource

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        random = RandomSource(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
    }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        if parameters.temperature == 0 || parameters.topK == 1 { return Sampler.argmax(logits) }
        // Candidates sorted by logit, highest first (ties by lower id), cut to top-k.
        let k = parameters.topK > 0 ? min(parameters.topK, logits.count) : logits.count
        let candidates: [Int32]
        if k < logits.count {
            candidates = partialTop(k, of: logits)
        } else {
            // Tokens more than 30 temperature units below the best have probability below e^-30 of it: leaving them
            // out changes no draw measurably and spares sorting the whole vocabulary.
            var best = logits[0]
            for l in logits where l > best { best = l }
            let floor = best - 30 * parameters.temperature
            var near: [Int32] = []
            for i in 0..<logits.count where logits[i] >= floor { near.append(Int32(i)) }
            candidates = near.sorted {
                logits[Int($0)] > logits[Int($1)] || (logits[Int($0)] == logits[Int($1)] && $0 < $1)
            }
        }
        let maxLogit = logits[Int(candidates[0])]
        var probabilities = candidates.map { exp(Double((logits[Int($0)] - maxLogit) / parameters.temperature)) }
        let total = probabilities.reduce(0, +)
        for i in probabilities.indices { probabilities[i] /= total }
        // Top-p: the smallest prefix whose mass reaches p.
        var keep = probabilities.count
        if parameters.topP < 1 {
            var mass = 0.0
            for (i, p) in probabilities.enumerated() {
                mass += p
                if mass >= Double(parameters.topP) { keep = i + 1; break }
            }
        }
        // Min-p: only tokens at least min-p times as likely as the best (probabilities are sorted).
        if parameters.minP > 0 {
            let threshold = probabilities[0] * Double(parameters.minP)
            while keep > 1 && probabilities[keep - 1] < threshold { keep -= 1 }
        }
        let kept = probabilities[0..<keep].reduce(0, +)
        var r = random.nextUnit() * kept
        for i in 0..<keep {
            r -= probabilities[i]
            if r < 0 { return candidates[i] }
        }
        return candidates[keep - 1]
    }

    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return Int32(best)
    }

    /// The k highest-logit ids, best first.
    private func partialTop(_ k: Int, of logits: UnsafeBufferPointer<Float>) -> [Int32] {
        var heap: [Int32] = []  // sorted ascending by logit, at most k
        heap.reserveCapacity(k + 1)
        func better(_ a: Int32, _ b: Int32) -> Bool {
            logits[Int(a)] > logits[Int(b)] || (logits[Int(a)] == logits[Int(b)] && a < b)
        }
        for i in 0..<Int32(logits.count) {
            if heap.count == k, !better(i, heap[0]) { continue }
            // Insert keeping ascending order (k is small).
            var lo = 0, hi = heap.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if better(heap[mid], i) { hi = mid } else { lo = mid + 1 }
            }
            // heap is ordered worst..best; place i so order holds
            heap.insert(i, at: lo)
            if heap.count > k { heap.removeFirst() }
        }
        return heap.reversed()
    }
}

#if canImport(Glibc)
import Glibc
#endif
