extension Architecture {
    /// Qwen2 / Qwen2.5: the Llama layout with biases on Q, K and V, and NEOX RoPE pairing.
    public static let qwen2 = Architecture(name: "qwen2", configuration: { file in
        try llamaStyleConfiguration(file, prefix: "qwen2", ropePairing: .neox, hasQKVBias: true)
    }, huggingFace: { config in
        try config.llamaStyleConfiguration(ropePairing: .neox, hasQKVBias: true)
    })
}
