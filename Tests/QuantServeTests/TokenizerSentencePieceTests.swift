import XCTest
@testable import QuantServe

/// SentencePiece BPE on a handmade vocabulary, every expectation worked out by hand.
final class TokenizerSentencePieceTests: XCTestCase {
    /// `<unk> <s> </s>`, the 256 byte tokens, then `pieces` with their scores.
    static func vocabulary(_ pieces: [(String, Float)], extra: [(String, TokenizerVocabulary.TokenType)] = [])
        -> TokenizerVocabulary
    {
        let bytes = (0..<256).map { String(format: "<0x%02X>", $0) }
        let tokens = ["<unk>", "<s>", "</s>"] + bytes + pieces.map(\.0) + extra.map(\.0)
        let types: [TokenizerVocabulary.TokenType] = [.unknown, .control, .control]
            + Array(repeating: .byte, count: 256) + Array(repeating: .normal, count: pieces.count) + extra.map(\.1)
        let scores = Array(repeating: Float(0), count: 259) + pieces.map(\.1) + Array(repeating: 0, count: extra.count)
        return TokenizerVocabulary(model: .sentencePiece, tokens: tokens, scores: scores, tokenTypes: types,
                                   bosTokenID: 1, eosTokenID: 2, unknownTokenID: 0)
    }

    static let pieces: [(String, Float)] = [
        ("▁", -10), ("h", -10), ("e", -10), ("l", -10), ("o", -10), ("w", -10),
        ("he", -1), ("ll", -2), ("hell", -3), ("hello", -4), ("▁hello", -5), ("▁w", -6), ("wo", -0.5),
    ]

    func testHighestScoringPairMergesFirst() throws {
        let t = try makeTokenizer(vocabulary: Self.vocabulary(Self.pieces))
        let id = { (s: String) in t.tokenID(forText: s)! }
        // ▁ h e l l o: he (-1) → ll (-2) → hell (-3) → hello (-4) → ▁hello (-5).
        XCTAssertEqual(t.encode("hello", addSpecial: false, parseSpecial: false), [id("▁hello")])
        XCTAssertEqual(t.encode("hello", addSpecial: true, parseSpecial: false), [1, id("▁hello")])
        // "▁wo": wo (-0.5) beats ▁w (-6), and ▁wo is not a token.
        XCTAssertEqual(t.encode("wo", addSpecial: false, parseSpecial: false), [id("▁"), id("wo")])
        XCTAssertEqual(t.encode("hello hello", addSpecial: false, parseSpecial: false), [id("▁hello"), id("▁hello")])
    }

    func testGreedyMergesCanMissALongerPiece() throws {
        // With ▁he (-0.5) present, ▁ + he wins before he + ll, and ▁hello is never reached.
        let t = try makeTokenizer(vocabulary: Self.vocabulary(Self.pieces + [("▁he", -0.5)]))
        let id = { (s: String) in t.tokenID(forText: s)! }
        XCTAssertEqual(t.encode("hello", addSpecial: false, parseSpecial: false), [id("▁he"), id("ll"), id("o")])
    }

    func testTiesGoToTheLeftmostPair() throws {
        let t = try makeTokenizer(vocabulary: Self.vocabulary([("▁", -10), ("a", -10), ("aa", -1)]))
        let id = { (s: String) in t.tokenID(forText: s)! }
        XCTAssertEqual(t.encode("aaa", addSpecial: false, parseSpecial: false), [id("▁"), id("aa"), id("a")])
    }

    func testUnknownCharactersFallBackToByteTokens() throws {
        let t = try makeTokenizer(vocabulary: Self.vocabulary(Self.pieces))
        let id = { (s: String) in t.tokenID(forText: s)! }
        // "i" and "é" (C3 A9) are not pieces.
        XCTAssertEqual(t.encode("hi é", addSpecial: false, parseSpecial: false),
                       [id("▁"), id("h"), id("<0x69>"), id("▁"), id("<0xC3>"), id("<0xA9>")])
        XCTAssertEqual(t.decode(t.encode("hi é", addSpecial: false, parseSpecial: false)), " hi é")
    }

    func testSpacePrefixAtTheStartAndAfterSpecialTokens() throws {
        let t = try makeTokenizer(vocabulary: Self.vocabulary(Self.pieces, extra: [("<tool>", .userDefined)]))
        let id = { (s: String) in t.tokenID(forText: s)! }
        XCTAssertEqual(t.encode("<s>hello", addSpecial: false, parseSpecial: true), [1, id("▁hello")])
        XCTAssertEqual(t.encode("hello<tool>hello", addSpecial: false, parseSpecial: false),
                       [id("▁hello"), id("<tool>"), id("▁hello")])
        // Without special parsing "<s>" is text: ▁ < s >.
        XCTAssertEqual(t.encode("<s>", addSpecial: false, parseSpecial: false),
                       [id("▁"), id("<0x3C>"), id("<0x73>"), id("<0x3E>")])
        XCTAssertEqual(t.encode("", addSpecial: true, parseSpecial: false), [1])
        XCTAssertEqual(t.encode("", addSpecial: false, parseSpecial: false), [])

        var v = Self.vocabulary(Self.pieces)
        v.addSpacePrefix = false
        let noPrefix = try makeTokenizer(vocabulary: v)
        XCTAssertEqual(noPrefix.encode("hello", addSpecial: false, parseSpecial: false), [id("hello")])
    }

    func testTokenBytes() throws {
        let t = try makeTokenizer(vocabulary: Self.vocabulary(Self.pieces, extra: [("<tool>", .userDefined)]))
        XCTAssertEqual(t.tokenBytes(t.tokenID(forText: "▁hello")!), Array(" hello".utf8))
        XCTAssertEqual(t.tokenBytes(t.tokenID(forText: "<0x0A>")!), [0x0A])
        XCTAssertEqual(t.tokenBytes(t.tokenID(forText: "<0xE2>")!), [0xE2])
        XCTAssertEqual(t.tokenBytes(1), [])
        XCTAssertEqual(t.tokenBytes(0), []) // <unk>
        XCTAssertEqual(t.tokenBytes(t.tokenID(forText: "<tool>")!), Array("<tool>".utf8))
        XCTAssertEqual(t.tokenBytes(-1), [])
        XCTAssertEqual(t.tokenBytes(Int32(t.vocabularySize)), [])
        XCTAssertTrue(t.addsBOS)
        XCTAssertFalse(t.addsEOS)
        XCTAssertTrue(t.isEndOfGeneration(2))
        XCTAssertEqual(t.endOfGenerationIDs, [2])
    }
}
