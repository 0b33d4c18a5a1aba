/// The character classes the pre-tokenizer regexes use, as llama.cpp's unicode.cpp defines them:
/// `\p{L}` = general category L*, `\p{N}` = N*, `\s` = the Unicode White_Space property, `\p{P}` = P*.
struct ScalarClass: OptionSet, Sendable {
    let rawValue: UInt8
    static let letter = ScalarClass(rawValue: 1)
    static let number = ScalarClass(rawValue: 2)
    static let whitespace = ScalarClass(rawValue: 4)
    /// `\p{P}` or one of `$+<=>^~|` (the first regex of llama.cpp's default pre-tokenizer).
    static let punctuationRun = ScalarClass(rawValue: 8)

    /// Neither letter, number nor whitespace: `[^\s\p{L}\p{N}]`.
    @inline(__always) var isOther: Bool { rawValue & 7 == 0 }

    @inline(__always)
    static func of(_ value: UInt32) -> ScalarClass {
        if value < 128 { return asciiTable[Int(value)] }
        guard let scalar = Unicode.Scalar(value) else { return [] }
        let properties = scalar.properties
        var c: ScalarClass = properties.isWhitespace ? .whitespace : []
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            c.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber:
            c.insert(.number)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            c.insert(.punctuationRun)
        default:
            break
        }
        return c
    }

    private static let asciiTable: [ScalarClass] = (0..<128).map { v -> ScalarClass in
        switch v {
        case 0x41...0x5A, 0x61...0x7A: return .letter
        case 0x30...0x39: return .number
        case 0x09...0x0D, 0x20: return .whitespace
        // ASCII punctuation by Unicode category: ! " # % & ' ( ) * , - . / : ; ? @ [ \ ] _ { }
        // plus the symbols the default pre-tokenizer adds: $ + < = > ^ ~ |  (everything printable but ` and alnum)
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x5F, 0x7B...0x7E:
            return .punctuationRun
        default: return []
        }
    }
}

/// A run of text decoded into code points, with each code point's class and byte offset.
struct ScalarText {
    var values: [UInt32] = []
    var classes: [ScalarClass] = []
    /// `byteOffsets[i]` is where code point `i` starts in the UTF-8 bytes; one extra entry holds the end.
    var byteOffsets: [Int32] = []

    /// Decodes well-formed UTF-8 (the bytes of a Swift `String`).
    init(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        values.reserveCapacity(bytes.count)
        classes.reserveCapacity(bytes.count)
        byteOffsets.reserveCapacity(bytes.count + 1)
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = UInt32(bytes[i])
            var value = b0
            var length = 1
            if b0 >= 0xF0, i + 3 < n {
                value = (b0 & 0x07) << 18 | (UInt32(bytes[i + 1]) & 0x3F) << 12
                    | (UInt32(bytes[i + 2]) & 0x3F) << 6 | (UInt32(bytes[i + 3]) & 0x3F)
                length = 4
            } else if b0 >= 0xE0, i + 2 < n {
                value = (b0 & 0x0F) << 12 | (UInt32(bytes[i + 1]) & 0x3F) << 6 | (UInt32(bytes[i + 2]) & 0x3F)
                length = 3
            } else if b0 >= 0xC0, i + 1 < n {
                value = (b0 & 0x1F) << 6 | (UInt32(bytes[i + 1]) & 0x3F)
                length = 2
            }
            values.append(value)
            classes.append(ScalarClass.of(value))
            byteOffsets.append(Int32(i))
            i += length
        }
        byteOffsets.append(Int32(n))
    }

    var count: Int { values.count }
}
