/// A byte-level recogniser of one JSON object (RFC 8259), with the state small and fixed-size so that it can be
/// copied at every node of a vocabulary walk: nesting up to 62 levels as a bit stack, whitespace runs bounded (a
/// model cannot stall in whitespace), strings of any UTF-8 text with escapes checked.
public struct JSONAutomaton: ByteAutomaton, Equatable {
    enum Mode: UInt8, Sendable {
        case start              // before the top-level object: `{`
        case value              // a value expected (after `:` or `,` in an array)
        case valueOrClose       // after `[`: a value or `]`
        case keyOrClose         // after `{`: a key or `}`
        case key                // after `,` in an object: a key
        case colon              // after a key
        case afterValue         // `,`, the container's close, or (top level done) nothing
        case string, stringEscape, stringUnicode
        case number
        case literal            // inside true / false / null
        case done               // the top-level object is closed
    }

    static let maxDepth = 62
    static let maxWhitespaceRun = 24

    var mode = Mode.start
    /// Containers open: bit i set = object at depth i (else array).
    var stack: UInt64 = 0
    var depth: UInt8 = 0
    /// In a string: whether it is a key; in `\u`: hex digits left; in a literal: its index and which one.
    var isKey = false
    var counter: UInt8 = 0
    var literal: UInt8 = 0
    var number = JSONNumber.start
    var whitespace: UInt8 = 0

    public init() {}

    /// Whether the object is complete (only the end of generation may follow).
    public var isComplete: Bool { mode == .done }
    public var inFreeString: Bool { mode == .string }

    static let literals: [[UInt8]] = [Array("true".utf8), Array("false".utf8), Array("null".utf8)]

    private var inObject: Bool { depth > 0 && (stack >> UInt64(depth - 1)) & 1 == 1 }

    private mutating func push(object: Bool) -> Bool {
        guard Int(depth) < Self.maxDepth else { return false }
        if object { stack |= 1 << UInt64(depth) } else { stack &= ~(1 << UInt64(depth)) }
        depth += 1
        return true
    }

    /// After a complete value: the enclosing container's continuation, or done at the top.
    private mutating func endValue() {
        mode = depth == 0 ? .done : .afterValue
    }

    private mutating func space(_ b: UInt8) -> Bool {
        guard JSONText.isSpace(b) else { return false }
        whitespace += 1
        return Int(whitespace) <= Self.maxWhitespaceRun
    }

    /// Starts a value with `b`; false when `b` cannot start one.
    private mutating func startValue(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "{"): guard push(object: true) else { return false }; mode = .keyOrClose
        case UInt8(ascii: "["): guard push(object: false) else { return false }; mode = .valueOrClose
        case UInt8(ascii: "\""): mode = .string; isKey = false
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            guard case .next(let n) = JSONNumber.start.step(b, integerOnly: false) else { return false }
            mode = .number
            number = n
        case UInt8(ascii: "t"): mode = .literal; literal = 0; counter = 1
        case UInt8(ascii: "f"): mode = .literal; literal = 1; counter = 1
        case UInt8(ascii: "n"): mode = .literal; literal = 2; counter = 1
        default: return false
        }
        return true
    }

    /// A number ended by `b` (not part of it): the value is complete and `b` is read after it.
    private mutating func endNumber(_ b: UInt8) -> Bool {
        endValue()
        return feed(b)
    }

    /// Reads one byte; false when the text can no longer become a JSON object.
    public mutating func feed(_ b: UInt8) -> Bool {
        let isSpace = JSONText.isSpace(b)
        if !isSpace { whitespace = 0 }
        switch mode {
        case .start:
            // The object starts at once: leading whitespace would only let a model stall before it.
            guard b == UInt8(ascii: "{") else { return false }
            return startValue(b)
        case .value:
            if isSpace { return space(b) }
            return startValue(b)
        case .valueOrClose:
            if isSpace { return space(b) }
            if b == UInt8(ascii: "]") { depth -= 1; endValue(); return true }
            return startValue(b)
        case .keyOrClose, .key:
            if isSpace { return space(b) }
            if b == UInt8(ascii: "}"), mode == .keyOrClose { depth -= 1; endValue(); return true }
            guard b == UInt8(ascii: "\"") else { return false }
            mode = .string
            isKey = true
            return true
        case .colon:
            if isSpace { return space(b) }
            guard b == UInt8(ascii: ":") else { return false }
            mode = .value
            return true
        case .afterValue:
            if isSpace { return space(b) }
            if b == UInt8(ascii: ",") { mode = inObject ? .key : .value; return true }
            if b == UInt8(ascii: "}"), inObject { depth -= 1; endValue(); return true }
            if b == UInt8(ascii: "]"), !inObject { depth -= 1; endValue(); return true }
            return false
        case .string:
            switch b {
            case UInt8(ascii: "\""): if isKey { mode = .colon } else { endValue() }; return true
            case UInt8(ascii: "\\"): mode = .stringEscape; return true
            case 0..<0x20: return false
            default: return true
            }
        case .stringEscape:
            if JSONText.isSimpleEscape(b) { mode = .string; return true }
            guard b == UInt8(ascii: "u") else { return false }
            mode = .stringUnicode
            counter = 4
            return true
        case .stringUnicode:
            guard JSONText.isHex(b) else { return false }
            counter -= 1
            if counter == 0 { mode = .string }
            return true
        case .number:
            switch number.step(b, integerOnly: false) {
            case .next(let n): number = n; return true
            case .end: return endNumber(b)
            case .reject: return false
            }
        case .literal:
            let word = Self.literals[Int(literal)]
            guard b == word[Int(counter)] else { return false }
            counter += 1
            if Int(counter) == word.count { endValue() }
            return true
        case .done:
            return false
        }
    }
}
