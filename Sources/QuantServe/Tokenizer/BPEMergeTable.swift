/// Byte-level BPE merges keyed by the ids of the two pieces, so merging never builds strings.
///
/// Pieces are identified by token id when their text is in the vocabulary. A piece that is not (a merge whose
/// result is missing from the vocabulary, or a byte whose GPT-2 character is missing) gets an id past the end of
/// the vocabulary, from `extraPieces`; llama.cpp merges by text, so such pieces must still merge the same way.
struct BPEMergeTable: Sendable {
    struct Merge {
        var rank: Int32
        var result: Int32
    }

    /// `left << 32 | right` → rank and resulting piece.
    private var merges: [UInt64: UInt64] = [:]
    /// Piece id of the GPT-2 character of each byte.
    private(set) var byteMergeIDs = [Int32](repeating: 0, count: 256)
    /// Texts of pieces that are not vocabulary entries; piece id = vocabulary size + index.
    private(set) var extraPieces = ByteStringTable()
    let vocabularySize: Int

    init(merges lines: [String], table: ByteStringTable, vocabularySize: Int) throws(TokenizerError) {
        self.vocabularySize = vocabularySize
        merges.reserveCapacity(lines.count)

        var scratch: [UInt8] = []
        for b in 0..<256 {
            let utf8 = ByteLevelEncoding.utf8[b]
            byteMergeIDs[b] = utf8.withUnsafeBufferPointer { pieceID($0, table: table) }
        }
        for (index, original) in lines.enumerated() {
            var line = original
            let parsed: (Int32, Int32, Int32)? = line.withUTF8 { utf8 in
                // Split at the first space after position 0 (a piece may itself be a space).
                guard utf8.count >= 3, let space = utf8[1...].firstIndex(of: 0x20) else { return nil }
                let left = UnsafeBufferPointer(rebasing: utf8[..<space])
                let right = UnsafeBufferPointer(rebasing: utf8[(space + 1)...])
                guard !right.isEmpty else { return nil }
                scratch.removeAll(keepingCapacity: true)
                scratch.append(contentsOf: left)
                scratch.append(contentsOf: right)
                let result = scratch.withUnsafeBufferPointer { pieceID($0, table: table) }
                return (pieceID(left, table: table), pieceID(right, table: table), result)
            }
            guard let (left, right, result) = parsed else { throw .badMerge(index: index, line: original) }
            let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
            // The first occurrence of a pair keeps its rank, as std::unordered_map::emplace does.
            if merges[key] == nil {
                merges[key] = UInt64(UInt32(index)) << 32 | UInt64(UInt32(bitPattern: result))
            }
        }
    }

    private mutating func pieceID(_ bytes: UnsafeBufferPointer<UInt8>, table: ByteStringTable) -> Int32 {
        if let id = table.find(bytes) { return id }
        return Int32(vocabularySize) + extraPieces.insert(bytes)
    }

    @inline(__always)
    func merge(_ left: Int32, _ right: Int32) -> Merge? {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        guard let value = merges[key] else { return nil }
        return Merge(rank: Int32(truncatingIfNeeded: value >> 32), result: Int32(truncatingIfNeeded: value & 0xFFFF_FFFF))
    }

    var count: Int { merges.count }
}
