/// GPT-2's byte↔unicode table: every byte maps to a printable code point so that byte-level BPE vocabularies can
/// be stored as text. Printable Latin-1 bytes (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) map to themselves; the other 68 bytes
/// map, in byte order, to U+0100, U+0101, … (so space, 0x20, becomes `Ġ` U+0120).
public enum ByteLevelEncoding {
    /// `scalar[b]` is the code point that stands for byte `b`.
    public static let scalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if isPrintable(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// `utf8[b]` is the UTF-8 encoding of `scalars[b]` (one or two bytes).
    static let utf8: [[UInt8]] = scalars.map { Array(String($0).utf8) }

    @inline(__always)
    static func isPrintable(_ b: Int) -> Bool {
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    }

    /// The byte a code point stands for, or nil when it is not in the table.
    @inline(__always)
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = scalar.value
        if v < 256 {
            return isPrintable(Int(v)) ? UInt8(v) : nil
        }
        if v < 256 + 68 { return nonPrintableBytes[Int(v) - 256] }
        return nil
    }

    /// The 68 non-printable bytes in byte order (the bytes U+0100… stand for).
    private static let nonPrintableBytes: [UInt8] = (0..<256).filter { !isPrintable($0) }.map { UInt8($0) }

    /// Encodes raw bytes as the text a byte-level vocabulary stores.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalars[Int(b)]) }
        return String(s)
    }

    /// Decodes vocabulary text back to bytes. Code points outside the table (which a well-formed vocabulary does
    /// not contain) are passed through as their own UTF-8 bytes.
    public static func decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if let b = byte(for: scalar) {
                out.append(b)
            } else {
                out.append(contentsOf: String(scalar).utf8)
            }
        }
        return out
    }
}
