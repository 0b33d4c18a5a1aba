import Foundation

/// A parsed JSON document, for files too large for `JSONSerialization` to read in good time (a 150k-token
/// `tokenizer.json` takes it about 0.4 s; this parser about a quarter of that).
enum JSONValue: Sendable {
    /// Members in document order (no dictionary: hashing 150k vocabulary keys would double the parse time).
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    /// The member named `key` (the last, if repeated), by a linear search.
    subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o.last { $0.key == key }?.value }
        return nil
    }

    var object: [(key: String, value: JSONValue)]? { if case .object(let o) = self { return o }; return nil }
    var array: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    var string: String? { if case .string(let s) = self { return s }; return nil }
    var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    var int: Int? { if case .number(let n) = self, let i = Int(exactly: n) { return i }; return nil }

    /// Parses `data`; the error says where the text stops being JSON.
    static func parse(_ data: Data) throws -> JSONValue {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> JSONValue in
            var parser = JSONParser(bytes: raw.bindMemory(to: UInt8.self))
            let value = try parser.value(depth: 0)
            parser.skipSpace()
            guard parser.i == parser.bytes.count else { throw parser.fail("text after the document") }
            return value
        }
    }

    /// Depth-first over every object inside (this one included).
    func visitObjects(_ body: (JSONValue) -> Void) {
        switch self {
        case .object(let o):
            body(self)
            for member in o { member.value.visitObjects(body) }
        case .array(let a):
            for v in a { v.visitObjects(body) }
        default:
            break
        }
    }
}

struct JSONSyntaxError: Error, CustomStringConvertible {
    let offset: Int
    let problem: String
    var description: String { "not valid JSON at byte \(offset): \(problem)" }
}

private struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var i = 0

    func fail(_ problem: String) -> JSONSyntaxError { JSONSyntaxError(offset: i, problem: problem) }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth < 512 else { throw fail("nested too deeply") }
        skipSpace()
        guard i < bytes.count else { throw fail("unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var object: [(key: String, value: JSONValue)] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(object) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let key = try string()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                object.append((key, try value(depth: depth + 1)))
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end in an object") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(object) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            var array: [JSONValue] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(array) }
            while true {
                array.append(try value(depth: depth + 1))
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end in an array") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(array) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            return .number(try number())
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count, memcmp(bytes.baseAddress! + i, word.utf8Start, n) == 0 else { throw fail("bad literal") }
        i += n
    }

    mutating func number() throws(JSONSyntaxError) -> Double {
        let start = i
        var integer = 0, negative = false, simple = true
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        while i < bytes.count {
            let c = bytes[i]
            if c >= 0x30 && c <= 0x39 {
                if integer < Int.max / 10 - 10 { integer = integer * 10 + Int(c - 0x30) } else { simple = false }
            } else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == UInt8(ascii: "+")
                        || c == UInt8(ascii: "-") {
                simple = false
            } else {
                break
            }
            i += 1
        }
        guard i > start + (negative ? 1 : 0) else { throw fail("expected a value") }
        if simple { return Double(negative ? -integer : integer) }
        guard let d = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)) else {
            throw fail("bad number")
        }
        return d
    }

    /// A string starting at the opening quote.
    mutating func string() throws(JSONSyntaxError) -> String {
        i += 1
        let start = i
        while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\") { i += 1 }
        guard i < bytes.count else { throw fail("unterminated string") }
        if bytes[i] == UInt8(ascii: "\"") {
            defer { i += 1 }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        }
        // Escapes: decode into a buffer.
        var out = Array(bytes[start..<i])
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; return String(decoding: out, as: UTF8.self) }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            guard i + 1 < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"),
                   bytes[i + 1] == UInt8(ascii: "u") {
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("bad surrogate pair") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                let s = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(s)).utf8))
            default:
                throw fail("bad escape")
            }
        }
    }

    mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("bad \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }
}
