/// What a constrained sequence may generate: at each step the tokens that keep its output inside the grammar (the
/// others' logits become -inf before sampling), and the token chosen, to advance.
public protocol TokenConstraint: Sendable {
    /// Sets every refused token's logit to -infinity (all but end of generation once the output is complete).
    mutating func mask(_ logits: UnsafeMutableBufferPointer<Float>)
    mutating func accept(_ token: Int32)
}

/// The output is one JSON object (`response_format: {"type": "json_object"}`): the automaton over the tokens' bytes.
public struct JSONObjectConstraint: TokenConstraint {
    public let trie: VocabularyTrie
    public private(set) var automaton = JSONAutomaton()
    private var allowed: [Bool] = []

    public init(trie: VocabularyTrie) { self.trie = trie }

    public mutating func mask(_ logits: UnsafeMutableBufferPointer<Float>) {
        trie.allowedTokens(from: automaton, into: &allowed)
        // Nothing can continue (a vocabulary without the bytes needed): end rather than sample from nothing.
        if !allowed.contains(true) { for id in trie.endOfGeneration where Int(id) < allowed.count { allowed[Int(id)] = true } }
        let n = min(logits.count, allowed.count)
        for i in 0..<n where !allowed[i] { logits[i] = -.infinity }
        for i in n..<logits.count { logits[i] = -.infinity }
    }

    public mutating func accept(_ token: Int32) {
        guard !automaton.isComplete else { return }
        // The mask only let through tokens the automaton accepts; a token outside the trie (never allowed) is ignored.
        var next = automaton
        if next.feed(trie.bytesOf(token)) { automaton = next }
    }
}
