extension GGUFFile {
    /// The tokenizer described by the `tokenizer.ggml.*` metadata.
    public func tokenizerVocabulary() throws -> TokenizerVocabulary {
        guard let modelName = try optionalString("tokenizer.ggml.model") else {
            throw error("missing metadata 'tokenizer.ggml.model'")
        }
        guard let model = TokenizerVocabulary.Model(rawValue: modelName) else {
            throw error("unsupported tokenizer model '\(modelName)' (supported: gpt2, llama)")
        }
        let tokens = try strings("tokenizer.ggml.tokens")
        guard !tokens.isEmpty else { throw error("tokenizer.ggml.tokens is empty") }
        let scores = try floats("tokenizer.ggml.scores")
        guard scores.isEmpty || scores.count == tokens.count else {
            throw error("tokenizer.ggml.scores has \(scores.count) values for \(tokens.count) tokens")
        }
        let rawTypes = try ints("tokenizer.ggml.token_type")
        guard rawTypes.isEmpty || rawTypes.count == tokens.count else {
            throw error("tokenizer.ggml.token_type has \(rawTypes.count) values for \(tokens.count) tokens")
        }
        let types = try rawTypes.map { raw -> TokenizerVocabulary.TokenType in
            guard let t = TokenizerVocabulary.TokenType(rawValue: Int32(clamping: raw)) else {
                throw error("tokenizer.ggml.token_type has unknown type \(raw)")
            }
            return t
        }
        func tokenID(_ key: String) throws -> Int32? {
            guard let id = try optionalInt(key) else { return nil }
            // llama.cpp writes -1 (as u32 0xFFFFFFFF) for "none".
            if id < 0 || id == Int(UInt32.max) { return nil }
            guard id < tokens.count else { throw error("\(key) = \(id) is outside the vocabulary of \(tokens.count)") }
            return Int32(id)
        }
        return TokenizerVocabulary(
            model: model,
            preTokenizer: try optionalString("tokenizer.ggml.pre"),
            tokens: tokens,
            scores: scores,
            tokenTypes: types,
            merges: try strings("tokenizer.ggml.merges"),
            bosTokenID: try tokenID("tokenizer.ggml.bos_token_id"),
            eosTokenID: try tokenID("tokenizer.ggml.eos_token_id"),
            eotTokenID: try tokenID("tokenizer.ggml.eot_token_id"),
            eomTokenID: try tokenID("tokenizer.ggml.eom_token_id"),
            unknownTokenID: try tokenID("tokenizer.ggml.unknown_token_id"),
            paddingTokenID: try tokenID("tokenizer.ggml.padding_token_id"),
            addBOS: try optionalBool("tokenizer.ggml.add_bos_token"),
            addEOS: try optionalBool("tokenizer.ggml.add_eos_token"),
            addSpacePrefix: try optionalBool("tokenizer.ggml.add_space_prefix"),
            chatTemplate: try optionalString("tokenizer.chat_template")
                ?? architecture.flatMap { Architecture.named($0)?.defaultChatTemplate }
        )
    }

    private func array(_ key: String) throws -> [GGUFValue] {
        guard let value = metadata[key] else { return [] }
        guard let values = value.arrayValue else { throw error("metadata '\(key)' is not an array") }
        return values
    }

    private func strings(_ key: String) throws -> [String] {
        try array(key).map {
            guard let s = $0.stringValue else { throw error("metadata '\(key)' holds a non-string") }
            return s
        }
    }

    private func floats(_ key: String) throws -> [Float] {
        try array(key).map {
            guard let d = $0.doubleValue else { throw error("metadata '\(key)' holds a non-number") }
            return Float(d)
        }
    }

    private func ints(_ key: String) throws -> [Int] {
        try array(key).map {
            guard let i = $0.intValue else { throw error("metadata '\(key)' holds a non-integer") }
            return i
        }
    }
}
