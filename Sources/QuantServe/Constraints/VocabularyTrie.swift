/// Every token's bytes in a trie, built once per tokenizer, so that the tokens a grammar allows are found by one walk
/// that drops a whole subtree at the first byte the grammar refuses (tokens sharing a prefix are checked once).
/// Control tokens and tokens without bytes are left out; the end-of-generation tokens are listed apart.
///
/// Inside a JSON string nearly every token continues, so a walk would visit the whole trie (4 ms a step on a 151k
/// vocabulary). There the tokens without a quote, a backslash or a control byte are allowed from a precomputed set,
/// and only the others are walked, in a trie of their own.
public final class VocabularyTrie: Sendable {
    let all: ByteTrie
    let special: ByteTrie
    /// Tokens that stay inside a JSON string whatever they hold: no `"`, no `\`, no byte below 0x20.
    let stringSafe: [Bool]
    public let vocabularySize: Int
    public let endOfGeneration: [Int32]
    /// Each token's bytes by id (empty for control tokens).
    let bytesByID: [[UInt8]]

    public init(tokenizer: any Tokenizer) {
        vocabularySize = tokenizer.vocabularySize
        endOfGeneration = tokenizer.endOfGenerationIDs.sorted()
        var entries: [([UInt8], Int32)] = []
        entries.reserveCapacity(tokenizer.vocabularySize)
        var byID: [[UInt8]] = []
        byID.reserveCapacity(tokenizer.vocabularySize)
        var safe = Array(repeating: false, count: tokenizer.vocabularySize)
        var specialEntries: [([UInt8], Int32)] = []
        for id in 0..<Int32(tokenizer.vocabularySize) {
            let a = tokenizer.attributes(of: id)
            let b = a.contains(.control) || a.contains(.unused) || a.contains(.unknown) ? [] : tokenizer.tokenBytes(id, renderSpecial: false)
            byID.append(b)
            guard !b.isEmpty else { continue }
            entries.append((b, id))
            if b.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
                safe[Int(id)] = true
            } else {
                specialEntries.append((b, id))
            }
        }
        bytesByID = byID
        stringSafe = safe
        all = ByteTrie(entries)
        special = ByteTrie(specialEntries)
    }

    public var nodeCount: Int { all.bytes.count }

    /// The bytes of `token` (empty for control tokens and ids outside the vocabulary).
    public func bytesOf(_ token: Int32) -> [UInt8] {
        token >= 0 && Int(token) < bytesByID.count ? bytesByID[Int(token)] : []
    }

    /// Sets `allowed` to the tokens whose bytes the automaton accepts from `state` (the end-of-generation tokens
    /// when it is complete). Returns the trie nodes visited.
    @discardableResult
    public func allowedTokens<A: ByteAutomaton>(from state: A, into allowed: inout [Bool]) -> Int {
        if state.inFreeString {
            allowed = stringSafe
            return special.walk(from: state, into: &allowed)
        }
        // The buffer is reused from step to step: cleared in place, not allocated.
        if allowed.count == vocabularySize {
            allowed.withUnsafeMutableBufferPointer { $0.update(repeating: false) }
        } else {
            allowed = Array(repeating: false, count: vocabularySize)
        }
        if state.isComplete {
            for id in endOfGeneration where Int(id) < vocabularySize { allowed[Int(id)] = true }
            return 0
        }
        return all.walk(from: state, into: &allowed)
    }
}

/// Token byte strings as a trie in depth-first order: each node's byte, the token that ends there (or -1), and where
/// its subtree ends.
struct ByteTrie: Sendable {
    let bytes: [UInt8]
    let tokens: [Int32]
    let subtreeEnd: [Int32]

    init(_ unsorted: [([UInt8], Int32)]) {
        // Sorted byte strings make the depth-first order a single pass.
        let entries = unsorted.sorted { $0.0.lexicographicallyPrecedes($1.0) }
        var bytes: [UInt8] = [], tokens: [Int32] = [], ends: [Int32] = []
        var path: [Int] = []   // node index per depth of the current path
        var previous: [UInt8] = []
        for (b, id) in entries {
            var shared = 0
            while shared < min(previous.count, b.count), previous[shared] == b[shared] { shared += 1 }
            // Close the nodes below the shared prefix.
            while path.count > shared { ends[path.removeLast()] = Int32(bytes.count) }
            // The same bytes as the previous token (a duplicate): the first id keeps them.
            if shared == b.count { continue }
            for d in shared..<b.count {
                path.append(bytes.count)
                bytes.append(b[d])
                tokens.append(d == b.count - 1 ? id : -1)
                ends.append(0)
            }
            previous = b
        }
        while let n = path.popLast() { ends[n] = Int32(bytes.count) }
        self.bytes = bytes
        self.tokens = tokens
        self.subtreeEnd = ends
    }

    /// Marks in `allowed` every token of this trie that the automaton accepts from `state`; the nodes visited.
    func walk<A: ByteAutomaton>(from state: A, into allowed: inout [Bool]) -> Int {
        // The automaton's state after each node of the current path, with where that node's subtree ends.
        var stack: [(end: Int32, state: A)] = []
        stack.reserveCapacity(64)
        var i = 0, visited = 0
        let count = bytes.count
        while i < count {
            while let top = stack.last, Int(top.end) <= i { stack.removeLast() }
            visited += 1
            var next = stack.last?.state ?? state
            if next.feed(bytes[i]) {
                if tokens[i] >= 0 { allowed[Int(tokens[i])] = true }
                stack.append((subtreeEnd[i], next))
                i += 1
            } else {
                i = Int(subtreeEnd[i])
            }
        }
        return visited
    }
}
