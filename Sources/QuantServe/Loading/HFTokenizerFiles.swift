import Foundation
import QuantServeJSON

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
        func fail(_ problem: String) -> ModelFileError { ModelFileError(path: path, problem) }
        guard FileManager.default.fileExists(atPath: path) else {
            throw fail("missing (the tokenizer, in the Hugging Face tokenizers format)")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot read") }
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch { throw fail("\(error)") }
        guard let model = root["model"], model.object != nil else { throw fail("'model' is missing") }
        let type = model["type"]?.string ?? "BPE"
        guard type == "BPE" else { throw fail("model.type '\(type)' is not supported (only BPE)") }
        guard let vocab = model["vocab"]?.object else { throw fail("model.vocab must be an object") }

        // Ids: the vocabulary, then the added tokens (which may extend it or repeat entries of it).
        var entries: [(String, Int, TokenizerVocabulary.TokenType?)] = []
        entries.reserveCapacity(vocab.count)
        for (text, value) in vocab {
            guard let id = value.int else { throw fail("model.vocab['\(text)'] is not an id") }
            entries.append((text, id, nil))
        }
        for added in root["added_tokens"]?.array ?? [] {
            guard let id = added["id"]?.int, let content = added["content"]?.string else {
                throw fail("an entry of added_tokens lacks 'id' or 'content'")
            }
            entries.append((content, id, added["special"]?.bool == true ? .control : .userDefined))
        }
        let maxID = entries.map(\.1).max() ?? -1
        guard maxID < 4_000_000, entries.allSatisfy({ $0.1 >= 0 }) else { throw fail("token ids outside 0..<4000000") }
        let count = max(maxID + 1, config.vocabularySize)
        var tokens = [String?](repeating: nil, count: count)
        var types = [TokenizerVocabulary.TokenType](repeating: .normal, count: count)
        for (text, id, type) in entries {
            if let existing = tokens[id], existing != text { throw fail("id \(id) names both '\(existing)' and '\(text)'") }
            tokens[id] = text
            if let type { types[id] = type }
        }
        for id in 0..<count where tokens[id] == nil || tokens[id]!.hasPrefix("[PAD") && tokens[id] == "[PAD\(id)]" {
            tokens[id] = "[PAD\(id)]"
            types[id] = .unused
        }
        let texts = tokens.map { $0! }

        let merges = try (model["merges"]?.array ?? []).enumerated().map { i, m in
            if let s = m.string { return s }
            if let pair = m.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string { return a + " " + b }
            throw fail("model.merges[\(i)] is neither \"a b\" nor [\"a\", \"b\"]")
        }
        let settings = try HFTokenizerConfig(folder: folder)
        // A few look-ups: a scan, not a 150k-entry dictionary (hashing non-ASCII strings is slow).
        func id(_ text: String?) -> Int32? { text.flatMap { t in texts.firstIndex(of: t).map(Int32.init) } }

        var vocabulary: TokenizerVocabulary
        let preTokenizer = root["pre_tokenizer"] ?? .null
        if Self.contains(type: "ByteLevel", in: preTokenizer) || Self.contains(type: "ByteLevel", in: root["decoder"] ?? .null) {
            vocabulary = TokenizerVocabulary(model: .bytePairGPT2, preTokenizer: try Self.preTokenizerName(preTokenizer, fail: fail),
                                             tokens: texts, tokenTypes: types, merges: merges)
        } else if model["byte_fallback"]?.bool == true {
            for (i, t) in texts.enumerated() where types[i] == .normal && Self.isByteToken(t) { types[i] = .byte }
            let unknown = id(model["unk_token"]?.string ?? settings.unknownToken)
            if let unknown, types[Int(unknown)] == .normal || types[Int(unknown)] == .control { types[Int(unknown)] = .unknown }
            vocabulary = TokenizerVocabulary(model: .sentencePiece, tokens: texts,
                                             scores: Self.scores(merges: merges, texts: texts),
                                             tokenTypes: types, unknownTokenID: unknown,
                                             addSpacePrefix: Self.prependsSpace(root))
        } else {
            throw fail("the tokenizer is neither byte-level BPE (ByteLevel) nor SentencePiece-style BPE (byte_fallback)")
        }
        vocabulary.bosTokenID = id(settings.bosToken) ?? config.bosTokenID.flatMap { Int32(exactly: $0) }
        vocabulary.eosTokenID = id(settings.eosToken) ?? config.eosTokenID.flatMap { Int32(exactly: $0) }
        vocabulary.paddingTokenID = id(settings.padToken)
        let template = Self.postProcessorSpecials(root["post_processor"] ?? .null)
        vocabulary.addBOS = settings.addBOS ?? template.map { $0.first }
        vocabulary.addEOS = settings.addEOS ?? template.map { $0.last }
        vocabulary.chatTemplate = settings.chatTemplate
        return vocabulary
    }

    /// The llama.cpp pre-tokenizer name the split regex stands for.
    private static func preTokenizerName(_ pre: JSONValue, fail: (String) -> ModelFileError) throws -> String {
        var patterns: [String] = []
        pre.visitObjects { node in
            if node["type"]?.string == "Split", let r = node["pattern"]?["Regex"]?.string { patterns.append(r) }
        }
        guard let pattern = patterns.first else {
            var usesRegex = false
            pre.visitObjects { if $0["type"]?.string == "ByteLevel", $0["use_regex"]?.bool ?? true { usesRegex = true } }
            guard usesRegex else { throw fail("a byte-level pre_tokenizer without a split regex is not supported") }
            return "gpt2"
        }
        for prefix in contractionPrefixes where pattern.hasPrefix(prefix) {
            let rest = pattern.dropFirst(prefix.count)
            if let name = splitPatterns.first(where: { $0.value == rest })?.key { return name }
        }
        throw fail("pre_tokenizer split regex \(pattern.debugDescription) is not one QuantServe implements (qwen2, llama-bpe, gpt2)")
    }

    static func contains(type: String, in value: JSONValue) -> Bool {
        var found = false
        value.visitObjects { if $0["type"]?.string == type { found = true } }
        return found
    }

    static func isByteToken(_ t: String) -> Bool {
        t.utf8.count == 6 && t.hasPrefix("<0x") && t.hasSuffix(">") && UInt8(t.dropFirst(3).dropLast(), radix: 16) != nil
    }

    /// SentencePiece-style scores from merge ranks: a token made by merge r scores -r (the first merge making it);
    /// tokens no merge makes score below every merge.
    static func scores(merges: [String], texts: [String]) -> [Float] {
        let count = texts.count
        var ids: [String: Int32] = [:]
        for (i, t) in texts.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
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
    static func prependsSpace(_ root: JSONValue) -> Bool {
        var prepends = false
        (root["pre_tokenizer"] ?? .null).visitObjects { node in
            if node["type"]?.string == "Metaspace" {
                let scheme = node["prepend_scheme"]?.string ?? (node["add_prefix_space"]?.bool == false ? "never" : "always")
                if scheme != "never" { prepends = true }
            }
        }
        (root["normalizer"] ?? .null).visitObjects {
            if $0["type"]?.string == "Prepend", $0["prepend"]?.string == "\u{2581}" { prepends = true }
        }
        return prepends
    }

    /// Whether the single-sequence template of a TemplateProcessing post-processor starts / ends with a special token;
    /// (false, false) for another post-processor, nil for none.
    static func postProcessorSpecials(_ value: JSONValue) -> (first: Bool, last: Bool)? {
        var result: (Bool, Bool)?
        value.visitObjects { node in
            guard node["type"]?.string == "TemplateProcessing", let single = node["single"]?.array else { return }
            result = (single.first?["SpecialToken"] != nil, single.count > 1 && single.last?["SpecialToken"] != nil)
        }
        if result == nil, value.object != nil { return (false, false) }
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
