/// Turns generated tokens into text as they arrive. A token may end in the middle of a UTF-8 sequence (byte
/// tokens, or byte-level BPE pieces of an emoji); those bytes are held back until the sequence is complete, so each
/// returned string is valid text. Control tokens print nothing.
public struct StreamingDetokenizer: Sendable {
    public let tokenizer: any Tokenizer
    private var pending: [UInt8] = []

    public init(tokenizer: any Tokenizer) {
        self.tokenizer = tokenizer
    }

    /// The text that token `id` completes (possibly empty).
    public mutating func append(_ id: Int32) -> String {
        pending.append(contentsOf: tokenizer.tokenBytes(id))
        let complete = Self.completePrefixLength(pending)
        guard complete > 0 else { return "" }
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Whatever is still held back, with incomplete sequences shown as U+FFFD; the detokenizer is then empty.
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Bytes held back because they may be the start of a character.
    public var pendingByteCount: Int { pending.count }

    /// How many leading bytes can be printed now: everything except a trailing, still incomplete sequence
    /// (a lead byte followed by fewer continuation bytes than it announces). Malformed bytes are not held.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        var i = n - 1
        // Step back over at most three continuation bytes to the last lead byte.
        while i >= 0 && i >= n - 4 && bytes[i] & 0xC0 == 0x80 { i -= 1 }
        guard i >= 0 && i >= n - 4 else { return n }
        let lead = bytes[i]
        let needed = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 && lead < 0xF0 ? 3 : lead >= 0xC2 && lead < 0xE0 ? 2 : 1
        return n - i < needed ? i : n
    }
}
