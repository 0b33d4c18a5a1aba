/// Tensor names of a Hugging Face Llama-style checkpoint, from the GGUF names the loader asks for.
enum HFTensorNames {
    static let global = [
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    ]
    /// `blk.N.<key>` → `model.layers.N.<value>`.
    static let layer = [
        "attn_norm": "input_layernorm",
        "ffn_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    ]

    /// `blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`; nil for a name with no counterpart.
    static func huggingFace(_ gguf: String) -> String? {
        if let name = global[gguf] { return name }
        let parts = gguf.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0] == "blk", Int(parts[1]) != nil, let module = layer[String(parts[2])] else {
            return nil
        }
        return "model.layers.\(parts[1]).\(module)." + parts[3...].joined(separator: ".")
    }
}
