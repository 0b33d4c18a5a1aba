/// Turns text into token ids and token ids back into bytes, with llama.cpp's results for the same vocabulary.
/// Make one with `makeTokenizer(vocabulary:)`.
public protocol Tokenizer: Sendable {
    /// Number of tokens in the vocabulary (ids are `0..<vocabularySize`).
    var vocabularySize: Int { get }
    var bosTokenID: Int32? { get }
    var eosTokenID: Int32? { get }
    /// End of turn (`<|eot_id|>`, `<|im_end|>`, …), from the file or recognised by its text.
    var eotTokenID: Int32? { get }
    /// Whether `encode(_:addSpecial: true, …)` puts BOS first / EOS last (`tokenizer.ggml.add_bos_token`, …,
    /// with llama.cpp's defaults when the file is silent).
    var addsBOS: Bool { get }
    var addsEOS: Bool { get }
    /// Every token that ends generation (EOS, EOT, EOM and the tokens llama.cpp recognises by their text).
    var endOfGenerationIDs: Set<Int32> { get }
    /// `tokenizer.chat_template` (a Jinja template); see `makeChatTemplate()`.
    var chatTemplateSource: String? { get }
    /// One line for logs: model, pre-tokenizer, sizes, special tokens.
    var summary: String { get }

    /// Tokenizes the concatenation of `segments` as one text, except that special-token strings are recognised
    /// only inside segments whose `parseSpecial` is true (user-defined tokens are recognised everywhere).
    func encode(_ segments: [TextSegment], addSpecial: Bool) -> [Int32]

    /// Tokenizes `text`. `addSpecial` adds BOS/EOS as the vocabulary asks; `parseSpecial` lets control-token
    /// strings in the text (`<|im_start|>`) become those tokens instead of being tokenized as plain text.
    func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32]

    /// The raw bytes token `id` stands for; empty for control and unknown tokens unless `renderSpecial`.
    /// A token may hold part of a UTF-8 sequence (use `StreamingDetokenizer` to print).
    func tokenBytes(_ id: Int32, renderSpecial: Bool) -> [UInt8]

    /// The token's text as the vocabulary stores it (`Ġhello`, `▁hello`, `<0x0A>`, `<|im_end|>`).
    func tokenText(_ id: Int32) -> String
    /// The id of the token whose stored text is `text`.
    func tokenID(forText text: String) -> Int32?
    func attributes(of id: Int32) -> TokenAttributes

    func isEndOfGeneration(_ id: Int32) -> Bool
}

/// A run of text with its own rule for special tokens (see `Tokenizer.encode(_:addSpecial:)`).
public struct TextSegment: Sendable, Equatable {
    public var text: String
    public var parseSpecial: Bool
    public init(_ text: String, parseSpecial: Bool) {
        self.text = text
        self.parseSpecial = parseSpecial
    }
}

public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// `tokenizer.ggml.pre` names a pre-tokenizer this engine does not implement.
    case unsupportedPreTokenizer(name: String, supported: [String])
    /// A line of `tokenizer.ggml.merges` is not "left right".
    case badMerge(index: Int, line: String)
    /// A BPE vocabulary without merges.
    case missingMerges
    case missingSpecialToken(String)
    case inconsistentVocabulary(String)

    public var description: String {
        switch self {
        case let .unsupportedPreTokenizer(name, supported):
            return "unsupported pre-tokenizer '\(name)' (tokenizer.ggml.pre); supported: "
                + supported.joined(separator: ", ")
        case let .badMerge(index, line):
            return "tokenizer.ggml.merges[\(index)] = \"\(line)\" is not two pieces separated by a space"
        case .missingMerges:
            return "a gpt2 (byte-level BPE) vocabulary needs tokenizer.ggml.merges"
        case let .missingSpecialToken(message), let .inconsistentVocabulary(message):
            return message
        }
    }
}

extension Tokenizer {
    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        encode([TextSegment(text, parseSpecial: parseSpecial)], addSpecial: addSpecial)
    }

    /// Plain user text: BOS/EOS as the vocabulary asks, special-token strings not parsed.
    public func encode(_ text: String) -> [Int32] {
        encode(text, addSpecial: true, parseSpecial: false)
    }

    public func tokenBytes(_ id: Int32) -> [UInt8] {
        tokenBytes(id, renderSpecial: false)
    }

    public func isEndOfGeneration(_ id: Int32) -> Bool {
        endOfGenerationIDs.contains(id)
    }

    /// The model's chat template, with this vocabulary's BOS/EOS token texts.
    public func makeChatTemplate() throws(ChatTemplateError) -> ChatTemplate {
        guard let source = chatTemplateSource, !source.isEmpty else { throw .missingTemplate }
        func text(_ id: Int32?) -> String { id.map { tokenText($0) } ?? "" }
        return try ChatTemplate(source: source, bosToken: text(bosTokenID), eosToken: text(eosTokenID))
    }

    public func isControl(_ id: Int32) -> Bool {
        attributes(of: id).contains(.control)
    }

    /// The text of `ids` (control tokens omitted unless `renderSpecial`); invalid UTF-8 becomes U+FFFD.
    public func decode(_ ids: [Int32], renderSpecial: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids { bytes.append(contentsOf: tokenBytes(id, renderSpecial: renderSpecial)) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Builds the tokenizer a vocabulary describes: byte-level BPE for `gpt2`, SentencePiece BPE for `llama`.
public func makeTokenizer(vocabulary: TokenizerVocabulary) throws(TokenizerError) -> any Tokenizer {
    switch vocabulary.model {
    case .bytePairGPT2:
        return try ByteLevelBPETokenizer(vocabulary: vocabulary)
    case .sentencePiece:
        return try SentencePieceTokenizer(vocabulary: vocabulary)
    }
}
