import XCTest
@testable import QuantServe

/// Byte-level BPE, pre-tokenizers, special tokens and the factory, on small vocabularies checked by hand.
final class TokenizerTests: XCTestCase {
    // MARK: GPT-2 byte table

    func testByteTableRoundTripsEveryByte() {
        let all = (0..<256).map { UInt8($0) }
        let text = ByteLevelEncoding.encode(all)
        XCTAssertEqual(text.unicodeScalars.count, 256)
        XCTAssertEqual(Set(text.unicodeScalars).count, 256)
        XCTAssertEqual(ByteLevelEncoding.decode(text), all)
        XCTAssertEqual(ByteLevelEncoding.encode([0x20]), "Ġ")
        XCTAssertEqual(ByteLevelEncoding.encode([0x0A]), "Ċ")
        XCTAssertEqual(ByteLevelEncoding.encode([0x09]), "ĉ")
        XCTAssertEqual(ByteLevelEncoding.encode(Array("Az~!".utf8)), "Az~!")
        XCTAssertEqual(ByteLevelEncoding.encode([0xAD]), "Ń") // soft hyphen, the last non-printable byte (U+0100 + 67)
        XCTAssertEqual(ByteLevelEncoding.decode("Ġhello"), Array(" hello".utf8))
        XCTAssertEqual(ByteLevelEncoding.encode(Array("é".utf8)), "Ã©")
    }

    // MARK: Pre-tokenizers (each expectation follows the regex by hand)

    func testQwen2PreTokenizerSplits() {
        let p = PreTokenizer.qwen2
        XCTAssertEqual(p.words("Hello world"), ["Hello", " world"])
        XCTAssertEqual(p.words("digits 1234 x"), ["digits", " ", "1", "2", "3", "4", " x"])
        XCTAssertEqual(p.words("I'm THEY'RE we'll"), ["I", "'m", " THEY", "'RE", " we", "'ll"])
        XCTAssertEqual(p.words("  two"), [" ", " two"])
        XCTAssertEqual(p.words("x   "), ["x", "   "])
        XCTAssertEqual(p.words("a\n\n b"), ["a", "\n\n", " b"])
        XCTAssertEqual(p.words("a \n  b"), ["a", " \n", " ", " b"])
        XCTAssertEqual(p.words("tabs\tand"), ["tabs", "\tand"])
        XCTAssertEqual(p.words("hi!!\n\nyo"), ["hi", "!!\n\n", "yo"])
        XCTAssertEqual(p.words("a + b;"), ["a", " +", " b", ";"])
        XCTAssertEqual(p.words("(x)"), ["(x", ")"])
        XCTAssertEqual(p.words("line\r\nnext"), ["line", "\r\n", "next"])
        // Code points, not graphemes: a combining accent is not a letter, and CR LF is two.
        XCTAssertEqual(p.words("e\u{301}t\u{E9}"), ["e", "\u{301}t\u{E9}"])
        XCTAssertEqual(p.words("中文，世界"), ["中文", "，世界"])
        XCTAssertEqual(p.words("🦙 a"), ["🦙", " a"])
        XCTAssertEqual(p.words("x\u{A0}\u{A0}y"), ["x", "\u{A0}", "\u{A0}y"]) // NBSP is \s
    }

    func testLlama3PreTokenizerGroupsThreeDigits() {
        XCTAssertEqual(PreTokenizer.llama3.words("1234567 8"), ["123", "456", "7", " ", "8"])
        XCTAssertEqual(PreTokenizer.llama3.words("x1234"), ["x", "123", "4"])
    }

    func testGPT2PreTokenizerSplits() {
        let p = PreTokenizer.gpt2
        XCTAssertEqual(p.words("Hello world"), ["Hello", " world"])
        XCTAssertEqual(p.words("I'm I'M"), ["I", "'m", " I", "'", "M"]) // case-sensitive contractions
        XCTAssertEqual(p.words("1234567 and 89"), ["1234567", " and", " 89"])
        XCTAssertEqual(p.words("  two  "), [" ", " two", "  "])
        XCTAssertEqual(p.words("a\n\nb"), ["a", "\n", "\n", "b"]) // no `[^\r\n\p{L}\p{N}]?` before letters
        XCTAssertEqual(p.words("a, b!?"), ["a", ",", " b", "!?"])
    }

    func testLlamaCppDefaultPreTokenizerCascade() {
        // `[\p{P}$+<=>^~|]+`, then GPT-2, then `\p{N}+`, then `[0-9]{3}`.
        XCTAssertEqual(PreTokenizer.llamaCppDefault.words("Hello, world 12345!"),
                       ["Hello", ",", " world", " ", "123", "45", "!"])
        XCTAssertEqual(PreTokenizer.llamaCppDefault.words("a+=b"), ["a", "+=", "b"])
    }

