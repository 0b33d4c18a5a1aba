import CKernels
import Foundation

/// Writes a model at a quantization level as a Hugging Face folder (`quantserve quantize`):
/// `config.json` (with a `quantization_config`), `tokenizer.json`, `tokenizer_config.json` and `model.safetensors`
/// under Hugging Face tensor names. The weights are exactly those the engine holds at that level (AWQ search
/// included for int4), so loading the folder at the same level gives the same model without re-quantizing.
///
/// | level | linears | embeddings, lm_head | quantization_config |
/// |---|---|---|---|
/// | fp16, f32 | `weight` F16 / F32 | the same | none |
/// | int8 | `weight` I8 `[out, in]` + `weight_scale` F16 `[out, in/32]` | the same | `quantserve_int8` |
/// | int4, int4-rtn | AutoAWQ GEMM `qweight`/`qzeros`/`scales` | F16 | `awq` (gemm, zero point) |
/// | nf4 | bitsandbytes `weight` + `absmax` F32 + `quant_map` + quant state (no double quantization) | F16 | `bitsandbytes` |
///
/// Norms and biases are F32, except in the 4-bit folders, where every unquantized tensor is F16: transformers keeps
/// such tensors in their stored dtype next to bitsandbytes layers, so they must agree. A llama GGUF's Q and K rows are un-permuted, so the folder holds Hugging Face's layout
/// (NEOX RoPE pairing). A linear the level keeps in another format (a shape the packing cannot tile) is written plain.
/// `lm_head` is always listed among the modules not converted (tied or not), as transformers assumes.
public enum CheckpointWriter {
    public static func write(source: any ModelSource, level: QuantLevel, to directory: String, overwrite: Bool,
                             context: ComputeContext, calibrationText: String? = nil,
                             log: (String) -> Void = { _ in }) throws {
        // Only the families whose Hugging Face layout the loader reads back (their layers have no other tensors).
        let architecture = try source.configuration().architecture
        let writable = Architecture.registry.values.filter { $0.huggingFace != nil }.map(\.name).sorted()
        guard writable.contains(architecture) else {
            throw ModelFileError(path: source.path, "quantize writes Hugging Face folders for \(writable.joined(separator: " and ")) only, not \(architecture)")
        }
        guard level != .native else {
            throw ModelFileError(path: source.path, "a Hugging Face folder cannot hold GGUF block types: quantize to fp16, int8, int4, int4-rtn, nf4 or f32")
        }
        try prepare(directory: directory, overwrite: overwrite)
        let tensors = try source.tensors()
        let vocabulary = try source.tokenizerVocabulary()
        let tokenizer = try makeTokenizer(vocabulary: vocabulary)
        let model = try TransformerModel(source: source, level: level, context: context, calibrationText: calibrationText,
                                         log: log)
        let c = model.configuration
        var layout = Layout(level: level, configuration: c)
        let entries = try layout.entries(model.weights, source: tensors)
        let folder = URL(fileURLWithPath: directory)
        try SafetensorsWriter.write(entries, metadata: ["format": "pt", "quantized_by": "quantserve \(level.rawValue)"],
                                    to: folder.appendingPathComponent("model.safetensors").path)
        let config = try configJSON(c, tokenizer: tokenizer, quantization: layout.quantizationConfig(),
                                    dtype: level == .f32 ? "float32" : "float16")
        try config.write(to: folder.appendingPathComponent("config.json"))
        for (name, data) in try HFTokenizerWriter.files(vocabulary: vocabulary, tokenizer: tokenizer, contextLength: c.contextLength) {
            try data.write(to: folder.appendingPathComponent(name))
        }
    }

    /// Files a previous run may have left, removed before writing with `overwrite`.
    static func isCheckpointFile(_ name: String) -> Bool {
        ["config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json",
         "special_tokens_map.json", "model.safetensors.index.json"].contains(name) || name.hasSuffix(".safetensors")
    }

