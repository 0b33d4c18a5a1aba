extension Architecture {
    /// Llama (1, 2, 3) as converted to GGUF by llama.cpp: Q and K were permuted so that RoPE pairs adjacent values.
    /// A Hugging Face llama folder holds the unpermuted weights: NEOX pairing.
    public static let llama = Architecture(name: "llama", configuration: { file in
        try llamaStyleConfiguration(file, prefix: "llama", ropePairing: .adjacent, hasQKVBias: false)
    }, huggingFace: { config in
        guard !config.attentionBias else {
            throw ModelFileError(path: config.path, "attention_bias = true is not supported for llama (no o_proj bias)")
        }
        return try config.llamaStyleConfiguration(ropePairing: .neox, hasQKVBias: false)
    })
}
