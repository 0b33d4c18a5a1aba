/// A token's attributes as llama.cpp keeps them: the file's token type, plus the corrections llama.cpp applies when it
/// recognises a token by its text (an end-of-turn token stored as normal is treated as control, for instance).
public struct TokenAttributes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let normal = TokenAttributes(rawValue: 1)
    public static let unknown = TokenAttributes(rawValue: 2)
    public static let control = TokenAttributes(rawValue: 4)
    public static let userDefined = TokenAttributes(rawValue: 8)
    public static let unused = TokenAttributes(rawValue: 16)
    public static let byte = TokenAttributes(rawValue: 32)

    init(_ type: TokenizerVocabulary.TokenType) {
        switch type {
        case .normal: self = .normal
        case .unknown: self = .unknown
        case .control: self = .control
        case .userDefined: self = .userDefined
        case .unused: self = .unused
        case .byte: self = .byte
        }
    }
}

/// The special token ids, flags and end-of-generation set of a vocabulary, resolved as llama.cpp's
/// `llama_vocab::impl::load` does (defaults per tokenizer model, detection of special tokens by their text).
struct SpecialTokens: Sendable {
    var attributes: [TokenAttributes]
    var bos: Int32?
    var eos: Int32?
    var eot: Int32?
    var eom: Int32?
    var unknown: Int32?
    var padding: Int32?
    var endOfGeneration: Set<Int32>
    var addBOS: Bool
    var addEOS: Bool

    // Texts llama.cpp recognises (llama-vocab.cpp). Where several are present, llama.cpp takes whichever its hash
    // map yields first; this takes the first in list order (Qwen: <|im_end|> rather than <|endoftext|>).
    static let endOfTurnTexts = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
        "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
    ]
    static let endOfMessageTexts = ["<|eom_id|>"]
    static let fillInMiddleTexts: [[String]] = [
        ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>",
         "<|prefix|>"],
        ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>",
         "<|suffix|>"],
        ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>",
         "<|middle|>"],
    ]
    /// Fill-in-the-middle pad, repository and file-separator tokens: llama.cpp counts these as end of generation.
    static let fillInMiddleEndTexts: [[String]] = [
        ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
        ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
        ["<|file_sep|>"],
    ]
    static let endOfGenerationTexts: Set<String> = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
    ]

    init(vocabulary v: TokenizerVocabulary, table: ByteStringTable, addsBOSByDefault: Bool) throws(TokenizerError) {
        let n = v.tokens.count
        guard v.tokenTypes.count == n else {
            throw .inconsistentVocabulary("\(v.tokenTypes.count) token types for \(n) tokens")
        }
        var attributes = v.tokenTypes.map(TokenAttributes.init)

        func inRange(_ id: Int32?) -> Int32? {
            guard let id, id >= 0, Int(id) < n else { return nil }
            return id
        }
        // Defaults per tokenizer model, then the file's values.
        var bos: Int32?, eos: Int32?, unknown: Int32?
        switch v.model {
        case .sentencePiece:
            bos = inRange(1); eos = inRange(2); unknown = inRange(0)
        case .bytePairGPT2:
            bos = inRange(11); eos = inRange(11); unknown = nil
        }
        if let id = inRange(v.bosTokenID) { bos = id }
        if let id = inRange(v.eosTokenID) { eos = id }
        if let id = inRange(v.unknownTokenID) { unknown = id }
        var eot = inRange(v.eotTokenID)
        var eom = inRange(v.eomTokenID)

        func firstID(_ texts: [String]) -> Int32? { texts.lazy.compactMap { table.find($0) }.first }
        func markControl(_ id: Int32?) { if let id { attributes[Int(id)].insert(.control) } }

        if eot == nil { eot = firstID(Self.endOfTurnTexts); markControl(eot) }
        if eom == nil { eom = firstID(Self.endOfMessageTexts); markControl(eom) }
        for texts in Self.fillInMiddleTexts { markControl(firstID(texts)) }
        var endOfGeneration = Set<Int32>()
        for texts in Self.fillInMiddleEndTexts {
            if let id = firstID(texts) {
                markControl(id)
                endOfGeneration.insert(id)
            }
        }
        for text in Self.endOfGenerationTexts {
            if let id = table.find(text) {
                endOfGeneration.insert(id)
                markControl(id)
            }
        }
        // gpt-oss: these are always rendered.
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let id = table.find(text) { attributes[Int(id)] = .userDefined }
        }
        for id in [eos, eot, eom] { if let id { endOfGeneration.insert(id) } }

        // o200k_harmony and solar-open: "<|end|>" ends a message, not the generation.
        func eogHas(_ text: String) -> Bool { table.find(text).map(endOfGeneration.contains) ?? false }
        if let end = table.find("<|end|>"), endOfGeneration.contains(end) {
            let hasCall = eogHas("<|call|>") || eogHas("<|calls|>")
            if hasCall && (eogHas("<|return|>") || eogHas("<|flush|>")) {
                endOfGeneration.remove(end)
                attributes[Int(end)] = .userDefined
            }
        }
        // Gemma 4 and PaddleOCR: "</s>" is not an end of generation.
        if eogHas("<|tool_response>"), let s = table.find("</s>"), endOfGeneration.contains(s) {
            endOfGeneration.remove(s)
            attributes[Int(s)] = .normal
        }

        self.attributes = attributes
        self.endOfGeneration = endOfGeneration
        self.bos = bos
        self.eos = eos
        self.eot = eot
        self.eom = eom
        self.unknown = unknown
        self.padding = inRange(v.paddingTokenID)
        addBOS = v.addBOS ?? (v.model == .sentencePiece ? true : addsBOSByDefault)
        addEOS = v.addEOS ?? false
        if addBOS && bos == nil {
            throw .missingSpecialToken("tokenizer.ggml.add_bos_token is true but there is no BOS token")
        }
        if addEOS && eos == nil {
            throw .missingSpecialToken("tokenizer.ggml.add_eos_token is true but there is no EOS token")
        }
    }
}
