import Foundation

/// Perplexity by llama.cpp's method: the token stream cut into non-overlapping chunks of `contextSize`, each
/// evaluated from an empty cache (its first token replaced by BOS where the model adds one), and scored on
/// its second half: positions contextSize/2 ..< contextSize-1 each predicting the next token.
public struct PerplexityResult: Sendable {
    public var perplexity: Double
    public var scoredTokens: Int
    public var chunks: Int
    /// With a base model: its perplexity, the mean KL divergence from it, and how often both pick the same top token.
    public var basePerplexity: Double?
    public var klDivergenceMean: Double?
    public var sameTop1: Double?
}

public enum PerplexityError: Error, CustomStringConvertible, Equatable {
    case tooFewTokens(have: Int, need: Int)
    case invalidContextSize(Int)

    public var description: String {
        switch self {
        case .tooFewTokens(let have, let need): "the text has \(have) tokens; at least \(need) (two context windows' worth) are needed"
        case .invalidContextSize(let n): "the context size must be between 8 and the model's context length, got \(n)"
        }
    }
}

public enum Perplexity {
    /// - Parameters:
    ///   - base: a second model (another quantization level of the same weights) to compare against.
    ///   - maxChunks: evaluate at most this many chunks.
    ///   - cacheType: the KV cache element type of `model` (`base` always runs with fp16).
    ///   - progress: called with (chunks done, chunks in all) before the first chunk and after each.
    public static func evaluate(
        model: TransformerModel, base: TransformerModel? = nil, tokens: [Int32], bos: Int32?, contextSize: Int,
        maxChunks: Int? = nil, cacheType: KVCacheType = .fp16, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> PerplexityResult {
        guard contextSize >= 8, contextSize <= model.configuration.contextLength else {
            throw PerplexityError.invalidContextSize(contextSize)
        }
        let available = tokens.count / contextSize
        guard available >= 1 else { throw PerplexityError.tooFewTokens(have: tokens.count, need: contextSize) }
        let chunks = min(available, maxChunks ?? available)
        let vocab = model.configuration.vocabularySize
        let first = contextSize / 2
        let cache = model.makeCache(capacity: contextSize, type: cacheType)
        let baseCache = base?.makeCache(capacity: contextSize)
        var nll = 0.0, baseNLL = 0.0, kl = 0.0, same = 0, count = 0
        var logProbs = [Double](repeating: 0, count: vocab)
        var baseLogProbs = [Double](repeating: 0, count: vocab)

        progress(0, chunks)
        for c in 0..<chunks {
            defer { progress(c + 1, chunks) }
            var chunk = Array(tokens[(c * contextSize)..<((c + 1) * contextSize)])
            if let bos { chunk[0] = bos }
            cache.reset()
            let logits = try model.forward(chunk, cache: cache, logits: .from(first))
            var baseLogits: [Float] = []
            if let base, let baseCache {
                baseCache.reset()
                baseLogits = try base.forward(chunk, cache: baseCache, logits: .from(first))
            }
            for j in first..<(contextSize - 1) {
                let row = (j - first) * vocab
                let target = Int(chunk[j + 1])
                let top = logSoftmax(logits, from: row, count: vocab, into: &logProbs)
                nll -= logProbs[target]
                if base != nil {
                    let baseTop = logSoftmax(baseLogits, from: row, count: vocab, into: &baseLogProbs)
                    baseNLL -= baseLogProbs[target]
                    var divergence = 0.0
                    for t in 0..<vocab { divergence += exp(baseLogProbs[t]) * (baseLogProbs[t] - logProbs[t]) }
                    kl += divergence
                    if top == baseTop { same += 1 }
                }
                count += 1
            }
        }
        var result = PerplexityResult(perplexity: exp(nll / Double(count)), scoredTokens: count, chunks: chunks)
        if base != nil {
            result.basePerplexity = exp(baseNLL / Double(count))
            result.klDivergenceMean = kl / Double(count)
            result.sameTop1 = Double(same) / Double(count)
        }
        return result
    }

    /// Log-softmax of `logits[from ..< from + count]` into `out`; returns the argmax.
    private static func logSoftmax(_ logits: [Float], from: Int, count: Int, into out: inout [Double]) -> Int {
        var best = 0
        var maxValue = -Double.infinity
        for t in 0..<count where Double(logits[from + t]) > maxValue {
            maxValue = Double(logits[from + t])
            best = t
        }
        var sum = 0.0
        for t in 0..<count { sum += exp(Double(logits[from + t]) - maxValue) }
        let logSum = log(sum) + maxValue
        for t in 0..<count { out[t] = Double(logits[from + t]) - logSum }
        return best
    }
}
