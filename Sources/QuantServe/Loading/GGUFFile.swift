/// One tensor's description in a GGUF file. `dimensions[0]` is the innermost, contiguous one.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    public let dimensions: [Int]
    public let type: GGMLType
    /// Byte offset from the start of the file, validated to lie inside it.
    public let fileOffset: Int
    public let byteCount: Int

    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Rows as ggml counts them: all dimensions but the first.
    public var rowCount: Int { dimensions.dropFirst().reduce(1, *) }
    public var rowLength: Int { dimensions.first ?? 1 }
}

/// A GGUF (version 2 or 3) model file, memory-mapped. Every count, size and offset is validated on open.
public struct GGUFFile: Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    private let tensorIndex: [String: Int]
    public let file: MappedFile

    public init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        self.path = file.path
        var reader = ByteReader(bytes: file.bytes, path: file.path)
        let magic = try reader.read(UInt32.self, "magic")
        guard magic == 0x4655_4747 else { throw reader.error("not a GGUF file (bad magic)") }  // "GGUF"
        version = try reader.read(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw reader.error("unsupported GGUF version \(version)") }
        // A tensor info takes at least 8 (name) + 4 + 8 + 4 + 8 bytes, a key/value at least 8 + 4 + 1.
        let tensorCount = try reader.readCount("tensor", minimumSize: 32)
        let kvCount = try reader.readCount("metadata", minimumSize: 13)

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        for _ in 0..<kvCount {
            let key = try reader.readString("metadata key")
            let type = try reader.read(Int32.self, "type of '\(key)'")
            guard metadata[key] == nil else { throw reader.error("metadata key '\(key)' appears twice") }
            metadata[key] = try reader.readGGUFValue(type: type, key: key)
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard let a = value.intValue, a > 0, a <= 1 << 20, a & (a - 1) == 0 else {
                throw reader.error("general.alignment must be a power of two, got \(value.summary)")
            }
            alignment = a
        }

        struct RawInfo { var name: String; var dims: [Int]; var type: GGMLType; var offset: UInt64 }
        var raw: [RawInfo] = []
        raw.reserveCapacity(tensorCount)
        for _ in 0..<tensorCount {
            let name = try reader.readString("tensor name")
            let nDims = try reader.read(UInt32.self, "dimension count of '\(name)'")
            guard (1...4).contains(nDims) else { throw reader.error("tensor '\(name)' has \(nDims) dimensions (1 to 4 allowed)") }
            var dims: [Int] = []
            for d in 0..<Int(nDims) {
                let ne = try reader.read(Int64.self, "dimension \(d) of '\(name)'")
                guard ne > 0, ne <= Int64(Int32.max) else { throw reader.error("tensor '\(name)' has dimension \(d) = \(ne)") }
                dims.append(Int(ne))
            }
            let typeRaw = try reader.read(Int32.self, "type of '\(name)'")
            guard let type = GGMLType(rawValue: typeRaw) else {
                throw reader.error("tensor '\(name)' has unknown ggml type \(typeRaw)")
            }
            let offset = try reader.read(UInt64.self, "offset of '\(name)'")
            raw.append(RawInfo(name: name, dims: dims, type: type, offset: offset))
        }

        let dataStart = (reader.offset + alignment - 1) / alignment * alignment
        guard dataStart <= file.bytes.count else { throw reader.error("data section starts past the end of the file") }
        var infos: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        for t in raw {
            let (count, overflow) = t.dims.reduce((1, false)) { acc, d in
                let m = acc.0.multipliedReportingOverflow(by: d)
                return (m.partialValue, acc.1 || m.overflow)
            }
            guard !overflow, count <= 1 << 40 else { throw reader.error("tensor '\(t.name)' has too many elements") }
            guard t.dims[0] % t.type.blockSize == 0 else {
                throw reader.error("tensor '\(t.name)' row length \(t.dims[0]) is not a multiple of \(t.type.name)'s block size \(t.type.blockSize)")
            }
            let bytes = count / t.type.blockSize * t.type.blockBytes
            guard t.offset % UInt64(alignment) == 0 else {
                throw reader.error("tensor '\(t.name)' offset \(t.offset) is not aligned to \(alignment)")
            }
            guard t.offset <= UInt64(file.bytes.count - dataStart), bytes <= file.bytes.count - dataStart - Int(t.offset) else {
                throw reader.error("tensor '\(t.name)' (\(bytes) bytes at data offset \(t.offset)) runs past the end of the file")
            }
            guard index[t.name] == nil else { throw reader.error("tensor '\(t.name)' appears twice") }
            index[t.name] = infos.count
            infos.append(GGUFTensorInfo(name: t.name, dimensions: t.dims, type: t.type,
                                        fileOffset: dataStart + Int(t.offset), byteCount: bytes))
        }
        tensors = infos
        tensorIndex = index
    }

    public func tensor(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The raw bytes of a tensor, inside the mapping (valid while this file is alive).
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[tensor.fileOffset..<(tensor.fileOffset + tensor.byteCount)])
    }

    // MARK: metadata access

    public var architecture: String? { metadata["general.architecture"]?.stringValue }

    func error(_ problem: String) -> ModelFileError { ModelFileError(path: path, problem) }

    public func int(_ key: String) throws -> Int {
        guard let value = metadata[key] else { throw error("missing metadata '\(key)'") }
        guard let v = value.intValue else { throw error("metadata '\(key)' is not an integer (\(value.summary))") }
        return v
    }

    public func optionalInt(_ key: String) throws -> Int? {
        metadata[key] == nil ? nil : try int(key)
    }

    public func double(_ key: String) throws -> Double {
        guard let value = metadata[key] else { throw error("missing metadata '\(key)'") }
        guard let v = value.doubleValue else { throw error("metadata '\(key)' is not a number (\(value.summary))") }
        return v
    }

    public func optionalDouble(_ key: String) throws -> Double? {
        metadata[key] == nil ? nil : try double(key)
    }

    public func optionalBool(_ key: String) throws -> Bool? {
        guard let value = metadata[key] else { return nil }
        guard let v = value.boolValue else { throw error("metadata '\(key)' is not a bool (\(value.summary))") }
        return v
    }

    public func optionalString(_ key: String) throws -> String? {
        guard let value = metadata[key] else { return nil }
        guard let v = value.stringValue else { throw error("metadata '\(key)' is not a string (\(value.summary))") }
        return v
    }
}
