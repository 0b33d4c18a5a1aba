import Foundation

public struct ChatMessage: Sendable, Equatable, Hashable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

public enum ChatTemplateError: Error, Equatable, CustomStringConvertible {
    case missingTemplate
    case unrecognizedTemplate(excerpt: String)
    /// The template raises on a system message (Gemma 1 and 2).
    case systemRoleNotSupported(ChatTemplate.Family)
    /// The template requires user, assistant, user, … (Llama 2, Gemma).
    case rolesMustAlternate(ChatTemplate.Family)

    public var description: String {
        switch self {
        case .missingTemplate:
            return "the model has no chat template (tokenizer.chat_template)"
        case let .unrecognizedTemplate(excerpt):
            return "unrecognized chat template; supported families: ChatML (<|im_start|>), Llama 3 "
                + "(<|start_header_id|>), Llama 2 ([INST] with <<SYS>>), Gemma (<start_of_turn>). Template begins: "
                + excerpt
        case let .systemRoleNotSupported(family):
            return "the \(family.rawValue) chat template does not accept a system message"
        case let .rolesMustAlternate(family):
            return "the \(family.rawValue) chat template needs the roles to alternate user/assistant/user/…"
        }
    }
}

/// A model's chat template (`tokenizer.chat_template`, a Jinja template), recognised by family and rendered natively
/// to the text the Jinja template renders for plain messages (no tools).
public struct ChatTemplate: Sendable {
    public enum Family: String, Sendable, CaseIterable {
        case chatML = "chatml"
        case llama3
        case llama2
        case gemma
    }

    /// A run of rendered text: template text (`isTemplate`, tokenized with special tokens parsed) or message
    /// text (tokenized as plain text, so a user cannot type `<|im_end|>` into the prompt structure).
    public struct Segment: Sendable, Equatable {
        public var text: String
        public var isTemplate: Bool
        public init(text: String, isTemplate: Bool) {
            self.text = text
            self.isTemplate = isTemplate
        }
    }

    public let family: Family
    public let source: String
    public var bosToken: String
    public var eosToken: String
    /// The system prompt the template supplies when the conversation has none (Qwen's "You are Qwen, …").
    public var defaultSystemPrompt: String?
    /// Llama 3.1+: the "Today Date" line; the template's own fallback ("26 Jul 2024") when nil.
    public var todayDate: String?

    public init(source: String, bosToken: String = "", eosToken: String = "") throws(ChatTemplateError) {
        guard let family = Self.family(of: source) else {
            let excerpt = String(source.prefix(120)).replacingOccurrences(of: "\n", with: "\\n")
            throw .unrecognizedTemplate(excerpt: excerpt)
        }
        self.family = family
        self.source = source
        self.bosToken = bosToken
        self.eosToken = eosToken
        defaultSystemPrompt = family == .chatML ? Self.defaultChatMLSystemPrompt(in: source) : nil
    }

    /// The template of a vocabulary, with its BOS/EOS token texts.
    public init(vocabulary: TokenizerVocabulary) throws(ChatTemplateError) {
        guard let source = vocabulary.chatTemplate, !source.isEmpty else { throw .missingTemplate }
        func text(_ id: Int32?) -> String {
            guard let id, id >= 0, Int(id) < vocabulary.tokens.count else { return "" }
            return vocabulary.tokens[Int(id)]
        }
        try self.init(source: source, bosToken: text(vocabulary.bosTokenID), eosToken: text(vocabulary.eosTokenID))
    }

    /// The family a template belongs to, by the markers it contains; nil when none is recognised.
    public static func family(of source: String) -> Family? {
        if source.contains("<|start_header_id|>") { return .llama3 }
        if source.contains("<start_of_turn>") { return .gemma }
        if source.contains("<|im_start|>") { return .chatML }
        if source.contains("[INST]") && source.contains("<<SYS>>") { return .llama2 }
        return nil
    }

    /// The rendered prompt as one string.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws(ChatTemplateError) -> String {
        try renderSegments(messages, addGenerationPrompt: addGenerationPrompt).map(\.text).joined()
    }

    /// The rendered prompt as alternating template and message text.
    public func renderSegments(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws(ChatTemplateError)
        -> [Segment]
    {
        var out = SegmentBuilder()
        switch family {
        case .chatML: renderChatML(messages, addGenerationPrompt, &out)
        case .llama3: renderLlama3(messages, addGenerationPrompt, &out)
        case .llama2: try renderLlama2(messages, &out)
        case .gemma: try renderGemma(messages, addGenerationPrompt, &out)
        }
        return out.segments
    }

    /// Finds a literal system prompt in a ChatML template: `'<|im_start|>system\n…<|im_end|>'` with no expression
    /// inside (the branch taken when the first message is not a system message).
    static func defaultChatMLSystemPrompt(in source: String) -> String? {
        for marker in ["<|im_start|>system\\n", "<|im_start|>system\n"] {
            var searchStart = source.startIndex
            while let found = source.range(of: marker, range: searchStart..<source.endIndex) {
                searchStart = found.upperBound
                guard let end = source.range(of: "<|im_end|>", range: found.upperBound..<source.endIndex) else { break }
                let body = source[found.upperBound..<end.lowerBound]
                if let prompt = JinjaText.literalText(body), !prompt.isEmpty { return prompt }
            }
        }
        return nil
    }
}

/// Collects segments, joining neighbours of the same kind and dropping empty text.
struct SegmentBuilder {
    var segments: [ChatTemplate.Segment] = []

    mutating func template(_ text: String) { add(text, isTemplate: true) }
    mutating func content(_ text: String) { add(text, isTemplate: false) }

    mutating func add(_ text: String, isTemplate: Bool) {
        guard !text.isEmpty else { return }
        if let last = segments.last, last.isTemplate == isTemplate {
            segments[segments.count - 1].text += text
        } else {
            segments.append(.init(text: text, isTemplate: isTemplate))
        }
    }

    mutating func append(contentsOf other: [ChatTemplate.Segment]) {
        for s in other { add(s.text, isTemplate: s.isTemplate) }
    }
}
