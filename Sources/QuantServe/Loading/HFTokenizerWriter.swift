import Foundation

/// Writes a vocabulary as Hugging Face tokenizer files: `tokenizer.json` (the tokenizers library's format, loadable by
/// `transformers` and `tokenizers`) and `tokenizer_config.json` (special tokens, BOS/EOS flags, chat template).
/// `HFTokenizerFiles` reads them back into the same vocabulary.
enum HFTokenizerWriter {
    static func files(vocabulary v: TokenizerVocabulary, tokenizer: any Tokenizer, contextLength: Int) throws -> [String: Data] {
        var root: [String: Any] = ["version": "1.0", "truncation": NSNull(), "padding": NSNull(), "normalizer": NSNull()]
        var vocab: [String: Int] = [:]
        for (i, t) in v.tokens.enumerated() where vocab[t] == nil { vocab[t] = i }
        var model: [String: Any] = ["type": "BPE", "dropout": NSNull(), "continuing_subword_prefix": NSNull(),
                                    "end_of_word_suffix": NSNull(), "vocab": vocab]
        switch v.model {
        case .bytePairGPT2:
            let configuration = try PreTokenizer.configuration(named: v.preTokenizer)
            let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false]
            switch configuration.preTokenizer {
            case .qwen2, .llama3:
                let name = configuration.preTokenizer == .qwen2 ? "qwen2" : "llama-bpe"
                let regex = HFTokenizerFiles.contractionPrefixes[0] + HFTokenizerFiles.splitPatterns[name]!
                root["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                    ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated", "invert": false],
                    byteLevel.merging(["use_regex": false]) { $1 },
                ]]
            case .gpt2:
                root["pre_tokenizer"] = byteLevel.merging(["use_regex": true]) { $1 }
            case .llamaCppDefault:
                throw TokenizerError.unsupportedPreTokenizer(name: v.preTokenizer ?? "default (none given)",
                                                            supported: ["qwen2", "llama-bpe", "gpt2"])
            }
            root["decoder"] = ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true]
            model["merges"] = v.merges.map(splitMerge)
            model.merge(["unk_token": NSNull(), "fuse_unk": false, "byte_fallback": false,
                         "ignore_merges": configuration.ignoreMerges]) { $1 }
        case .sentencePiece:
            root["pre_tokenizer"] = ["type": "Metaspace", "replacement": "\u{2581}",
                                     "prepend_scheme": v.addSpacePrefix ?? true ? "first" : "never", "split": false]
            root["decoder"] = ["type": "Sequence", "decoders": [
                ["type": "Replace", "pattern": ["String": "\u{2581}"], "content": " "],
                ["type": "ByteFallback"], ["type": "Fuse"], ["type": "Strip", "content": " ", "start": 1, "stop": 0],
            ]]
            model["merges"] = sentencePieceMerges(v, vocab: vocab)
            model.merge(["unk_token": v.unknownTokenID.map { v.tokens[Int($0)] } ?? NSNull(), "fuse_unk": true,
                         "byte_fallback": true, "ignore_merges": false]) { $1 }
        }
        root["model"] = model
        root["added_tokens"] = v.tokenTypes.enumerated().compactMap { i, type -> [String: Any]? in
            guard type == .control || type == .userDefined || type == .unknown else { return nil }
            return ["id": i, "content": v.tokens[i], "single_word": false, "lstrip": false, "rstrip": false,
                    "normalized": false, "special": type != .userDefined]
        }
        root["post_processor"] = postProcessor(tokenizer)

        func text(_ id: Int32?) -> Any { id.map { tokenizer.tokenText($0) } ?? NSNull() }
        var config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast",
            "add_bos_token": tokenizer.addsBOS, "add_eos_token": tokenizer.addsEOS,
            "bos_token": text(tokenizer.bosTokenID), "eos_token": text(tokenizer.eosTokenID),
            "pad_token": text(v.paddingTokenID), "unk_token": text(v.unknownTokenID),
            "model_max_length": contextLength, "clean_up_tokenization_spaces": false,
        ]
        if let template = v.chatTemplate { config["chat_template"] = template }
        return [
            "tokenizer.json": try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys]),
            "tokenizer_config.json": try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted]),
        ]
    }

    /// "a b" → ["a", "b"] (split at the first space after position 0, as llama.cpp reads merges).
    private static func splitMerge(_ m: String) -> [String] {
        guard let space = m.dropFirst().firstIndex(of: " ") else { return [m, ""] }
        return [String(m[..<space]), String(m[m.index(after: space)...])]
    }

    /// Merges for a SentencePiece vocabulary: every split of a normal token into two vocabulary pieces, ranked by the
    /// token's score (highest first), as the tokenizers library's SentencePiece converter derives them.
    private static func sentencePieceMerges(_ v: TokenizerVocabulary, vocab: [String: Int]) -> [[String]] {
        var merges: [(score: Float, left: Int, right: Int, pair: [String])] = []
        for (i, token) in v.tokens.enumerated() where v.tokenTypes[i] == .normal {
            let characters = Array(token)
            guard characters.count > 1 else { continue }
            for cut in 1..<characters.count {
                let left = String(characters[..<cut]), right = String(characters[cut...])
                if let l = vocab[left], let r = vocab[right] {
                    merges.append((v.scores.isEmpty ? -Float(i) : v.scores[i], l, r, [left, right]))
                }
            }
        }
        merges.sort { ($0.score, -$0.left, -$0.right) > ($1.score, -$1.left, -$1.right) }
        return merges.map(\.pair)
    }

    /// BOS / EOS around the text as the tokenizer adds them.
    private static func postProcessor(_ tokenizer: any Tokenizer) -> [String: Any] {
        var single: [[String: Any]] = [], pair: [[String: Any]] = []
        var specials: [String: Any] = [:]
        func special(_ id: Int32?, typeID: Int) -> [String: Any]? {
            guard let id else { return nil }
            let text = tokenizer.tokenText(id)
            specials[text] = ["id": text, "ids": [Int(id)], "tokens": [text]]
            return ["SpecialToken": ["id": text, "type_id": typeID]]
        }
        for (sequence, typeID) in [("A", 0), ("B", 1)] {
            var items: [[String: Any]] = []
            if tokenizer.addsBOS, let s = special(tokenizer.bosTokenID, typeID: typeID) { items.append(s) }
            items.append(["Sequence": ["id": sequence, "type_id": typeID]])
            if tokenizer.addsEOS, let s = special(tokenizer.eosTokenID, typeID: typeID) { items.append(s) }
            if sequence == "A" { single = items }
            pair += items
        }
        return ["type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials]
    }
}
