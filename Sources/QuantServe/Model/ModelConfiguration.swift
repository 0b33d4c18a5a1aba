/// How a rotary embedding pairs the dimensions of a head.
public enum RopePairing: String, Sendable {
    /// (2i, 2i + 1): llama GGUFs, whose converter permuted Q and K for it.
    case adjacent
    /// (i, i + head_dim / 2): qwen2, gemma3, and Hugging Face llama weights.
    case neox
}

/// The activation of the gated MLP: `act(gate) * up`.
public enum MLPActivation: String, Sendable {
    /// SiLU (SwiGLU): llama, qwen2.
    case silu
    /// GELU, tanh approximation (GeGLU): gemma.
    case geluTanh
}

/// Attention settings of one layer where layers differ (sliding-window and global layers, each with its own RoPE).
public struct LayerAttention: Sendable, Equatable {
    /// Keys further back than this many positions are not attended to (a query at p sees (p - window, p]); 0: unlimited.
    public var slidingWindow: Int
    public var ropeBase: Float
    /// Linear RoPE scaling: positions are multiplied by this (1 / factor); 1 for none.
    public var ropeScale: Float
    public init(slidingWindow: Int = 0, ropeBase: Float, ropeScale: Float = 1) {
        self.slidingWindow = slidingWindow
        self.ropeBase = ropeBase
        self.ropeScale = ropeScale
    }
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
    // Optional features (defaults: the plain Llama layout). Set by an architecture's configuration reader.
    /// Token embeddings are multiplied by this (gemma: sqrt(hiddenSize)).
    public var embeddingScale: Float = 1
    public var activation: MLPActivation = .silu
    /// Query scale of the attention scores; nil: 1 / sqrt(headDim).
    public var attentionScale: Float? = nil
    /// Per-head RMS norms (weights of headDim) on Q and K before RoPE (`attn_q_norm`, `attn_k_norm`).
    public var hasQKNorm = false
    /// RMS norms on the attention and MLP outputs before the residual adds (`post_attention_norm`, `post_ffw_norm`).
    public var hasPostNorms = false
    /// One entry per layer when layers differ; empty: every layer unlimited with `ropeBase`.
    public var layerAttention: [LayerAttention] = []

    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }

    /// The attention settings of layer `l`.
    public func attention(layer l: Int) -> LayerAttention {
        layerAttention.isEmpty ? LayerAttention(ropeBase: ropeBase) : layerAttention[l]
    }

    public var queryScale: Float { attentionScale ?? 1 / Float(headDim).squareRoot() }

    /// Parameters in the matrices and vectors (the output matrix counted once even when tied).
    public var parameterCount: Int {
        let attention = hiddenSize * qDim + 2 * hiddenSize * kvDim + qDim * hiddenSize
            + (hasQKVBias ? qDim + 2 * kvDim : 0)
        let mlp = 3 * hiddenSize * intermediateSize
        let norms = 2 * hiddenSize + (hasQKNorm ? 2 * headDim : 0) + (hasPostNorms ? 2 * hiddenSize : 0)
        let perLayer = attention + mlp + norms
        return layerCount * perLayer + vocabularySize * hiddenSize * (tiedOutput ? 1 : 2) + hiddenSize
    }
}