    /// Refuses a non-empty directory unless `overwrite`, which removes only checkpoint files found in it.
    static func prepare(directory: String, overwrite: Bool) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ModelFileError(path: directory, "exists and is not a directory") }
            let contents = try fm.contentsOfDirectory(atPath: directory)
            if !contents.isEmpty {
                guard overwrite else {
                    throw ModelFileError(path: directory, "exists and is not empty (use --force to replace the checkpoint files in it)")
                }
                for name in contents where isCheckpointFile(name) {
                    try fm.removeItem(atPath: URL(fileURLWithPath: directory).appendingPathComponent(name).path)
                }
            }
        } else {
            do {
                try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw ModelFileError(path: directory, "cannot create the directory (\(error.localizedDescription))")
            }
        }
    }

    static func configJSON(_ c: ModelConfiguration, tokenizer: any Tokenizer, quantization: [String: Any]?,
                           dtype: String) throws -> Data {
        var config: [String: Any] = [
            "model_type": c.architecture,
            "architectures": [c.architecture == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"],
            "hidden_size": c.hiddenSize, "intermediate_size": c.intermediateSize,
            "num_hidden_layers": c.layerCount, "num_attention_heads": c.headCount,
            "num_key_value_heads": c.kvHeadCount, "head_dim": c.headDim,
            "rms_norm_eps": Double(c.rmsNormEpsilon), "rope_theta": Double(c.ropeBase), "rope_scaling": NSNull(),
            "max_position_embeddings": c.contextLength, "vocab_size": c.vocabularySize,
            "tie_word_embeddings": c.tiedOutput, "hidden_act": "silu", "torch_dtype": dtype,
            "attention_dropout": 0.0, "use_cache": true,
            "bos_token_id": tokenizer.bosTokenID.map { Int($0) as Any } ?? NSNull(),
            "eos_token_id": tokenizer.eosTokenID.map { Int($0) as Any } ?? NSNull(),
        ]
        if c.architecture == "qwen2" {
            config["use_sliding_window"] = false
            config["sliding_window"] = NSNull()
        } else {
            config["attention_bias"] = false
            config["mlp_bias"] = false
        }
        if let quantization { config["quantization_config"] = quantization }
        let data = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted])
        // JSONSerialization writes 6.0 as 6; transformers' BitsAndBytesConfig insists on a float there.
        let text = String(decoding: data, as: UTF8.self)
            .replacingOccurrences(of: "\"llm_int8_threshold\" : 6,", with: "\"llm_int8_threshold\" : 6.0,")
        return Data(text.utf8)
    }
}

/// Which tensors a level's folder holds, and the facts its `quantization_config` records.
private struct Layout {
    let level: QuantLevel
    let configuration: ModelConfiguration
    /// AWQ group sizes used (one per matrix, taken from its shapes on reading).
    var groups: Set<Int> = []
    /// Linears written plain in a quantized folder (`modules_to_not_convert` / `llm_int8_skip_modules`).
    var plainModules = ["lm_head"]
    /// The 4-bit folders hold every unquantized tensor in F16.
    var half: Bool { level == .int4 || level == .int4RTN || level == .nf4 }

    init(level: QuantLevel, configuration: ModelConfiguration) {
        self.level = level
        self.configuration = configuration
    }

    mutating func entries(_ w: TransformerWeights, source: any TensorSource) throws -> [SafetensorsWriter.Entry] {
        let c = configuration
        var entries: [SafetensorsWriter.Entry] = []
        entries += try outer(w.embedding, gguf: "token_embd.weight", source: source)
        // A llama GGUF's Q and K rows are permuted for adjacent RoPE pairs: write Hugging Face's order.
        let unpermute = c.ropePairing == .adjacent
        let qOrder = CheckpointTensors.unpermutedRowOrder(heads: c.headCount, headDim: c.headDim)
        let kOrder = CheckpointTensors.unpermutedRowOrder(heads: c.kvHeadCount, headDim: c.headDim)
        func reorder(_ v: [Float]?, _ order: [Int]) -> [Float]? { v.map { v in unpermute ? order.map { v[$0] } : v } }
        for (i, l) in w.layers.enumerated() {
            let p = "model.layers.\(i)."
            entries.append(CheckpointTensors.vector(l.attentionNorm, name: p + "input_layernorm.weight", half: half))
            entries += try linear(unpermute ? l.wq.permutingRows(qOrder) : l.wq, base: p + "self_attn.q_proj")
            entries += try linear(unpermute ? l.wk.permutingRows(kOrder) : l.wk, base: p + "self_attn.k_proj")
            entries += try linear(l.wv, base: p + "self_attn.v_proj")
            for (bias, name) in [(reorder(l.bq, qOrder), "q"), (reorder(l.bk, kOrder), "k"), (l.bv, "v")] {
                if let bias { entries.append(CheckpointTensors.vector(bias, name: p + "self_attn.\(name)_proj.bias", half: half)) }
            }
            entries += try linear(l.wo, base: p + "self_attn.o_proj")
            entries.append(CheckpointTensors.vector(l.ffnNorm, name: p + "post_attention_layernorm.weight", half: half))
            entries += try linear(l.gate, base: p + "mlp.gate_proj")
            entries += try linear(l.up, base: p + "mlp.up_proj")
            entries += try linear(l.down, base: p + "mlp.down_proj")
        }
        entries.append(CheckpointTensors.vector(w.outputNorm, name: "model.norm.weight", half: half))
        if let output = w.output { entries += try outer(output, gguf: "output.weight", source: source) }
        return entries
    }

