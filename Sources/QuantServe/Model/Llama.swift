extension Architecture {
    /// Llama (1, 2, 3) as converted to GGUF by llama.cpp: Q and K were permuted so that RoPE pairs adjacent values.
    public static let llama = Architecture(name: "llama") { file in
        try llamaStyleConfiguration(file, prefix: "llama", ropePairing: .adjacent, hasQKVBias: false)
    }
}
