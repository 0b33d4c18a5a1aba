/// Everything a tokenizer needs, as read from a model file's metadata (`tokenizer.ggml.*` in GGUF).
/// Loaders fill it; tokenizers consume it. Nothing here knows about files.
public struct TokenizerVocabulary: Sendable {
    public enum Model: String, Sendable {
        /// Byte-level BPE (`tokenizer.ggml.model = gpt2`), merges ranked by position.
        case bytePairGPT2 = "gpt2"
        /// SentencePiece BPE (`tokenizer.ggml.model = llama`), merges ranked by score.
        case sentencePiece = "llama"
    }

    /// llama.cpp's token types (`tokenizer.ggml.token_type`).
    public enum TokenType: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public var model: Model
    /// `tokenizer.ggml.pre` (for example `qwen2`, `llama-bpe`, `default`); nil when absent.
    public var preTokenizer: String?
    public var tokens: [String]
    /// One per token; empty when the file has none.
    public var scores: [Float]
    /// One per token; `.normal` for all when the file has none.
    public var tokenTypes: [TokenType]
    /// Byte-level BPE merges, "a b", rank = index.
    public var merges: [String]
    public var bosTokenID: Int32?
    public var eosTokenID: Int32?
    public var eotTokenID: Int32?
    public var eomTokenID: Int32?
    public var unknownTokenID: Int32?
    public var paddingTokenID: Int32?
    /// `tokenizer.ggml.add_bos_token` / `add_eos_token` / `add_space_prefix`; nil when absent.
    public var addBOS: Bool?
    public var addEOS: Bool?
    public var addSpacePrefix: Bool?
    /// `tokenizer.chat_template`.
    public var chatTemplate: String?

    public init(
        model: Model, preTokenizer: String? = nil, tokens: [String], scores: [Float] = [],
        tokenTypes: [TokenType] = [], merges: [String] = [], bosTokenID: Int32? = nil, eosTokenID: Int32? = nil,
        eotTokenID: Int32? = nil, eomTokenID: Int32? = nil, unknownTokenID: Int32? = nil, paddingTokenID: Int32? = nil,
        addBOS: Bool? = nil, addEOS: Bool? = nil, addSpacePrefix: Bool? = nil, chatTemplate: String? = nil
    ) {
        self.model = model
        self.preTokenizer = preTokenizer
        self.tokens = tokens
        self.scores = scores
        self.tokenTypes = tokenTypes.isEmpty ? Array(repeating: .normal, count: tokens.count) : tokenTypes
        self.merges = merges
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.eotTokenID = eotTokenID
        self.eomTokenID = eomTokenID
        self.unknownTokenID = unknownTokenID
        self.paddingTokenID = paddingTokenID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        self.chatTemplate = chatTemplate
    }
}
