/// A bounds-checked little-endian cursor over untrusted bytes. Every read checks the remaining length
/// first, so a corrupt count or length becomes an error, never an out-of-bounds read or a huge allocation.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    private(set) var offset: Int = 0

    init(bytes: UnsafeRawBufferPointer, path: String, offset: Int = 0) {
        self.bytes = bytes
        self.path = path
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    func error(_ problem: String) -> ModelFileError { ModelFileError(path: path, problem) }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        guard remaining >= MemoryLayout<T>.size else {
            throw error("truncated while reading \(what()) at byte \(offset)")
        }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: value)
    }

    mutating func readFloat(_ what: @autoclosure () -> String) throws -> Float {
        Float(bitPattern: try read(UInt32.self, what()))
    }

    mutating func readDouble(_ what: @autoclosure () -> String) throws -> Double {
        Double(bitPattern: try read(UInt64.self, what()))
    }

    /// A GGUF string: u64 length, then that many bytes (no terminator).
    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let length = try read(UInt64.self, what())
        guard length <= UInt64(remaining) else {
            throw error("string length \(length) for \(what()) runs past the end of the file")
        }
        let start = offset
        offset += Int(length)
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
    }

    /// A count of elements each taking at least `minimumSize` bytes: rejects counts the file cannot hold.
    mutating func readCount(_ what: @autoclosure () -> String, minimumSize: Int) throws -> Int {
        let count = try read(UInt64.self, what())
        guard count <= UInt64(remaining / max(minimumSize, 1)) else {
            throw error("\(what()) count \(count) is larger than the file can hold")
        }
        return Int(count)
    }
}
