#if canImport(Glibc)
import Glibc
#endif

/// A token and its log-probability under the model (the raw logits, before penalties and temperature).
public struct TokenLogprob: Sendable, Equatable {
    public var token: Int32
    public var logprob: Float
}

public enum Logprobs {
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
