#if canImport(Glibc)
import Glibc
#endif

/// A token and its log-probability under the model (the raw logits, before penalties and temperature).
public struct TokenLogprob: Sendable, Equatable {
    public var token: Int32
    public var logprob: Float
}

public enum Logprobs {
    /// log softmax of `logits`: every token's log-probability.
    public static func logSoftmax(_ logits: UnsafeBufferPointer<Float>) -> [Float] {
        var maxLogit = -Float.infinity
        for l in logits where l > maxLogit { maxLogit = l }
        var sum: Double = 0
        for l in logits { sum += Double(expf(l - maxLogit)) }
        let logZ = maxLogit + Float(log(sum))
        return logits.map { $0 - logZ }
    }

    /// KL(p ‖ q) of two distributions given as log-probabilities over the same tokens.
    public static func klDivergence(_ p: [Float], _ q: [Float]) -> Double {
        precondition(p.count == q.count)
        var kl = 0.0
        for i in 0..<p.count where p[i] > -30 {
            kl += Double(expf(p[i])) * Double(p[i] - max(q[i], -1e30))
        }
        return max(0, kl)
    }

    /// The index of the largest value (the first of equals).
    public static func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }

    /// log softmax of `logits` at `token`, and the `top` most likely tokens, best first.
    public static func of(_ token: Int32, in logits: UnsafeBufferPointer<Float>, top: Int) -> (Float, [TokenLogprob]) {
        var maxLogit = -Float.infinity
        for l in logits where l > maxLogit { maxLogit = l }
        var sum: Double = 0
        for l in logits { sum += Double(expf(l - maxLogit)) }
        let logZ = maxLogit + Float(log(sum))
        var best: [TokenLogprob] = []
        if top > 0 {
            best.reserveCapacity(top + 1)
            for i in 0..<logits.count {
                let l = logits[i]
                if best.count == top, l <= best[top - 1].logprob { continue }
                var at = best.count
                while at > 0 && best[at - 1].logprob < l { at -= 1 }
                best.insert(TokenLogprob(token: Int32(i), logprob: l), at: at)
                if best.count > top { best.removeLast() }
            }
            for i in best.indices { best[i].logprob -= logZ }
        }
        return (logits[Int(token)] - logZ, best)
    }
}