    func testPreTokenizerNamesFollowLlamaCpp() throws {
        XCTAssertEqual(try PreTokenizer.configuration(named: "qwen2").preTokenizer, .qwen2)
        XCTAssertEqual(try PreTokenizer.configuration(named: "llama-bpe"),
                       .init(preTokenizer: .llama3, ignoreMerges: true, addsBOSByDefault: true))
        XCTAssertEqual(try PreTokenizer.configuration(named: nil).preTokenizer, .llamaCppDefault)
        XCTAssertEqual(try PreTokenizer.configuration(named: "gpt-2").preTokenizer, .gpt2)
        XCTAssertThrowsError(try PreTokenizer.configuration(named: "tekken")) { error in
            guard case let .unsupportedPreTokenizer(name, supported)? = error as? TokenizerError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(name, "tekken")
            XCTAssertTrue(supported.contains("qwen2") && supported.contains("llama-bpe"))
            XCTAssertTrue("\(error)".contains("supported:"))
        }
    }

    // MARK: Byte-level BPE on a handmade vocabulary

    /// 256 byte tokens (ids 0…255 in GPT-2 character order of the bytes), then the given extra tokens.
    static func byteLevelVocabulary(extra: [(String, TokenizerVocabulary.TokenType)] = [], merges: [String],
                                    pre: String? = "qwen2") -> TokenizerVocabulary {
        let bytes = (0..<256).map { ByteLevelEncoding.encode([UInt8($0)]) }
        return TokenizerVocabulary(model: .bytePairGPT2, preTokenizer: pre, tokens: bytes + extra.map(\.0),
                                   tokenTypes: Array(repeating: .normal, count: 256) + extra.map(\.1),
                                   merges: merges, eosTokenID: nil)
    }

    func testByteLevelBPEMergesLowestRankFirst() throws {
        let v = Self.byteLevelVocabulary(
            extra: [("bc", .normal), ("ab", .normal), ("aa", .normal), ("hell", .normal), ("he", .normal),
                    ("ll", .normal), ("hello", .normal), ("Ġw", .normal)],
            merges: ["b c", "a b", "a a", "h e", "l l", "he ll", "hell o", "Ġ w"])
        let t = try makeTokenizer(vocabulary: v)
        let id = { (s: String) in t.tokenID(forText: s)! }
        XCTAssertEqual(t.encode("abc", addSpecial: false, parseSpecial: false), [id("a"), id("bc")])
        XCTAssertEqual(t.encode("aaa", addSpecial: false, parseSpecial: false), [id("aa"), id("a")])
        XCTAssertEqual(t.encode("hello wo", addSpecial: false, parseSpecial: false),
                       [id("hello"), id("Ġw"), id("o")])
        XCTAssertEqual(t.decode(t.encode("hello wo", addSpecial: false, parseSpecial: false)), "hello wo")
        XCTAssertEqual(t.tokenBytes(id("Ġw")), Array(" w".utf8))
        XCTAssertFalse(t.addsBOS)
    }

    func testIgnoreMergesKeepsWholeWordsForLlama3() throws {
        let extra: [(String, TokenizerVocabulary.TokenType)] = [("ab", .normal), ("abc", .normal)]
        let llama3 = try makeTokenizer(vocabulary: Self.byteLevelVocabulary(extra: extra, merges: ["a b"], pre: "llama-bpe"))
        let qwen2 = try makeTokenizer(vocabulary: Self.byteLevelVocabulary(extra: extra, merges: ["a b"], pre: "qwen2"))
        XCTAssertEqual(llama3.encode("abc", addSpecial: false, parseSpecial: false), [llama3.tokenID(forText: "abc")!])
        XCTAssertEqual(qwen2.encode("abc", addSpecial: false, parseSpecial: false),
                       [qwen2.tokenID(forText: "ab")!, qwen2.tokenID(forText: "c")!])
    }

    func testMergeWhoseResultIsNotATokenFallsBackToItsCharacters() throws {
        let t = try makeTokenizer(vocabulary: Self.byteLevelVocabulary(merges: ["x y"]))
        XCTAssertEqual(t.encode("xy", addSpecial: false, parseSpecial: false),
                       [t.tokenID(forText: "x")!, t.tokenID(forText: "y")!])
    }

    func testBadMergeLineThrows() {
        XCTAssertThrowsError(try makeTokenizer(vocabulary: Self.byteLevelVocabulary(merges: ["a b", "ab"]))) { error in
            XCTAssertEqual(error as? TokenizerError, .badMerge(index: 1, line: "ab"))
        }
    }

