import Foundation

/// Reads a Hugging Face tokenizer (`tokenizer.json` in the tokenizers library's format, `tokenizer_config.json`,
/// `chat_template.jinja`) into the vocabulary the GGUF loader would give for the same model, so the same tokenizer
/// comes out. Two kinds are read: byte-level BPE (`ByteLevel` pre-tokenizer; the split regex recognised as
/// `qwen2`, `llama-bpe` or `gpt2`) and SentencePiece-style BPE (`byte_fallback`, `▁` for spaces; merge ranks become
/// scores). Ids missing between the vocabulary and `vocab_size` become `[PAD<id>]` unused tokens, as llama.cpp's
/// converter writes them.
struct HFTokenizerFiles {
    let folder: URL
    let config: HFConfig

    init(folder: String, config: HFConfig) {
        self.folder = URL(fileURLWithPath: folder)
        self.config = config
    }

    /// The split regexes of the pre-tokenizers QuantServe implements, after the contractions alternative.
    static let contractionPrefixes = [
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|"#,
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|"#,
    ]
    static let splitPatterns = [
        "qwen2": #"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        "llama-bpe": #"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
    ]

    func vocabulary() throws -> TokenizerVocabulary {
        let path = folder.appendingPathComponent("tokenizer.json").path
        let json = try JSONFields(path: path, what: "the tokenizer, in the Hugging Face tokenizers format")
        guard let model = try json.optionalObject("model") else { throw json.error("'model' is missing") }
        let type = try model.optionalString("type") ?? "BPE"
        guard type == "BPE" else { throw json.error("model.type '\(type)' is not supported (only BPE)") }
        guard let vocab = model.object["vocab"] as? [String: Any] else { throw json.error("model.vocab must be an object") }

        // Ids: the vocabulary, then the added tokens (which may extend it or repeat entries of it).
        var entries: [(String, Int, TokenizerVocabulary.TokenType?)] = []
        entries.reserveCapacity(vocab.count)
        for (text, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue else { throw json.error("model.vocab['\(text)'] is not an id") }
            entries.append((text, id, nil))
        }
        for case let added as [String: Any] in json.object["added_tokens"] as? [Any] ?? [] {
            guard let id = (added["id"] as? NSNumber)?.intValue, let content = added["content"] as? String else {
                throw json.error("an entry of added_tokens lacks 'id' or 'content'")
            }
            let special = (added["special"] as? NSNumber)?.boolValue ?? false
            entries.append((content, id, special ? .control : .userDefined))
        }
        let maxID = entries.map(\.1).max() ?? -1
        guard maxID < 4_000_000, entries.allSatisfy({ $0.1 >= 0 }) else { throw json.error("token ids outside 0..<4000000") }
        let count = max(maxID + 1, config.vocabularySize)
        var tokens = [String?](repeating: nil, count: count)
        var types = [TokenizerVocabulary.TokenType](repeating: .normal, count: count)
        for (text, id, type) in entries {
            if let existing = tokens[id], existing != text {
                throw json.error("id \(id) names both '\(existing)' and '\(text)'")
            }
            tokens[id] = text
            if let type { types[id] = type }
        }
        for id in 0..<count where tokens[id] == nil || tokens[id] == "[PAD\(id)]" {
            tokens[id] = "[PAD\(id)]"
            types[id] = .unused
        }
        let texts = tokens.map { $0! }
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(count)
        for (i, t) in texts.enumerated() where ids[t] == nil { ids[t] = Int32(i) }

        let merges = try readMerges(model.object["merges"], json: json)
        let settings = try HFTokenizerConfig(folder: folder)
        func id(_ text: String?) -> Int32? { text.flatMap { ids[$0] } }

        var vocabulary: TokenizerVocabulary
        let preTokenizer = json.object["pre_tokenizer"] as? [String: Any]
        if Self.contains(type: "ByteLevel", in: preTokenizer) || Self.contains(type: "ByteLevel", in: json.object["decoder"]) {
            vocabulary = TokenizerVocabulary(model: .bytePairGPT2, preTokenizer: try preTokenizerName(preTokenizer, json: json),
                                             tokens: texts, tokenTypes: types, merges: merges)
        } else if try model.optionalBool("byte_fallback") == true {
            for (i, t) in texts.enumerated() where types[i] == .normal && Self.isByteToken(t) { types[i] = .byte }
            let unknown = id(try model.optionalString("unk_token") ?? settings.unknownToken)
            if let unknown, types[Int(unknown)] == .normal || types[Int(unknown)] == .control { types[Int(unknown)] = .unknown }
            vocabulary = TokenizerVocabulary(model: .sentencePiece, tokens: texts,
                                             scores: Self.scores(merges: merges, ids: ids, count: count),
                                             tokenTypes: types, unknownTokenID: unknown,
                                             addSpacePrefix: Self.prependsSpace(json.object))
        } else {
            throw json.error("the tokenizer is neither byte-level BPE (ByteLevel) nor SentencePiece-style BPE (byte_fallback)")
        }
        vocabulary.bosTokenID = id(settings.bosToken) ?? config.bosTokenID.map(Int32.init)
        vocabulary.eosTokenID = id(settings.eosToken) ?? config.eosTokenID.map(Int32.init)
        vocabulary.paddingTokenID = id(settings.padToken)
        let template = Self.postProcessorSpecials(json.object["post_processor"])
        vocabulary.addBOS = settings.addBOS ?? template.map { $0.first }
        vocabulary.addEOS = settings.addEOS ?? template.map { $0.last }
        vocabulary.chatTemplate = settings.chatTemplate
        return vocabulary
    }

