/// A piece of text to tokenize: either a special token already recognised, or a byte range of ordinary text.
enum TextPiece: Equatable {
    case token(Int32)
    case text(Range<Int>)
}

/// Splits text on the strings of special tokens before the model's own tokenizer sees it, with the result of
/// llama.cpp's `tokenizer_st_partition`: special tokens are taken in order of decreasing length (ties: lower id
/// first), and each is matched left to right, without overlap, in whatever text the longer ones left over.
/// User-defined tokens are always matched; control and unknown tokens only when special parsing is asked for.
struct SpecialTokenSplitter: Sendable {
    private struct Node: Sendable {
        var children: [UInt8: Int32] = [:]
        /// Priority of the token ending here (0 = matched first), or -1.
        var priority: Int32 = -1
    }

    private var rootChildren = [Int32](repeating: -1, count: 256)
    private var nodes: [Node] = [Node()]
    /// Token id by priority.
    private var tokenIDs: [Int32] = []
    /// Whether the token of that priority is matched even when special parsing is off.
    private var alwaysMatched: [Bool] = []

    var isEmpty: Bool { tokenIDs.isEmpty }

    init(table: ByteStringTable, attributes: [TokenAttributes]) {
        var special: [Int32] = []
        for (i, a) in attributes.enumerated()
        where !a.isDisjoint(with: [.control, .userDefined, .unknown]) && table.length(i) > 0 {
            special.append(Int32(i))
        }
        special.sort { a, b in
            let la = table.length(Int(a)), lb = table.length(Int(b))
            return la != lb ? la > lb : a < b
        }
        for (priority, id) in special.enumerated() {
            tokenIDs.append(id)
            alwaysMatched.append(attributes[Int(id)].isDisjoint(with: [.control, .unknown]))
            insert(Array(table.bytes(Int(id))), priority: Int32(priority))
        }
    }

    private mutating func insert(_ bytes: [UInt8], priority: Int32) {
        var node = Int(rootChildren[Int(bytes[0])])
        if node < 0 {
            nodes.append(Node())
            node = nodes.count - 1
            rootChildren[Int(bytes[0])] = Int32(node)
        }
        for b in bytes.dropFirst() {
            if let next = nodes[node].children[b] {
                node = Int(next)
            } else {
                nodes.append(Node())
                nodes[node].children[b] = Int32(nodes.count - 1)
                node = nodes.count - 1
            }
        }
        if nodes[node].priority < 0 { nodes[node].priority = priority }
    }

    private struct Match: Comparable {
        var priority: Int32
        var start: Int
        var length: Int
        static func < (a: Match, b: Match) -> Bool {
            a.priority != b.priority ? a.priority < b.priority : a.start < b.start
        }
    }

    /// Appends the pieces of `bytes[range]` to `pieces`.
    func split(_ bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>, parseSpecial: Bool, into pieces: inout [TextPiece]) {
        guard !range.isEmpty else { return }
        var matches: [Match] = []
        if !isEmpty {
            for start in range {
                var node = Int(rootChildren[Int(bytes[start])])
                var end = start + 1
                while node >= 0 {
                    let p = nodes[node].priority
                    if p >= 0 && (parseSpecial || alwaysMatched[Int(p)]) {
                        matches.append(Match(priority: p, start: start, length: end - start))
                    }
                    guard end < range.upperBound, let next = nodes[node].children[bytes[end]] else { break }
                    node = Int(next)
                    end += 1
                }
            }
        }
        guard !matches.isEmpty else {
            pieces.append(.text(range))
            return
        }
        // Accept matches in priority order, each only where no accepted match already covers its bytes.
        matches.sort()
        var covered = [Bool](repeating: false, count: range.count)
        var accepted: [(start: Int, length: Int, id: Int32)] = []
        for m in matches {
            let lo = m.start - range.lowerBound
            if covered[lo..<(lo + m.length)].contains(true) { continue }
            for k in lo..<(lo + m.length) { covered[k] = true }
            accepted.append((m.start, m.length, tokenIDs[Int(m.priority)]))
        }
        accepted.sort { $0.start < $1.start }
        var position = range.lowerBound
        for a in accepted {
            if a.start > position { pieces.append(.text(position..<a.start)) }
            pieces.append(.token(a.id))
            position = a.start + a.length
        }
        if position < range.upperBound { pieces.append(.text(position..<range.upperBound)) }
    }
}
