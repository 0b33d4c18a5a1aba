/// Server-sent events from a byte stream fed in arbitrary pieces: each complete event's data (its `data:` lines
/// joined by newlines). Comments, `event:`, `id:` and `retry:` lines are skipped; CRLF and LF both end lines.
public struct SSEParser {
    private var line: [UInt8] = []
    private var data: [String] = []
    private var sawCR = false
    /// A line longer than this is an error in the stream (a guard against a server that never ends a line).
    public static let lineLimit = 16 << 20
    public private(set) var overflowed = false

    public init() {}

    /// The data of every event completed by `bytes`.
    public mutating func feed(_ bytes: [UInt8]) -> [String] {
        var events: [String] = []
        for byte in bytes {
            if sawCR {
                sawCR = false
                if byte == UInt8(ascii: "\n") { continue }
            }
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                sawCR = byte == UInt8(ascii: "\r")
                if let event = endLine() { events.append(event) }
            } else if line.count < Self.lineLimit {
                line.append(byte)
            } else {
                overflowed = true
            }
        }
        return events
    }

    private mutating func endLine() -> String? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            guard !data.isEmpty else { return nil }
            defer { data.removeAll() }
            return data.joined(separator: "\n")
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("data:") else { return nil }
        var value = text.dropFirst(5)
        if value.first == " " { value = value.dropFirst() }
        data.append(String(value))
        return nil
    }
}