    /// A decoder linear in the level's packing, or plain when the level keeps it in another format.
    private mutating func linear(_ w: WeightMatrix, base: String) throws -> [SafetensorsWriter.Entry] {
        let w = w.rowMajor
        switch (level, w.format.kind) {
        case (.int4, QS_FORMAT_Q4) where w.rows % 8 == 0, (.int4RTN, QS_FORMAT_Q4) where w.rows % 8 == 0:
            groups.insert(w.format.group)
            return CheckpointTensors.awq(w, base: base)
        case (.nf4, QS_FORMAT_NF4):
            return try CheckpointTensors.nf4(w, base: base)
        case (.int8, QS_FORMAT_Q8):
            return CheckpointTensors.int8(w, base: base)
        default:
            if level.storesPacked { plainModules.append(base) }
            return [CheckpointTensors.plain(w, base: base, half: half)]
        }
    }

    /// The embeddings or the output matrix: as in memory for fp16, f32 and int8; F16 from the source for the 4-bit
    /// levels, whose peers (AutoAWQ, bitsandbytes) keep them unquantized.
    private mutating func outer(_ w: WeightMatrix, gguf: String, source: any TensorSource) throws -> [SafetensorsWriter.Entry] {
        let w = w.rowMajor
        let name = HFTensorNames.huggingFace(gguf)!
        let base = String(name.dropLast(".weight".count))
        switch level {
        case .int8 where w.format.kind == QS_FORMAT_Q8:
            return CheckpointTensors.int8(w, base: base)
        case .int4, .int4RTN, .nf4:
            return [CheckpointTensors.float16(rows: try source.matrixRows(gguf, rows: w.rows, cols: w.cols),
                                              rows: w.rows, cols: w.cols, name: name)]
        default:
            return [CheckpointTensors.plain(w, base: base)]
        }
    }

    func quantizationConfig() -> [String: Any]? {
        switch level {
        case .f32, .fp16, .native:
            return nil
        case .int4, .int4RTN:
            // One group for all matrices where the shapes allow (every real model); readers take each matrix's
            // group from its tensor shapes, so tiny models with mixed groups record the smallest.
            return ["quant_method": "awq", "bits": 4, "group_size": groups.min() ?? 128, "zero_point": true,
                    "version": "gemm", "modules_to_not_convert": plainModules]
        case .nf4:
            return ["quant_method": "bitsandbytes", "load_in_4bit": true, "load_in_8bit": false,
                    "_load_in_4bit": true, "_load_in_8bit": false,
                    "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": false,
                    "bnb_4bit_compute_dtype": "float16", "bnb_4bit_quant_storage": "uint8",
                    "llm_int8_threshold": 6.0, "llm_int8_has_fp16_weight": false,
                    "llm_int8_enable_fp32_cpu_offload": false, "llm_int8_skip_modules": plainModules]
        case .int8:
            return ["quant_method": HFQuantization.int8Method, "bits": 8, "group_size": 32, "symmetric": true,
                    "scale_dtype": "float16", "modules_to_not_convert": plainModules]
        }
    }
}

extension QuantLevel {
    /// Whether a folder at this level holds packed (quantized) linears.
    var storesPacked: Bool { self != .f32 && self != .fp16 }
}
