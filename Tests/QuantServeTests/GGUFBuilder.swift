import Foundation

/// Writes small GGUF files byte by byte for tests, including deliberately broken ones.
struct GGUFBuilder {
    var bytes: [UInt8] = []

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func i32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }

    mutating func header(tensors: Int64, kvs: Int64, version: UInt32 = 3) {
        bytes += Array("GGUF".utf8)
        u32(version)
        i64(tensors)
        i64(kvs)
    }

    mutating func kvString(_ key: String, _ value: String) { string(key); i32(8); string(value) }
    mutating func kvU32(_ key: String, _ value: UInt32) { string(key); i32(4); u32(value) }
    mutating func kvF32(_ key: String, _ value: Float) { string(key); i32(6); f32(value) }
    mutating func kvStringArray(_ key: String, _ values: [String]) {
        string(key); i32(9); i32(8); u64(UInt64(values.count))
        for v in values { string(v) }
    }

    mutating func tensorInfo(_ name: String, dims: [Int64], type: Int32, offset: UInt64) {
        string(name)
        u32(UInt32(dims.count))
        for d in dims { i64(d) }
        i32(type)
        u64(offset)
    }

    mutating func align(_ a: Int = 32) { while bytes.count % a != 0 { bytes.append(0) } }

    func write() throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("qs-test-\(UUID().uuidString).gguf").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}
