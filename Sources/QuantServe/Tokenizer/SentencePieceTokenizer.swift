/// SentencePiece BPE (`tokenizer.ggml.model = llama`: Llama 1/2, Mistral, TinyLlama, …), as llama.cpp's
/// `llm_tokenizer_spm`: spaces become U+2581 (`▁`), text that starts the input or follows a special token gets a
/// leading `▁` when `add_space_prefix` is set, the pieces start as single UTF-8 characters, and the adjacent pair
/// whose concatenation is the highest-scoring vocabulary entry (ties: leftmost) is merged until none is left.
/// A final piece that is not in the vocabulary is emitted as its bytes' `<0xXX>` tokens.
struct SentencePieceTokenizer: CoreBackedTokenizer {
    let core: TokenizerCore
    let scores: [Float]
    let addSpacePrefix: Bool
    /// Token of each byte value (`<0xXX>`, else the one-byte text), or -1.
    let byteTokens: [Int32]

    private static let escapedSpace: [UInt8] = [0xE2, 0x96, 0x81]

    init(vocabulary: TokenizerVocabulary) throws(TokenizerError) {
        core = try TokenizerCore(vocabulary: vocabulary, addsBOSByDefault: true)
        guard vocabulary.scores.isEmpty || vocabulary.scores.count == vocabulary.tokens.count else {
            throw .inconsistentVocabulary("\(vocabulary.scores.count) scores for \(vocabulary.tokens.count) tokens")
        }
        scores = vocabulary.scores.isEmpty ? Array(repeating: 0, count: vocabulary.tokens.count) : vocabulary.scores
        addSpacePrefix = vocabulary.addSpacePrefix ?? true
        let hex = Array("0123456789ABCDEF".utf8)
        let table = core.table
        byteTokens = (0..<256).map { b in
            let name: [UInt8] = [0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E] // <0xXX>
            return table.find(name) ?? table.find([UInt8(b)]) ?? -1
        }
    }

    var summary: String {
        "SentencePiece BPE\(addSpacePrefix ? " (space prefix)" : ""), \(vocabularySize) tokens, \(specialTokensSummary)"
    }

    func normalTokenBytes(_ id: Int) -> [UInt8] {
        // ▁ → space.
        let utf8 = Array(core.tokens[id].utf8)
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            if i + 2 < utf8.count && utf8[i] == 0xE2 && utf8[i + 1] == 0x96 && utf8[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(utf8[i])
                i += 1
            }
        }
        return out
    }

    struct Candidate: HeapElement {
        var score: Float
        var left: Int32
        var right: Int32
        var length: Int32
        static func precedes(_ a: Candidate, _ b: Candidate) -> Bool {
            a.score != b.score ? a.score > b.score : a.left < b.left
        }
    }

    func encodeText(_ bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>, afterSpecial: Bool, into output: inout [Int32]) {
        // The text as the vocabulary spells it.
        var text: [UInt8] = []
        text.reserveCapacity(range.count + 16)
        if addSpacePrefix && afterSpecial { text.append(contentsOf: Self.escapedSpace) }
        for b in bytes[range] {
            if b == 0x20 { text.append(contentsOf: Self.escapedSpace) } else { text.append(b) }
        }
        text.withUnsafeBufferPointer { encodeEscaped($0, into: &output) }
    }

    private func encodeEscaped(_ text: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
        // One piece per UTF-8 character: start offset, byte length (0 once merged away), neighbours.
        var starts: [Int32] = [], lengths: [Int32] = [], previous: [Int32] = [], next: [Int32] = []
        var offset = 0
        while offset < text.count {
            let lead = text[offset]
            let size = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            let length = min(size, text.count - offset)
            previous.append(Int32(starts.count - 1))
            starts.append(Int32(offset))
            lengths.append(Int32(length))
            offset += length
            next.append(offset == text.count ? -1 : Int32(starts.count))
        }
        guard !starts.isEmpty else { return }

        var queue = BinaryHeap<Candidate>()
        func consider(_ left: Int32, _ right: Int32) {
            guard left >= 0, right >= 0 else { return }
            let lo = Int(starts[Int(left)])
            let length = Int(lengths[Int(left)] + lengths[Int(right)])
            guard let id = core.table.find(UnsafeBufferPointer(rebasing: text[lo..<(lo + length)])) else { return }
            queue.push(Candidate(score: scores[Int(id)], left: left, right: right, length: Int32(length)))
        }
        for i in 1..<starts.count { consider(Int32(i - 1), Int32(i)) }
        while let c = queue.pop() {
            let l = Int(c.left), r = Int(c.right)
            guard lengths[l] > 0, lengths[r] > 0, lengths[l] + lengths[r] == c.length else { continue }
            lengths[l] = c.length
            lengths[r] = 0
            next[l] = next[r]
            if next[r] >= 0 { previous[Int(next[r])] = c.left }
            consider(previous[l], c.left)
            consider(c.left, next[l])
        }

        var i = 0
        while i >= 0 {
            let lo = Int(starts[i]), hi = lo + Int(lengths[i])
            if let id = core.table.find(UnsafeBufferPointer(rebasing: text[lo..<hi])) {
                output.append(id)
            } else {
                for b in text[lo..<hi] {
                    let id = byteTokens[Int(b)]
                    if id >= 0 {
                        output.append(id)
                    } else if let unknown = core.specials.unknown {
                        output.append(unknown)
                    }
                }
            }
            i = Int(next[i])
        }
    }
}