    // MARK: Special tokens

    func testControlTokensNeedParseSpecialUserDefinedDoNot() throws {
        let v = Self.byteLevelVocabulary(
            extra: [("<|im_start|>", .control), ("<|im_end|>", .control), ("<tool>", .userDefined),
                    ("<|im_start|>x", .control)],
            merges: ["a b"])
        let t = try makeTokenizer(vocabulary: v)
        let start = t.tokenID(forText: "<|im_start|>")!, end = t.tokenID(forText: "<|im_end|>")!
        let tool = t.tokenID(forText: "<tool>")!, longer = t.tokenID(forText: "<|im_start|>x")!
        XCTAssertEqual(t.encode("<|im_start|>a<|im_end|>", addSpecial: false, parseSpecial: true),
                       [start, t.tokenID(forText: "a")!, end])
        let plain = t.encode("<|im_end|>", addSpecial: false, parseSpecial: false)
        XCTAssertFalse(plain.contains(end))
        XCTAssertEqual(t.decode(plain), "<|im_end|>")
        XCTAssertEqual(t.encode("a<tool>b", addSpecial: false, parseSpecial: false),
                       [t.tokenID(forText: "a")!, tool, t.tokenID(forText: "b")!])
        // Longest first.
        XCTAssertEqual(t.encode("<|im_start|>xy", addSpecial: false, parseSpecial: true), [longer, t.tokenID(forText: "y")!])
        // Control tokens print nothing; user-defined ones print their text.
        XCTAssertEqual(t.tokenBytes(end), [])
        XCTAssertEqual(t.tokenBytes(end, renderSpecial: true), Array("<|im_end|>".utf8))
        XCTAssertEqual(t.tokenBytes(tool), Array("<tool>".utf8))
    }

    func testSegmentsParseSpecialTokensOnlyWhereAsked() throws {
        let v = Self.byteLevelVocabulary(extra: [("<|im_end|>", .control), ("ab", .normal)], merges: ["a b"])
        let t = try makeTokenizer(vocabulary: v)
        let end = t.tokenID(forText: "<|im_end|>")!
        let ids = t.encode([TextSegment("a", parseSpecial: false), TextSegment("b<|im_end|>", parseSpecial: false),
                            TextSegment("<|im_end|>", parseSpecial: true)], addSpecial: false)
        // "a" + "b" are one text (merged to "ab"); only the last segment's marker is the control token.
        XCTAssertEqual(ids.first, t.tokenID(forText: "ab"))
        XCTAssertEqual(ids.filter { $0 == end }.count, 1)
        XCTAssertEqual(ids.last, end)
    }

    func testEndOfGenerationTokensFollowLlamaCpp() throws {
        var v = Self.byteLevelVocabulary(
            extra: [("<|endoftext|>", .control), ("<|im_end|>", .normal), ("<|fim_pad|>", .control),
                    ("<|im_start|>", .control)],
            merges: ["a b"])
        v.eosTokenID = 256
        let t = try makeTokenizer(vocabulary: v)
        let imEnd = t.tokenID(forText: "<|im_end|>")!
        XCTAssertTrue(t.isEndOfGeneration(256))
        XCTAssertTrue(t.isEndOfGeneration(imEnd))
        XCTAssertTrue(t.isEndOfGeneration(t.tokenID(forText: "<|fim_pad|>")!))
        XCTAssertFalse(t.isEndOfGeneration(t.tokenID(forText: "<|im_start|>")!))
        XCTAssertFalse(t.isEndOfGeneration(t.tokenID(forText: "a")!))
        // A normal-typed "<|im_end|>" is treated as control, as llama.cpp does.
        XCTAssertTrue(t.isControl(imEnd))
        XCTAssertEqual(t.tokenBytes(imEnd), [])
        XCTAssertEqual(t.eotTokenID, imEnd) // "<|im_end|>" comes before "<|endoftext|>" in llama.cpp's list
    }

    func testBOSDefaultsPerPreTokenizer() throws {
        var v = Self.byteLevelVocabulary(merges: ["a b"], pre: "llama-bpe")
        v.bosTokenID = 97
        let llama3 = try makeTokenizer(vocabulary: v)
        XCTAssertTrue(llama3.addsBOS)
        XCTAssertEqual(llama3.encode("b", addSpecial: true, parseSpecial: false), [97, 98])
        v.addBOS = false
        XCTAssertFalse(try makeTokenizer(vocabulary: v).addsBOS)
        v.preTokenizer = "qwen2"
        v.addBOS = nil
        XCTAssertFalse(try makeTokenizer(vocabulary: v).addsBOS)
    }
}
