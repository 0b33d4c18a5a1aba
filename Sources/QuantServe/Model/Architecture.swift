/// One model family: how to read its configuration and how its tensors are named and shaped.
/// A new family is one file defining an `Architecture` plus one line in `Architecture.registry`.
public struct Architecture: Sendable {
    /// `general.architecture` in GGUF.
    public let name: String
    /// Reads the configuration from GGUF metadata.
    public let configuration: @Sendable (GGUFFile) throws -> ModelConfiguration
    /// The chat template the family was released with, used when a file carries none (`tokenizer.chat_template`).
    public let defaultChatTemplate: String?
    /// Reads the configuration from a Hugging Face `config.json` whose `model_type` is `name`; nil where unsupported.
    public let huggingFace: (@Sendable (HFConfig) throws -> ModelConfiguration)?

    public init(name: String, defaultChatTemplate: String? = nil,
                configuration: @escaping @Sendable (GGUFFile) throws -> ModelConfiguration,
                huggingFace: (@Sendable (HFConfig) throws -> ModelConfiguration)? = nil) {
        self.name = name
        self.configuration = configuration
        self.defaultChatTemplate = defaultChatTemplate
        self.huggingFace = huggingFace
    }

    /// Every architecture this build knows, by `general.architecture` (GGUF) and `model_type` (Hugging Face).
    public static let registry: [String: Architecture] = [
        Architecture.llama.name: .llama,
        Architecture.qwen2.name: .qwen2,
        Architecture.gemma3.name: .gemma3,
    ]

    public static func named(_ name: String) -> Architecture? { registry[name] }

    /// Reads the configuration of the common Llama-style layout under `"<prefix>."` keys.
    static func llamaStyleConfiguration(
        _ file: GGUFFile, prefix: String, ropePairing: RopePairing, hasQKVBias: Bool
    ) throws -> ModelConfiguration {
        let hidden = try file.int("\(prefix).embedding_length")
        let heads = try file.int("\(prefix).attention.head_count")
        let kvHeads = try file.optionalInt("\(prefix).attention.head_count_kv") ?? heads
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0 else {
            throw file.error("head_count \(heads) is not a multiple of head_count_kv \(kvHeads)")
        }
        let headDim = try file.optionalInt("\(prefix).attention.key_length") ?? hidden / max(heads, 1)
        guard let embedding = file.tensor("token_embd.weight"), embedding.dimensions.count == 2 else {
            throw file.error("missing 2-D tensor 'token_embd.weight'")
        }
        let config = ModelConfiguration(
            architecture: prefix,
            vocabularySize: embedding.dimensions[1],
            hiddenSize: hidden,
            intermediateSize: try file.int("\(prefix).feed_forward_length"),
            layerCount: try file.int("\(prefix).block_count"),
            headCount: heads,
            kvHeadCount: kvHeads,
            headDim: headDim,
            rmsNormEpsilon: Float(try file.optionalDouble("\(prefix).attention.layer_norm_rms_epsilon") ?? 1e-5),
            ropeBase: Float(try file.optionalDouble("\(prefix).rope.freq_base") ?? 10000),
            ropePairing: ropePairing,
            contextLength: try file.optionalInt("\(prefix).context_length") ?? 4096,
            hasQKVBias: hasQKVBias,
            tiedOutput: file.tensor("output.weight") == nil
        )
        try config.validate(file: file)
        return config
    }
}

extension ModelConfiguration {
    /// Rejects sizes no real model has, before anything is allocated from them.
    func validate(file: GGUFFile) throws { try validate(path: file.path) }

    func validate(path: String) throws {
        func fail(_ problem: String) -> ModelFileError { ModelFileError(path: path, problem) }
        let limits: [(String, Int, ClosedRange<Int>)] = [
            ("embedding_length", hiddenSize, 1...65536),
            ("feed_forward_length", intermediateSize, 1...262_144),
            ("block_count", layerCount, 1...512),
            ("head_count", headCount, 1...1024),
            ("head dimension", headDim, 2...1024),
            ("vocabulary size", vocabularySize, 1...4_000_000),
            ("context_length", contextLength, 1...(1 << 24)),
        ]
        for (name, value, range) in limits where !range.contains(value) {
            throw fail("\(name) = \(value) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        guard headDim % 2 == 0 else { throw fail("head dimension \(headDim) is odd") }
        guard rmsNormEpsilon > 0, rmsNormEpsilon.isFinite, ropeBase > 0, ropeBase.isFinite else {
            throw fail("layer_norm_rms_epsilon or rope.freq_base is not a positive number")
        }
    }
}
