import XCTest
@testable import QuantServe

/// Tokenization of real vocabularies (read from GGUF files) against llama.cpp's, from Fixtures/*.json.
final class TokenizerGoldenTests: XCTestCase {
    /// The parts of a fixture this file checks (the generate entries carry their prompt's `parse_special`).
    struct Reference: Decodable {
        struct Prompt: Decodable {
            let prompt: String
            let parse_special: Bool
            let prompt_ids: [Int32]
        }
        let tokenize: [TokenizeCase]
        let generate: [Prompt]
    }

    private func check(fixture: String, ggufPath: () throws -> String) throws {
        let reference: Reference = try Fixtures.json(fixture)
        let tokenizer = try makeTokenizer(vocabulary: try GGUFFile(path: try ggufPath()).tokenizerVocabulary())
        XCTAssertFalse(reference.tokenize.isEmpty)
        for c in reference.tokenize {
            let ids = tokenizer.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special)
            XCTAssertEqual(ids, c.ids, "\(fixture): \(c.text.debugDescription) add_special=\(c.add_special) "
                           + "parse_special=\(c.parse_special)")
            // Without special tokens, decoding gives the text back (SentencePiece: after the "▁" it puts in front, which
            // it also puts after a user-defined token, so those are left out).
            let spm = tokenizer is SentencePieceTokenizer
            if !c.parse_special && !c.add_special
                && !(spm && ids.contains { tokenizer.attributes(of: $0).contains(.userDefined) }) {
                let prefix = spm && !c.text.isEmpty ? " " : ""
                XCTAssertEqual(tokenizer.decode(ids), prefix + c.text, "\(fixture): decode \(c.text.debugDescription)")
            }
        }
        for g in reference.generate {
            XCTAssertEqual(tokenizer.encode(g.prompt, addSpecial: true, parseSpecial: g.parse_special), g.prompt_ids,
                           "\(fixture): prompt \(g.prompt.debugDescription)")
        }
    }

    func testTinyLlamaSentencePiece() throws {
        try check(fixture: "tiny-llama.json") { try Fixtures.path("tiny-llama.gguf") }
    }

    func testTinyQwen2ByteLevelBPE() throws {
        try check(fixture: "tiny-qwen2.json") { try Fixtures.path("tiny-qwen2.gguf") }
    }

    func testQwen25CoderVocabulary() throws {
        try check(fixture: "qwen2.5-coder-0.5b.json") { try Fixtures.defaultModelPath() }
    }

    func testQwen25CoderSpecialTokensAndDecoding() throws {
        let tokenizer = try makeTokenizer(vocabulary: try GGUFFile(path: try Fixtures.defaultModelPath()).tokenizerVocabulary())
        XCTAssertEqual(tokenizer.vocabularySize, 151_936)
        XCTAssertFalse(tokenizer.addsBOS)
        XCTAssertEqual(tokenizer.eosTokenID, 151_645)
        // llama.cpp's end-of-generation set for Qwen2.5 (llama-cpp-python 0.3.36 lists the same six): <|endoftext|>
        // <|im_end|> <|fim_pad|> <|repo_name|> <|file_sep|>, and "</s>" (128247, a normal token llama.cpp makes control).
        XCTAssertEqual(tokenizer.endOfGenerationIDs, [128_247, 151_643, 151_645, 151_662, 151_663, 151_664])
        XCTAssertTrue(tokenizer.isControl(128_247))
        XCTAssertEqual(tokenizer.encode("a </s> b", addSpecial: false, parseSpecial: true), [64, 220, 128_247, 293])
        XCTAssertEqual(tokenizer.tokenBytes(151_645), [])
        XCTAssertEqual(tokenizer.tokenBytes(151_657), Array("<tool_call>".utf8))
        let text = "def f(x):\n    return x ** 2  # ünïcödé 中文 🦙\n"
        XCTAssertEqual(tokenizer.decode(tokenizer.encode(text, addSpecial: false, parseSpecial: false)), text)

        let template = try tokenizer.makeChatTemplate()
        XCTAssertEqual(template.family, .chatML)
        XCTAssertEqual(template.defaultSystemPrompt, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        let ids = try tokenizer.encodeChat(messages: [ChatMessage(role: "user", content: "Hello")], template: template)
        XCTAssertEqual(ids.prefix(3), [151_644, 8948, 198]) // <|im_start|> system \n
        XCTAssertEqual(Array(ids.suffix(3)), [151_644, 77091, 198]) // <|im_start|> assistant \n
    }

    /// The other pre-tokenizers, run on the Qwen2.5 vocabulary with `tokenizer.ggml.pre` replaced. The ids are
    /// llama.cpp's (llama-cpp-python 0.3.36, vocab_only) for a copy of the model's metadata with the same
    /// replacement: readable strings with `add_special` (llama-bpe adds BOS by default), random ones without.
    func testOtherPreTokenizersOnTheQwenVocabulary() throws {
        let base = try GGUFFile(path: try Fixtures.defaultModelPath()).tokenizerVocabulary()
        let cases: [(pre: String, text: String, ids: [Int32])] = [
        ("llama-bpe", "Numbers 1234567 and 3.14159, I'M sure they'RE here!\n\n  ok",
         [151643, 27237, 220, 16, 17, 18, 19, 20, 21, 22, 323, 220, 18, 13, 16, 19, 16, 20, 24, 11, 358, 27603, 2704, 807, 94153, 1588, 2219, 220, 5394]),
        ("gpt-2", "Numbers 1234567 and 3.14159, I'M sure they'RE here!\n\n  ok",
         [27237, 220, 16, 17, 18, 19, 20, 21, 22, 323, 220, 18, 13, 16, 19, 16, 20, 24, 11, 358, 6, 44, 2704, 807, 6, 787, 1588, 0, 271, 220, 5394]),
        ("gpt-2", "def f(x):\n    return x**2  # \u{FC}n\u{EF}c\u{F6}d\u{E9} \u{4E2D}\u{6587} \u{1F999}\n",
         [750, 282, 7, 87, 1648, 198, 262, 470, 856, 334, 17, 220, 671, 10489, 77, 37572, 66, 2956, 128505, 72858, 16744, 11162, 99, 247, 198]),
        ("default", "def f(x):\n    return x**2  # \u{FC}n\u{EF}c\u{F6}d\u{E9} \u{4E2D}\u{6587} \u{1F999}\n",
         [750, 282, 7, 87, 1648, 198, 262, 470, 856, 334, 17, 256, 2, 10489, 77, 37572, 66, 2956, 128505, 72858, 16744, 11162, 99, 247, 198]),
        ("llama-bpe", "\u{4E2D}TnaZ\u{85}OGF\u{1F999}1d/fh)E't\u{306E}l\u{416}P\u{1F600}(+na\"B\n,o\u{436}  y&mdfo'D oY Q 0p9eroj    uFN\u{306E}dcc\n",
         [15946, 51, 3376, 57, 126, 227, 12223, 37, 149955, 16, 67, 6663, 71, 8, 36, 944, 15767, 75, 132042, 47, 141334, 40938, 3376, 63590, 198, 49218, 16964, 220, 379, 5, 2277, 824, 27705, 297, 56, 1207, 220, 15, 79, 24, 2328, 73, 262, 575, 41604, 15767, 86964, 198]),
        ("llama-bpe", "q$PI|I[S   Xi=NNC['re6EVLS</tool_call>TI\u{6587}2\"ELJ&CUET\r",
         [80, 3, 1893, 91, 40, 42474, 256, 42426, 28, 9745, 34, 677, 265, 21, 46010, 7268, 151658, 26614, 16744, 17, 1, 2749, 41, 5, 16799, 1348, 201]),
        ("gpt-2", "q\u{20AC};\u{1C5}zi\u{308}\u{1C5}.EKe n6b\u{1F600}IP\n\rCf 8\u{306E}qkzn\u{D55C}\u{2014}8]\u{201D}\n\u{2026}\u{306E}f@'t8v oEf8YY2\u{416}1\tBH",
         [80, 15056, 26, 131, 227, 8345, 136, 230, 131, 227, 13, 36, 6608, 308, 21, 65, 141334, 3298, 198, 201, 34, 69, 220, 23, 15767, 80, 74, 20308, 23573, 2293, 23, 60, 854, 198, 1940, 15767, 69, 31, 6, 83, 23, 85, 297, 79686, 23, 10060, 17, 132042, 16, 197, 97151]),
        ("gpt-2", "L\r\n/2\u{216B}PwK\\N8~BZ\n[6<o\rAq\u{1C5}D>Xq ''DKQ$D\u{6587}wM`\u{85}T5c'llY v",
         [43, 201, 198, 14, 17, 70467, 104, 47, 86, 42, 59, 45, 23, 93, 33, 57, 198, 58, 21, 27, 78, 201, 32, 80, 131, 227, 35, 29, 55, 80, 3355, 18301, 48, 3, 35, 16744, 86, 44, 63, 126, 227, 51, 20, 66, 3278, 56, 348]),
        ("default", "\u{D55C}\u{663} \n~ii~.%hFOt\u{1F999} 'VEW\u{1C5}#q7ix4JT6iW",
         [23573, 149, 96, 715, 93, 3808, 93, 22445, 71, 3788, 83, 149955, 220, 6, 4491, 54, 131, 227, 2, 80, 22, 941, 19, 81181, 21, 72, 54]),
        ("default", "\u{4E2D}C 7zd# z zYF(i('s1\"\\\\SXgVZ4K  e\u{B2}GsJN'll 'D\u{2028}x",
         [15946, 34, 220, 22, 48655, 2, 1147, 1147, 56, 37, 7, 72, 492, 82, 16, 1, 3422, 90488, 70, 53, 57, 19, 42, 220, 384, 29456, 81152, 41, 45, 6, 654, 220, 6, 35, 378, 101, 87]),
        ]
        var tokenizers: [String: any Tokenizer] = [:]
        for (i, c) in cases.enumerated() {
            if tokenizers[c.pre] == nil {
                var v = base
                v.preTokenizer = c.pre
                v.addBOS = nil
                tokenizers[c.pre] = try makeTokenizer(vocabulary: v)
            }
            let tokenizer = try XCTUnwrap(tokenizers[c.pre])
            let addSpecial = i < 4 // the readable ones
            XCTAssertEqual(tokenizer.encode(c.text, addSpecial: addSpecial, parseSpecial: false), c.ids,
                           "\(c.pre): \(c.text.debugDescription)")
        }
    }

    /// Building from a 151k vocabulary with 151k merges, and encoding 10k characters, must be fast.
    func testQwen25CoderPerformance() throws {
        let vocabulary = try GGUFFile(path: try Fixtures.defaultModelPath()).tokenizerVocabulary()
        var start = Date()
        let tokenizer = try makeTokenizer(vocabulary: vocabulary)
        let build = Date().timeIntervalSince(start)

        let paragraph = "The quick brown fox jumps over the lazy dog; 1234567 × 3.14 = ?! Ünïcode 中文 🦙\n"
            + "    def f(x): return [y ** 2 for y in range(x) if y % 3 == 0]\n"
        var text = ""
        while text.count < 10_000 { text += paragraph }
        _ = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
        start = Date()
        let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
        let encode = Date().timeIntervalSince(start)
        let long = String(repeating: "a", count: 10_000) + String(repeating: " ", count: 10_000)
        start = Date()
        let longIDs = tokenizer.encode(long, addSpecial: false, parseSpecial: false)
        let encodeLong = Date().timeIntervalSince(start)
        print(String(format: "tokenizer: build %.0f ms, encode %d chars → %d tokens in %.2f ms, "
                     + "one 10k-letter word + 10k spaces in %.2f ms", build * 1000, text.count, ids.count,
                     encode * 1000, encodeLong * 1000))
        XCTAssertEqual(tokenizer.decode(longIDs), long)
        XCTAssertLessThan(build, 1.0)
        XCTAssertLessThan(encode, 0.05)
        XCTAssertLessThan(encodeLong, 0.1)
    }
}