    private func readMerges(_ value: Any?, json: JSONFields) throws -> [String] {
        guard let list = value as? [Any] else { return [] }
        return try list.enumerated().map { i, m in
            if let s = m as? String { return s }
            if let pair = m as? [String], pair.count == 2 { return pair[0] + " " + pair[1] }
            throw json.error("model.merges[\(i)] is neither \"a b\" nor [\"a\", \"b\"]")
        }
    }

    /// The llama.cpp pre-tokenizer name the split regex stands for.
    private func preTokenizerName(_ pre: [String: Any]?, json: JSONFields) throws -> String {
        var patterns: [String] = []
        Self.visit(pre) { node in
            if node["type"] as? String == "Split", let p = node["pattern"] as? [String: Any], let r = p["Regex"] as? String {
                patterns.append(r)
            }
        }
        guard let pattern = patterns.first else {
            var usesRegex = false
            Self.visit(pre) { if $0["type"] as? String == "ByteLevel", ($0["use_regex"] as? NSNumber)?.boolValue ?? true { usesRegex = true } }
            guard usesRegex else { throw json.error("a byte-level pre_tokenizer without a split regex is not supported") }
            return "gpt2"
        }
        for prefix in Self.contractionPrefixes where pattern.hasPrefix(prefix) {
            let rest = pattern.dropFirst(prefix.count)
            if let name = Self.splitPatterns.first(where: { $0.value == rest })?.key { return name }
        }
        throw json.error("pre_tokenizer split regex \(pattern.debugDescription) is not one QuantServe implements (qwen2, llama-bpe, gpt2)")
    }

    /// Depth-first over the JSON objects under `value`.
    static func visit(_ value: Any?, _ body: ([String: Any]) -> Void) {
        if let object = value as? [String: Any] {
            body(object)
            for v in object.values { visit(v, body) }
        } else if let list = value as? [Any] {
            for v in list { visit(v, body) }
        }
    }

    static func contains(type: String, in value: Any?) -> Bool {
        var found = false
        visit(value) { if $0["type"] as? String == type { found = true } }
        return found
    }

    static func isByteToken(_ t: String) -> Bool {
        t.utf8.count == 6 && t.hasPrefix("<0x") && t.hasSuffix(">") && UInt8(t.dropFirst(3).dropLast(), radix: 16) != nil
    }

    /// SentencePiece-style scores from merge ranks: a token made by merge r scores -r (the first merge making it);
    /// tokens no merge makes score below every merge.
    static func scores(merges: [String], ids: [String: Int32], count: Int) -> [Float] {
        var scores = [Float](repeating: -Float(merges.count + 1), count: count)
        var seen = [Bool](repeating: false, count: count)
        for (rank, merge) in merges.enumerated() {
            guard let space = merge.dropFirst().firstIndex(of: " ") else { continue }
            let joined = String(merge[..<space]) + String(merge[merge.index(after: space)...])
            if let id = ids[joined], !seen[Int(id)] {
                seen[Int(id)] = true
                scores[Int(id)] = -Float(rank)
            }
        }
        return scores
    }

    /// Whether a SentencePiece-style tokenizer puts `▁` before the text (Metaspace prepend, or a Prepend normalizer).
    static func prependsSpace(_ root: [String: Any]) -> Bool {
        var prepends = false
        visit(root["pre_tokenizer"]) { node in
            if node["type"] as? String == "Metaspace" {
                let scheme = node["prepend_scheme"] as? String ?? ((node["add_prefix_space"] as? NSNumber)?.boolValue == false ? "never" : "always")
                if scheme != "never" { prepends = true }
            }
        }
        visit(root["normalizer"]) { if $0["type"] as? String == "Prepend", $0["prepend"] as? String == "\u{2581}" { prepends = true } }
        return prepends
    }

    /// Whether the single-sequence template of a TemplateProcessing post-processor starts / ends with a special token.
    static func postProcessorSpecials(_ value: Any?) -> (first: Bool, last: Bool)? {
        var result: (Bool, Bool)?
        visit(value) { node in
            guard node["type"] as? String == "TemplateProcessing", let single = node["single"] as? [[String: Any]] else { return }
            result = (single.first?["SpecialToken"] != nil, single.count > 1 && single.last?["SpecialToken"] != nil)
        }
        if result == nil, value is [String: Any] { return (false, false) }
        return result
    }
}

/// `tokenizer_config.json` (optional) and `chat_template.jinja`: special tokens, BOS/EOS flags, chat template.
struct HFTokenizerConfig {
    var bosToken, eosToken, padToken, unknownToken: String?
    var addBOS, addEOS: Bool?
    var chatTemplate: String?

    init(folder: URL) throws {
        let path = folder.appendingPathComponent("tokenizer_config.json").path
        if FileManager.default.fileExists(atPath: path) {
            let json = try JSONFields(path: path, what: "")
            func token(_ key: String) throws -> String? {
                if let object = json.object[key] as? [String: Any] { return object["content"] as? String }
                return try json.optionalString(key)
            }
            bosToken = try token("bos_token")
            eosToken = try token("eos_token")
            padToken = try token("pad_token")
            unknownToken = try token("unk_token")
            addBOS = try json.optionalBool("add_bos_token")
            addEOS = try json.optionalBool("add_eos_token")
            if let list = json.object["chat_template"] as? [[String: Any]] {
                chatTemplate = list.first { $0["name"] as? String == "default" }?["template"] as? String
            } else {
                chatTemplate = try json.optionalString("chat_template")
            }
        }
        let jinja = folder.appendingPathComponent("chat_template.jinja").path
        if chatTemplate == nil, let data = FileManager.default.contents(atPath: jinja) {
            guard let text = String(data: data, encoding: .utf8) else { throw ModelFileError(path: jinja, "not UTF-8 text") }
            chatTemplate = text
        }
    }
}
