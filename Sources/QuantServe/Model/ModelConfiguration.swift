/// How a rotary embedding pairs the dimensions of a head.
public enum RopePairing: String, Sendable {
    /// (2i, 2i + 1): llama GGUFs, whose converter permuted Q and K for it.
    case adjacent
    /// (i, i + head_dim / 2): qwen2, gemma3, and Hugging Face llama weights.
    case neox
}

/// The shape and hyper-parameters of a Llama-style decoder.
public struct ModelConfiguration: Sendable, Equatable {
    public var architecture: String
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var rmsNormEpsilon: Float
    public var ropeBase: Float
    public var ropePairing: RopePairing
    public var contextLength: Int
    public var hasQKVBias: Bool
    public var tiedOutput: Bool

    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }

    /// Parameters in the matrices and vectors (the output matrix counted once even when tied).
    public var parameterCount: Int {
        let attention = hiddenSize * qDim + 2 * hiddenSize * kvDim + qDim * hiddenSize
            + (hasQKVBias ? qDim + 2 * kvDim : 0)
        let mlp = 3 * hiddenSize * intermediateSize
        let perLayer = attention + mlp + 2 * hiddenSize
        return layerCount * perLayer + vocabularySize * hiddenSize * (tiedOutput ? 1 : 2) + hiddenSize
    }
}
