/// Byte-level BPE (`tokenizer.ggml.model = gpt2`: GPT-2, Llama 3, Qwen2, …), as llama.cpp's `llm_tokenizer_bpe`:
/// the pre-tokenizer splits text into words; each word's bytes start as one piece per byte and the adjacent pair
/// with the lowest merge rank is merged (ties: leftmost) until no pair has a merge.
struct ByteLevelBPETokenizer: CoreBackedTokenizer {
    let core: TokenizerCore
    let preTokenizer: PreTokenizer
    let ignoreMerges: Bool
    let merges: BPEMergeTable

    init(vocabulary: TokenizerVocabulary) throws(TokenizerError) {
        let configuration = try PreTokenizer.configuration(named: vocabulary.preTokenizer)
        guard !vocabulary.merges.isEmpty else { throw .missingMerges }
        core = try TokenizerCore(vocabulary: vocabulary, addsBOSByDefault: configuration.addsBOSByDefault)
        preTokenizer = configuration.preTokenizer
        ignoreMerges = configuration.ignoreMerges
        merges = try BPEMergeTable(merges: vocabulary.merges, table: core.table, vocabularySize: vocabulary.tokens.count)
    }

    var summary: String {
        "byte-level BPE (pre-tokenizer \(preTokenizer)\(ignoreMerges ? ", ignore merges" : "")), "
            + "\(vocabularySize) tokens, \(merges.count) merges, \(specialTokensSummary)"
    }

    func normalTokenBytes(_ id: Int) -> [UInt8] {
        ByteLevelEncoding.decode(core.tokens[id])
    }

    func encodeText(_ bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>, afterSpecial: Bool, into output: inout [Int32]) {
        let text = ScalarText(utf8: UnsafeBufferPointer(rebasing: bytes[range]))
        var ends: [Int] = []
        ends.reserveCapacity(text.count / 3 + 1)
        preTokenizer.split(text, range: 0..<text.count, into: &ends)
        var session = MergeSession()
        var start = 0
        for end in ends {
            let lo = range.lowerBound + Int(text.byteOffsets[start])
            let hi = range.lowerBound + Int(text.byteOffsets[end])
            start = end
            encodeWord(UnsafeBufferPointer(rebasing: bytes[lo..<hi]), session: &session, into: &output)
        }
    }

    /// Per-call scratch space, reused across the words of one text.
    struct MergeSession {
        var pieces: [Int32] = []
        var lengths: [Int32] = []
        var previous: [Int32] = []
        var next: [Int32] = []
        var queue = BinaryHeap<Candidate>()
        var encoded: [UInt8] = []
    }

    struct Candidate: HeapElement {
        var rank: Int32
        var left: Int32
        var right: Int32
        var length: Int32
        var result: Int32
        static func precedes(_ a: Candidate, _ b: Candidate) -> Bool {
            a.rank != b.rank ? a.rank < b.rank : a.left < b.left
        }
    }

    private func encodeWord(_ word: UnsafeBufferPointer<UInt8>, session s: inout MergeSession, into output: inout [Int32]) {
        guard !word.isEmpty else { return }
        if ignoreMerges || word.count == 1 {
            // The whole word, in its stored (GPT-2 character) form.
            s.encoded.removeAll(keepingCapacity: true)
            for b in word { s.encoded.append(contentsOf: ByteLevelEncoding.utf8[Int(b)]) }
            if let id = s.encoded.withUnsafeBufferPointer({ core.table.find($0) }) {
                output.append(id)
                return
            }
        }
        let n = word.count
        s.pieces.removeAll(keepingCapacity: true)
        s.lengths.removeAll(keepingCapacity: true)
        s.previous.removeAll(keepingCapacity: true)
        s.next.removeAll(keepingCapacity: true)
        for (i, b) in word.enumerated() {
            s.pieces.append(merges.byteMergeIDs[Int(b)])
            s.lengths.append(1)
            s.previous.append(Int32(i - 1))
            s.next.append(i + 1 < n ? Int32(i + 1) : -1)
        }
        s.queue.removeAll()
        func consider(_ left: Int32, _ right: Int32, _ s: inout MergeSession) {
            guard left >= 0, right >= 0, let m = merges.merge(s.pieces[Int(left)], s.pieces[Int(right)]) else { return }
            s.queue.push(Candidate(rank: m.rank, left: left, right: right,
                                   length: s.lengths[Int(left)] + s.lengths[Int(right)], result: m.result))
        }
        for i in 1..<n { consider(Int32(i - 1), Int32(i), &s) }
        while let c = s.queue.pop() {
            let l = Int(c.left), r = Int(c.right)
            // Stale: one side has merged since this pair was queued.
            guard s.lengths[l] > 0, s.lengths[r] > 0, s.lengths[l] + s.lengths[r] == c.length else { continue }
            s.pieces[l] = c.result
            s.lengths[l] = c.length
            s.lengths[r] = 0
            s.next[l] = s.next[r]
            if s.next[r] >= 0 { s.previous[Int(s.next[r])] = c.left }
            consider(s.previous[l], c.left, &s)
            consider(c.left, s.next[l], &s)
        }
        var i = 0
        var offset = 0
        while i >= 0 {
            let piece = s.pieces[i]
            let length = Int(s.lengths[i])
            if Int(piece) < core.tokens.count {
                output.append(piece)
            } else {
                // Not a vocabulary entry: llama.cpp emits each byte of its stored text that is itself a token.
                for b in word[offset..<(offset + length)] {
                    for e in ByteLevelEncoding.utf8[Int(b)] {
                        if let id = core.table.find([e]) { output.append(id) }
                    }
                }
            }
            offset += length
            i = Int(s.next[i])
        }
    }
}
