/// What a constrained sequence may generate: at each step the tokens that keep its output inside the grammar (the
/// others' logits become -inf before sampling), and the token chosen, to advance.
public protocol TokenConstraint: Sendable {
    /// Sets every refused token's logit to -infinity (all but end of generation once the output is complete).
    mutating func mask(_ logits: UnsafeMutableBufferPointer<Float>)
    mutating func accept(_ token: Int32)
}

/// A recogniser of a byte language, fed one byte at a time, cheap to copy (a vocabulary walk copies it per node).
public protocol ByteAutomaton: Sendable {
    /// Reads one byte; false when the text can no longer be in the language.
    mutating func feed(_ b: UInt8) -> Bool
    /// The text so far is a whole sentence of the language: only the end of generation may follow.
    var isComplete: Bool { get }
    /// Inside a string whose content is free: every byte but `"`, `\` and controls keeps it there.
    var inFreeString: Bool { get }
}

extension ByteAutomaton {
    /// Reads bytes; false at the first that cannot continue.
    public mutating func feed<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        for b in bytes where !feed(b) { return false }
        return true
    }
}

/// The output is one JSON object (`response_format: {"type": "json_object"}`).
public typealias JSONObjectConstraint = GrammarConstraint<JSONAutomaton>

/// The output stays in an automaton's language: at each step the tokens whose bytes it accepts.
public struct GrammarConstraint<A: ByteAutomaton>: TokenConstraint {
    public let trie: VocabularyTrie
    public private(set) var automaton: A
    private var allowed: [Bool] = []

    public init(trie: VocabularyTrie, automaton: A) {
        self.trie = trie
        self.automaton = automaton
    }

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
