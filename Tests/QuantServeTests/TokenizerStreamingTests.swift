import XCTest
@testable import QuantServe

final class TokenizerStreamingTests: XCTestCase {
    /// A byte-level vocabulary: the 256 byte tokens plus a control token.
    func makeByteTokenizer() throws -> any Tokenizer {
        try makeTokenizer(vocabulary: TokenizerTests.byteLevelVocabulary(extra: [("<|im_end|>", .control)],
                                                                           merges: ["a b"]))
    }

    func testSplitEmojiIsHeldBackUntilComplete() throws {
        let t = try makeByteTokenizer()
        var d = StreamingDetokenizer(tokenizer: t)
        let llama = Array("🦙".utf8) // F0 9F A6 99
        XCTAssertEqual(d.append(t.tokenID(forText: ByteLevelEncoding.encode([0x41]))!), "A")
        XCTAssertEqual(d.append(Int32(llama[0])), "")
        XCTAssertEqual(d.append(Int32(llama[1])), "")
        XCTAssertEqual(d.append(Int32(llama[2])), "")
        XCTAssertEqual(d.pendingByteCount, 3)
        XCTAssertEqual(d.append(Int32(llama[3])), "🦙")
        XCTAssertEqual(d.pendingByteCount, 0)
        XCTAssertEqual(d.flush(), "")
    }

    func testFlushReturnsWhatIsLeftAsReplacementCharacters() throws {
        let t = try makeByteTokenizer()
        var d = StreamingDetokenizer(tokenizer: t)
        XCTAssertEqual(d.append(0xE2), "")
        XCTAssertEqual(d.append(0x82), "")
        XCTAssertEqual(d.flush(), "\u{FFFD}")
        XCTAssertEqual(d.flush(), "")
    }

    func testMalformedBytesAreNotHeldBack() throws {
        let t = try makeByteTokenizer()
        var d = StreamingDetokenizer(tokenizer: t)
        XCTAssertEqual(d.append(0x80), "\u{FFFD}") // a lone continuation byte can never complete
        XCTAssertEqual(d.append(0xC3), "")
        XCTAssertEqual(d.append(0x41), "\u{FFFD}A") // the lead byte was not followed by a continuation
    }

    func testControlTokensPrintNothing() throws {
        let t = try makeByteTokenizer()
        var d = StreamingDetokenizer(tokenizer: t)
        XCTAssertEqual(d.append(0x68), "h")
        XCTAssertEqual(d.append(t.tokenID(forText: "<|im_end|>")!), "")
        XCTAssertEqual(d.append(0x69), "i")
    }

    func testStreamingMatchesDecodeOnMixedText() throws {
        let t = try makeByteTokenizer()
        let text = "héllo 世界 👨‍👩‍👧 done"
        var d = StreamingDetokenizer(tokenizer: t)
        var out = ""
        for id in t.encode(text, addSpecial: false, parseSpecial: false) { out += d.append(id) }
        out += d.flush()
        XCTAssertEqual(out, text)
    }

    func testCompletePrefixLength() {
        XCTAssertEqual(StreamingDetokenizer.completePrefixLength([]), 0)
        XCTAssertEqual(StreamingDetokenizer.completePrefixLength([0x41, 0xF0, 0x9F]), 1)
        XCTAssertEqual(StreamingDetokenizer.completePrefixLength([0xC3, 0xA9]), 2)
        XCTAssertEqual(StreamingDetokenizer.completePrefixLength([0xC3]), 0)
        XCTAssertEqual(StreamingDetokenizer.completePrefixLength([0xE2, 0x82, 0xAC, 0xE2]), 3)
    }
}
