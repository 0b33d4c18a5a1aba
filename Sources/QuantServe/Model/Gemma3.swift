extension Architecture {
    /// Gemma 3 (text), as llama.cpp's `src/models/gemma3.cpp` runs it: embeddings × sqrt(hidden size); per-head RMS
    /// norms on Q and K before RoPE (NEOX pairing); RMS norms on the attention and MLP outputs before each residual
    /// add; a GELU(tanh)-gated MLP; norm weights used as stored (the GGUF converter already wrote 1 + w); queries
    /// scaled by 1/sqrt(key_length) (27B: 1/sqrt(hidden / heads)). With `attention.sliding_window` set, five layers
    /// in six are local (window `sliding_window`, RoPE base `rope.freq_base_swa`, default 10000, no scaling) and
    /// every sixth (i % 6 == 5) global (`rope.freq_base`, with the file's linear RoPE scaling); an
    /// `attention.sliding_window_pattern` key (a period, or one bool per layer, true = local) overrides the six.
    public static let gemma3 = Architecture(name: "gemma3", defaultChatTemplate: gemma3ChatTemplate) { file in
        let p = "gemma3"
        var c = try llamaStyleConfiguration(file, prefix: p, ropePairing: .neox, hasQKVBias: false)
        if let valueLength = try file.optionalInt("\(p).attention.value_length"), valueLength != c.headDim {
            throw file.error("attention.value_length \(valueLength) differs from key_length \(c.headDim) (unsupported)")
        }
        if let cap = try file.optionalDouble("\(p).final_logit_softcapping"), cap != 0 {
            throw file.error("final_logit_softcapping = \(cap) is not supported")
        }
        c.embeddingScale = Float(c.hiddenSize).squareRoot()
        c.activation = .geluTanh
        c.hasQKNorm = true
        c.hasPostNorms = true
        // llama.cpp (after gemma_pytorch's config): the 27B model (62 layers) scales by hidden / heads.
        c.attentionScale = 1 / Float(c.layerCount == 62 ? c.hiddenSize / c.headCount : c.headDim).squareRoot()

        let globalScale = try linearRopeScale(file, prefix: p)
        let global = LayerAttention(slidingWindow: 0, ropeBase: c.ropeBase, ropeScale: globalScale)
        let window = try file.optionalInt("\(p).attention.sliding_window") ?? 0
        guard window > 0 else {
            c.layerAttention = Array(repeating: global, count: c.layerCount)
            return c
        }
        let localBase = Float(try file.optionalDouble("\(p).rope.freq_base_swa") ?? 10000)
        guard localBase > 0, localBase.isFinite else { throw file.error("rope.freq_base_swa = \(localBase) is not a positive number") }
        let local = LayerAttention(slidingWindow: window, ropeBase: localBase)
        let isLocal = try slidingWindowLayers(file, prefix: p, layerCount: c.layerCount)
        c.layerAttention = isLocal.map { $0 ? local : global }
        return c
    }

    /// Which layers use the sliding window: llama.cpp's `load_swa_pattern(ml, 6)` and `set_swa_pattern`.
    private static func slidingWindowLayers(_ file: GGUFFile, prefix p: String, layerCount: Int) throws -> [Bool] {
        let key = "\(p).attention.sliding_window_pattern"
        if let values = file.metadata[key]?.arrayValue {
            let flags = values.compactMap(\.boolValue)
            guard flags.count == values.count, flags.count == layerCount else {
                throw file.error("\(key) must hold one bool per layer (\(layerCount))")
            }
            return flags
        }
        let period = try file.optionalInt(key) ?? 6
        guard period >= 0 else { throw file.error("\(key) = \(period) is negative") }
        // Period 0: every layer local; otherwise the last layer of each period is global.
        return (0..<layerCount).map { period == 0 || $0 % period < period - 1 }
    }

    /// The global layers' linear RoPE scaling (1 / `rope.scaling.factor`); other scaling types are rejected.
    private static func linearRopeScale(_ file: GGUFFile, prefix p: String) throws -> Float {
        let type = try file.optionalString("\(p).rope.scaling.type") ?? "linear"
        guard type == "linear" || type == "none" else {
            throw file.error("rope.scaling.type '\(type)' is not supported (supported: linear, none)")
        }
        let factor = try file.optionalDouble("\(p).rope.scaling.factor") ?? file.optionalDouble("\(p).rope.scale_linear") ?? 0
        guard factor >= 0, factor.isFinite else { throw file.error("rope.scaling.factor = \(factor) is not a positive number") }
        return factor == 0 ? 1 : Float(1 / factor)
    }

    /// Gemma 3's official chat template (google/gemma-3-*-it, tokenizer_config.json), for files that carry none
    /// (the published Gemma 3 270M GGUF has no `tokenizer.chat_template`).
    static let gemma3ChatTemplate = """
        {{ bos_token }}
        {%- if messages[0]['role'] == 'system' -%}
            {%- if messages[0]['content'] is string -%}
                {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
            {%- else -%}
                {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
            {%- endif -%}
            {%- set loop_messages = messages[1:] -%}
        {%- else -%}
            {%- set first_user_prefix = "" -%}
            {%- set loop_messages = messages -%}
        {%- endif -%}
        {%- for message in loop_messages -%}
            {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
                {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
            {%- endif -%}
            {%- if (message['role'] == 'assistant') -%}
                {%- set role = "model" -%}
            {%- else -%}
                {%- set role = message['role'] -%}
            {%- endif -%}
            {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
            {%- if message['content'] is string -%}
                {{ message['content'] | trim }}
            {%- elif message['content'] is iterable -%}
                {%- for item in message['content'] -%}
                    {%- if item['type'] == 'image' -%}
                        {{ '<start_of_image>' }}
                    {%- elif item['type'] == 'text' -%}
                        {{ item['text'] | trim }}
                    {%- endif -%}
                {%- endfor -%}
            {%- else -%}
                {{ raise_exception("Invalid content type") }}
            {%- endif -%}
            {{ '<end_of_turn>\n' }}
        {%- endfor -%}
        {%- if add_generation_prompt -%}
            {{'<start_of_turn>model\n'}}
        {%- endif -%}

        """
}
