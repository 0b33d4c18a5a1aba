import Foundation

/// Writes a safetensors file (`u64` header length, JSON header padded to 8 bytes, data) one tensor at a time, so
/// no more than one tensor's bytes are held at once. Written to a temporary name and renamed when complete.
struct SafetensorsWriter {
    struct Entry {
        let name: String
        let dtype: SafetensorsDType
        let shape: [Int]
        /// Fills exactly `byteCount` bytes.
        let fill: (UnsafeMutableRawBufferPointer) throws -> Void

        var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
    }

    static func write(_ entries: [Entry], metadata: [String: String], to path: String) throws {
        var header = "{\"__metadata__\":" + (try jsonText(metadata))
        var offset = 0
        for e in entries {
            let shape = e.shape.map(String.init).joined(separator: ",")
            header += ",\(try jsonText(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.byteCount)]}"
            offset += e.byteCount
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        headerBytes += Array(repeating: UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8)

        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
            throw ModelFileError(path: temporary, "cannot create")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
        do {
            var length = UInt64(headerBytes.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: Data(headerBytes))
            for e in entries {
                var bytes = Data(count: e.byteCount)
                try bytes.withUnsafeMutableBytes { try e.fill($0) }
                try handle.write(contentsOf: bytes)
            }
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
    }

    private static func jsonText(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]), as: UTF8.self)
    }
}
