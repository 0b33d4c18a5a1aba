/// What every tokenizer model shares: the token strings and their lookup table, the special tokens, and the
/// splitting of text on special-token strings.
struct TokenizerCore: Sendable {
    let tokens: [String]
    /// Token text → id, for the stored texts.
    let table: ByteStringTable
    let specials: SpecialTokens
    let splitter: SpecialTokenSplitter
    let chatTemplate: String?

    init(vocabulary: TokenizerVocabulary, addsBOSByDefault: Bool) throws(TokenizerError) {
        tokens = vocabulary.tokens
        table = ByteStringTable(vocabulary.tokens)
        specials = try SpecialTokens(vocabulary: vocabulary, table: table, addsBOSByDefault: addsBOSByDefault)
        splitter = SpecialTokenSplitter(table: table, attributes: specials.attributes)
        chatTemplate = vocabulary.chatTemplate
    }

    @inline(__always) func isValid(_ id: Int32) -> Bool { id >= 0 && Int(id) < tokens.count }

    /// Parses a byte token's text, `<0xXX>`.
    static func byteValue(ofByteToken text: String) -> UInt8? {
        let utf8 = Array(text.utf8)
        guard utf8.count == 6, utf8[0] == 0x3C, utf8[1] == 0x30, utf8[2] == 0x78, utf8[5] == 0x3E else { return nil }
        return UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
    }
}

/// The model-specific part of a tokenizer; everything else of `Tokenizer` comes from `core`.
protocol CoreBackedTokenizer: Tokenizer {
    var core: TokenizerCore { get }
    /// Tokenizes ordinary text `bytes[range]` (no special tokens in it). `afterSpecial` is true at the start of the
    /// text and right after a special token.
    func encodeText(_ bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>, afterSpecial: Bool, into output: inout [Int32])
    /// The bytes of a normal (not special, not byte) token.
    func normalTokenBytes(_ id: Int) -> [UInt8]
}

extension CoreBackedTokenizer {
    var vocabularySize: Int { core.tokens.count }
    var bosTokenID: Int32? { core.specials.bos }
    var eosTokenID: Int32? { core.specials.eos }
    var eotTokenID: Int32? { core.specials.eot }
    var addsBOS: Bool { core.specials.addBOS }
    var addsEOS: Bool { core.specials.addEOS }
    var endOfGenerationIDs: Set<Int32> { core.specials.endOfGeneration }
    var chatTemplateSource: String? { core.chatTemplate }

    /// Describes the special tokens for `summary`.
    var specialTokensSummary: String {
        let s = core.specials
        func describe(_ name: String, _ id: Int32?) -> String? {
            id.map { "\(name) \($0) \(core.tokens[Int($0)].debugDescription)" }
        }
        let parts = [describe("BOS", s.bos).map { $0 + (s.addBOS ? " (added)" : " (not added)") },
                     describe("EOS", s.eos).map { $0 + (s.addEOS ? " (added)" : "") }, describe("EOT", s.eot)]
        return (parts.compactMap { $0 } + ["\(s.endOfGeneration.count) end-of-generation tokens"])
            .joined(separator: ", ")
    }

    func tokenText(_ id: Int32) -> String {
        core.isValid(id) ? core.tokens[Int(id)] : ""
    }

    func tokenID(forText text: String) -> Int32? {
        core.table.find(text)
    }

    func attributes(of id: Int32) -> TokenAttributes {
        core.isValid(id) ? core.specials.attributes[Int(id)] : []
    }

    func tokenBytes(_ id: Int32, renderSpecial: Bool) -> [UInt8] {
        guard core.isValid(id) else { return [] }
        let i = Int(id)
        let a = core.specials.attributes[i]
        if !a.isDisjoint(with: [.control, .unknown]) {
            return renderSpecial ? Array(core.tokens[i].utf8) : []
        }
        if a.contains(.userDefined) { return Array(core.tokens[i].utf8) }
        if a.contains(.normal) { return normalTokenBytes(i) }
        if a.contains(.byte), let b = TokenizerCore.byteValue(ofByteToken: core.tokens[i]) { return [b] }
        return []
    }

    func encode(_ segments: [TextSegment], addSpecial: Bool) -> [Int32] {
        var buffer: [UInt8] = []
        var ranges: [(Range<Int>, Bool)] = []
        for segment in segments {
            let start = buffer.count
            buffer.append(contentsOf: segment.text.utf8)
            ranges.append((start..<buffer.count, segment.parseSpecial))
        }
        var output: [Int32] = []
        output.reserveCapacity(buffer.count / 3 + 2)
        if addSpecial && core.specials.addBOS, let bos = core.specials.bos { output.append(bos) }
        buffer.withUnsafeBufferPointer { bytes in
            var pieces: [TextPiece] = []
            for (range, parseSpecial) in ranges {
                let first = pieces.count
                core.splitter.split(bytes, range: range, parseSpecial: parseSpecial, into: &pieces)
                // Text that continues across a segment boundary is one text, as if the segments were joined.
                if first > 0, first < pieces.count, case let .text(a) = pieces[first - 1],
                   case let .text(b) = pieces[first], a.upperBound == b.lowerBound {
                    pieces[first - 1] = .text(a.lowerBound..<b.upperBound)
                    pieces.remove(at: first)
                }
            }
            var afterSpecial = true
            for piece in pieces {
                switch piece {
                case let .token(id):
                    output.append(id)
                    afterSpecial = true
                case let .text(range):
                    encodeText(bytes, range: range, afterSpecial: afterSpecial, into: &output)
                    afterSpecial = false
                }
            }
        }
        if addSpecial && core.specials.addEOS, let eos = core.specials.eos { output.append(eos) }
        return output
    }
}
