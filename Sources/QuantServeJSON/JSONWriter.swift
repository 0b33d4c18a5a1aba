/// JSON text for a value: compact, members in the order given, non-ASCII written as UTF-8, numbers that are whole
/// written without a fraction, and non-finite numbers (which JSON cannot hold) written as null.
extension JSONValue {
    public var serialized: String {
        var out = ""
        out.reserveCapacity(128)
        write(to: &out)
        return out
    }

    public var bytes: [UInt8] { Array(serialized.utf8) }

    public func write(to out: inout String) {
        switch self {
        case .object(let members):
            out.append("{")
            for (k, member) in members.enumerated() {
                if k > 0 { out.append(",") }
                JSONValue.writeString(member.key, to: &out)
                out.append(":")
                member.value.write(to: &out)
            }
            out.append("}")
        case .array(let values):
            out.append("[")
            for (k, v) in values.enumerated() {
                if k > 0 { out.append(",") }
                v.write(to: &out)
            }
            out.append("]")
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .number(let n): JSONValue.writeNumber(n, to: &out)
        case .bool(let b): out.append(b ? "true" : "false")
        case .null: out.append("null")
        }
    }

    static func writeNumber(_ n: Double, to out: inout String) {
        guard n.isFinite else { out.append("null"); return }
        if n == n.rounded(), abs(n) < 9.0e15 { out.append(String(Int(n))); return }
        out.append(n.description)
    }

    public static func writeString(_ s: String, to out: inout String) {
        out.append("\"")
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
    }
}
