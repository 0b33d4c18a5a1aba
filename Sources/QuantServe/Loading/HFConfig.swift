/// How a Hugging Face folder's linear weights are stored (`quantization_config` in config.json).
public enum HFQuantization: Sendable, Equatable {
    case none
    /// AutoAWQ, GEMM layout: 4 bits, zero points, fp16 scales per `groupSize` inputs.
    case awq(groupSize: Int)
    /// bitsandbytes 4-bit NF4 (absmax per block, optionally double-quantized).
    case bitsandbytesNF4(doubleQuant: Bool)
    /// QuantServe's int8: `weight` I8 `[out, in]`, `weight_scale` F16 `[out, in / groupSize]`, w = weight · scale.
    case int8(groupSize: Int)

    /// `quant_method` of the int8 layout.
    public static let int8Method = "quantserve_int8"

    /// The level whose packing the folder stores.
    public var level: QuantLevel? {
        switch self {
        case .none: nil
        case .awq: .int4
        case .bitsandbytesNF4: .nf4
        case .int8: .int8
        }
    }
}

/// The `config.json` of a Hugging Face model folder: the keys a Llama-style decoder needs, checked.
public struct HFConfig: Sendable {
    /// The config.json file.
    public let path: String
    public let modelType: String
    public let hiddenSize, layerCount, headCount, kvHeadCount, intermediateSize, vocabularySize, contextLength: Int
    public let headDim: Int?
    public let rmsNormEpsilon: Double
    public let ropeTheta: Double
    public let tieWordEmbeddings: Bool
    public let attentionBias: Bool
    public let bosTokenID: Int?
    public let eosTokenID: Int?
    public let quantization: HFQuantization

    public init(path: String) throws {
        let json = try JSONFields(path: path, what: "a Hugging Face model folder needs config.json")
        self.path = path
        modelType = try json.string("model_type")
        hiddenSize = try json.int("hidden_size")
        layerCount = try json.int("num_hidden_layers")
        headCount = try json.int("num_attention_heads")
        kvHeadCount = try json.optionalInt("num_key_value_heads") ?? headCount
        intermediateSize = try json.int("intermediate_size")
        vocabularySize = try json.int("vocab_size")
        contextLength = try json.optionalInt("max_position_embeddings") ?? 4096
        headDim = try json.optionalInt("head_dim")
        rmsNormEpsilon = try json.optionalDouble("rms_norm_eps") ?? 1e-6
        tieWordEmbeddings = try json.optionalBool("tie_word_embeddings") ?? false
        attentionBias = try json.optionalBool("attention_bias") ?? false
        bosTokenID = try? json.optionalInt("bos_token_id")
        eosTokenID = try? json.optionalInt("eos_token_id")  // a list in some models: then the tokenizer's says

        // transformers 5 writes rope_parameters {rope_theta, rope_type}; earlier versions rope_theta and rope_scaling.
        let rope = try json.optionalObject("rope_parameters")
        ropeTheta = try json.optionalDouble("rope_theta") ?? rope?.optionalDouble("rope_theta") ?? 10000
        for scaling in [try json.optionalObject("rope_scaling"), rope].compactMap({ $0 }) {
            let type = try scaling.optionalString("rope_type") ?? scaling.optionalString("type") ?? "default"
            guard type == "default" else {
                throw json.error("RoPE scaling '\(type)' (\(scaling.keyPrefix.dropLast())) is not supported")
            }
        }
        if let act = try json.optionalString("hidden_act"), act != "silu" {
            throw json.error("hidden_act '\(act)' is not supported (only silu)")
        }
        if try json.optionalBool("use_sliding_window") == true {
            throw json.error("use_sliding_window = true is not supported")
        }
        if try json.optionalBool("mlp_bias") == true { throw json.error("mlp_bias = true is not supported") }
        quantization = try HFConfig.quantization(json.optionalObject("quantization_config"))
    }

    private static func quantization(_ q: JSONFields?) throws -> HFQuantization {
        guard let q else { return .none }
        let method = try q.string("quant_method")
        switch method.lowercased() {
        case "awq":
            let bits = try q.optionalInt("bits") ?? q.optionalInt("w_bit") ?? 4
            guard bits == 4 else { throw q.error("quantization_config.bits = \(bits): AWQ is read with 4 bits only") }
            let group = try q.optionalInt("group_size") ?? q.optionalInt("q_group_size") ?? 128
            guard group > 0 else { throw q.error("quantization_config.group_size = \(group) must be positive") }
            guard try q.optionalBool("zero_point") ?? true else {
                throw q.error("quantization_config.zero_point = false is not supported (AWQ with zero points only)")
            }
            let version = try q.optionalString("version") ?? "gemm"
            guard version.lowercased() == "gemm" else {
                throw q.error("quantization_config.version '\(version)' is not supported (only the GEMM layout, 'gemm')")
            }
            return .awq(groupSize: group)
        case "bitsandbytes":
            if try q.optionalBool("load_in_8bit") == true {
                throw q.error("bitsandbytes 8-bit (load_in_8bit) is not supported (only 4-bit NF4)")
            }
            guard try q.optionalBool("load_in_4bit") ?? q.optionalBool("_load_in_4bit") ?? false else {
                throw q.error("quantization_config: bitsandbytes without load_in_4bit = true is not supported")
            }
            if let type = try q.optionalString("bnb_4bit_quant_type"), type != "nf4" {
                throw q.error("quantization_config.bnb_4bit_quant_type '\(type)' is not supported (only nf4)")
            }
            return .bitsandbytesNF4(doubleQuant: try q.optionalBool("bnb_4bit_use_double_quant") ?? false)
        case HFQuantization.int8Method:
            let bits = try q.optionalInt("bits") ?? 8
            guard bits == 8 else { throw q.error("quantization_config.bits = \(bits): \(method) has 8 bits") }
            let group = try q.int("group_size")
            guard group > 0 else { throw q.error("quantization_config.group_size = \(group) must be positive") }
            return .int8(groupSize: group)
        default:
            throw q.error("quantization_config.quant_method '\(method)' is not supported (supported: awq, bitsandbytes (nf4), \(HFQuantization.int8Method))")
        }
    }

    /// The common Llama-style decoder described by this config.
    func llamaStyleConfiguration(ropePairing: RopePairing, hasQKVBias: Bool) throws -> ModelConfiguration {
        guard headCount > 0, kvHeadCount > 0, headCount % kvHeadCount == 0 else {
            throw ModelFileError(path: path, "num_attention_heads \(headCount) is not a multiple of num_key_value_heads \(kvHeadCount)")
        }
        let config = ModelConfiguration(
            architecture: modelType,
            vocabularySize: vocabularySize,
            hiddenSize: hiddenSize,
            intermediateSize: intermediateSize,
            layerCount: layerCount,
            headCount: headCount,
            kvHeadCount: kvHeadCount,
            headDim: headDim ?? hiddenSize / headCount,
            rmsNormEpsilon: Float(rmsNormEpsilon),
            ropeBase: Float(ropeTheta),
            ropePairing: ropePairing,
            contextLength: contextLength,
            hasQKVBias: hasQKVBias,
            tiedOutput: tieWordEmbeddings
        )
        try config.validate(path: path)
        return config
    }
}
