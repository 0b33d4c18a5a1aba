/// A metadata value of a GGUF file.
public enum GGUFValue: Sendable, Equatable {
    case uint(UInt64)
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])

    /// The GGUF value type codes.
    enum TypeCode: Int32 {
        case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64

        /// Smallest encoded size of one value, for rejecting impossible counts.
        var minimumSize: Int {
            switch self {
            case .uint8, .int8, .bool: 1
            case .uint16, .int16: 2
            case .uint32, .int32, .float32: 4
            case .uint64, .int64, .float64, .string: 8
            case .array: 12
            }
        }
    }

    public var intValue: Int? {
        switch self {
        case .uint(let v): v <= UInt64(Int.max) ? Int(v) : nil
        case .int(let v): Int(v)
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .float(let v): v
        case .uint(let v): Double(v)
        case .int(let v): Double(v)
        default: nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let v) = self { return v }
        return nil
    }

    public var stringValue: String? {
        if case .string(let v) = self { return v }
        return nil
    }

    public var arrayValue: [GGUFValue]? {
        if case .array(let v) = self { return v }
        return nil
    }

    /// A short human-readable rendering (arrays summarised).
    public var summary: String {
        switch self {
        case .uint(let v): "\(v)"
        case .int(let v): "\(v)"
        case .float(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .string(let v): v.count > 60 ? "\"\(v.prefix(57))...\"" : "\"\(v)\""
        case .array(let v): "[\(v.count) values]"
        }
    }
}

extension ByteReader {
    mutating func readGGUFValue(type raw: Int32, key: String, depth: Int = 0) throws -> GGUFValue {
        guard let type = GGUFValue.TypeCode(rawValue: raw) else {
            throw error("metadata '\(key)' has unknown value type \(raw)")
        }
        switch type {
        case .uint8: return .uint(UInt64(try read(UInt8.self, key)))
        case .int8: return .int(Int64(try read(Int8.self, key)))
        case .uint16: return .uint(UInt64(try read(UInt16.self, key)))
        case .int16: return .int(Int64(try read(Int16.self, key)))
        case .uint32: return .uint(UInt64(try read(UInt32.self, key)))
        case .int32: return .int(Int64(try read(Int32.self, key)))
        case .uint64: return .uint(try read(UInt64.self, key))
        case .int64: return .int(try read(Int64.self, key))
        case .float32: return .float(Double(try readFloat(key)))
        case .float64: return .float(try readDouble(key))
        case .bool:
            let b = try read(UInt8.self, key)
            guard b <= 1 else { throw error("metadata '\(key)' has bool value \(b)") }
            return .bool(b == 1)
        case .string: return .string(try readString(key))
        case .array:
            guard depth == 0 else { throw error("metadata '\(key)' nests arrays") }
            let elementRaw = try read(Int32.self, key)
            guard let elementType = GGUFValue.TypeCode(rawValue: elementRaw) else {
                throw error("metadata '\(key)' has unknown array element type \(elementRaw)")
            }
            let count = try readCount("array '\(key)'", minimumSize: elementType.minimumSize)
            var values: [GGUFValue] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try readGGUFValue(type: elementRaw, key: key, depth: depth + 1)) }
            return .array(values)
        }
    }
}
