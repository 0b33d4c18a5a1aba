/// The pieces of JSON text that both grammars (`JSONAutomaton`, `SchemaAutomaton`) read the same way: a number's
/// characters, and a string's escapes.
enum JSONNumber: UInt8, Sendable, Equatable {
    case start, sign, zero, integer, dot, fraction, exponent, exponentSign, exponentDigits

    enum Step { case next(JSONNumber), end, reject }

    /// The state after `b`. `.end`: `b` is not part of the number, which is complete, so `b` belongs to what follows;
    /// `.reject`: the text cannot be a number. `integerOnly` ends an integer where a fraction or exponent would start.
    func step(_ b: UInt8, integerOnly: Bool) -> Step {
        let digit = b >= 0x30 && b <= 0x39
        let fractionOrExponent: Step = integerOnly ? .end
            : b == UInt8(ascii: ".") ? .next(.dot) : b == UInt8(ascii: "e") || b == UInt8(ascii: "E") ? .next(.exponent) : .end
        switch self {
        case .start:
            if b == UInt8(ascii: "-") { return .next(.sign) }
            fallthrough
        case .sign:
            if b == UInt8(ascii: "0") { return .next(.zero) }
            return digit ? .next(.integer) : .reject
        case .zero: return digit ? .reject : fractionOrExponent
        case .integer: return digit ? .next(.integer) : fractionOrExponent
        case .dot: return digit ? .next(.fraction) : .reject
        case .fraction:
            if digit { return .next(.fraction) }
            return b == UInt8(ascii: "e") || b == UInt8(ascii: "E") ? .next(.exponent) : .end
        case .exponent:
            if b == UInt8(ascii: "+") || b == UInt8(ascii: "-") { return .next(.exponentSign) }
            return digit ? .next(.exponentDigits) : .reject
        case .exponentSign: return digit ? .next(.exponentDigits) : .reject
        case .exponentDigits: return digit ? .next(.exponentDigits) : .end
        }
    }
}

enum JSONText {
    /// The characters that may follow a backslash in a string, besides `u`.
    static func isSimpleEscape(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): true
        default: false
        }
    }

    static func isHex(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66) }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }
}
