import CKernels
import Foundation

/// Element types of safetensors files.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL

    public var byteSize: Int {
        switch self {
        case .F64, .I64, .U64: 8
        case .F32, .I32, .U32: 4
        case .F16, .BF16, .I16, .U16: 2
        case .I8, .U8, .BOOL: 1
        }
    }
}

/// One tensor of a safetensors file; `byteRange` is absolute in the file and validated to lie inside it.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    public let byteRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file (`u64` header length, JSON header, data), memory-mapped. Every offset, size and shape in
/// the header is checked on open, so a corrupt file gives an error naming the file and the problem.
public struct SafetensorsFile: Sendable {
    public let path: String
    public let file: MappedFile
    public let metadata: [String: String]
    /// Tensors in the order of their data.
    public let tensors: [SafetensorsTensorInfo]
    private let index: [String: Int]

    /// Headers larger than this are refused (the format's own readers use the same bound).
    static let maximumHeaderBytes = 100 << 20

    public init(path: String) throws {
        file = try MappedFile(path: path)
        self.path = path
        let bytes = file.bytes
        func fail(_ problem: String) -> ModelFileError { ModelFileError(path: path, problem) }
        guard bytes.count >= 8 else { throw fail("too short for a safetensors header") }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(min(bytes.count - 8, SafetensorsFile.maximumHeaderBytes)) else {
            throw fail("header length \(headerLength) runs past the end of the file or over \(SafetensorsFile.maximumHeaderBytes) bytes")
        }
        let dataStart = 8 + Int(headerLength)
        let headerData = Data(bytes[8..<dataStart])
        guard let json = try? JSONSerialization.jsonObject(with: headerData), let header = json as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var infos: [SafetensorsTensorInfo] = []
        let dataSize = bytes.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let entry = value as? [String: Any] else { throw fail("tensor '\(name)' is not a JSON object") }
            guard let rawType = entry["dtype"] as? String, let dtype = SafetensorsDType(rawValue: rawType) else {
                throw fail("tensor '\(name)' has unknown dtype \(entry["dtype"] ?? "none")")
            }
            guard let shape = entry["shape"] as? [Int], shape.allSatisfy({ $0 >= 0 }), shape.count <= 8 else {
                throw fail("tensor '\(name)' has an invalid shape \(entry["shape"] ?? "none")")
            }
            guard let offsets = entry["data_offsets"] as? [Int], offsets.count == 2, offsets[0] >= 0,
                  offsets[0] <= offsets[1], offsets[1] <= dataSize else {
                throw fail("tensor '\(name)' has data_offsets \(entry["data_offsets"] ?? "none") outside the \(dataSize) bytes of data")
            }
            let (count, overflow) = shape.reduce((1, false)) { acc, d in
                let m = acc.0.multipliedReportingOverflow(by: d)
                return (m.partialValue, acc.1 || m.overflow)
            }
            let (size, sizeOverflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, !sizeOverflow, size == offsets[1] - offsets[0] else {
                throw fail("tensor '\(name)' has \(offsets[1] - offsets[0]) bytes but shape \(shape) of \(dtype.rawValue) needs \(overflow || sizeOverflow ? "more than can be counted" : "\(size)")")
            }
            infos.append(SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape,
                                               byteRange: (dataStart + offsets[0])..<(dataStart + offsets[1])))
        }
        infos.sort { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
        for (a, b) in zip(infos, infos.dropFirst()) where a.byteRange.upperBound > b.byteRange.lowerBound {
            throw fail("tensors '\(a.name)' and '\(b.name)' overlap")
        }
        self.metadata = metadata
        tensors = infos
        index = Dictionary(uniqueKeysWithValues: infos.enumerated().map { ($1.name, $0) })
    }

    public func tensor(_ name: String) -> SafetensorsTensorInfo? { index[name].map { tensors[$0] } }

    /// The raw bytes of a tensor, inside the mapping (valid while this file is alive).
    public func data(of tensor: SafetensorsTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[tensor.byteRange])
    }

    /// A floating-point tensor (F32, F16 or BF16) as FP32.
    public func floats(_ name: String) throws -> [Float] {
        guard let t = tensor(name) else { throw ModelFileError(path: path, "missing tensor '\(name)'") }
        let raw = data(of: t)
        let n = t.elementCount
        return try [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch t.dtype {
            case .F32: for i in 0..<n { out[i] = raw.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
            case .F16:
                let halves = (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self) }
                qs_convert_fp16_to_fp32(out.baseAddress, halves, Int64(n))
            case .BF16:
                for i in 0..<n { out[i] = qs_bf16_to_fp32(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
            default:
                throw ModelFileError(path: path, "tensor '\(name)' is \(t.dtype.rawValue), not a floating-point type")
            }
            initialized = n
        }
    }
}
