import Foundation
import CKernels

/// A GGUF file as a model source: configuration from its metadata through the architecture registry, tensors under
/// their own names, dequantized from any supported GGML type.
extension GGUFFile: TensorSource {
    public func configuration() throws -> ModelConfiguration {
        guard let name = architecture else { throw error("missing metadata 'general.architecture'") }
        guard let architecture = Architecture.named(name) else {
            let known = Architecture.registry.keys.sorted().joined(separator: ", ")
            throw error("unsupported architecture '\(name)' (supported: \(known))")
        }
        return try architecture.configuration(self)
    }

    /// GGUF weights are never in one of the runtime's packed formats: every level but `native` quantizes on load.
    public var storedLevel: QuantLevel? { nil }

    /// `native` for a file with quantized matrices (run at its own quantization), else the default.
    public var defaultLevel: QuantLevel {
        tensors.contains { $0.dimensions.count == 2 && ![.f32, .f16, .bf16].contains($0.type) } ? .native : .default
    }

    /// Bytes of resident weights at the native level: matrices as stored (BF16 widened to F32), vectors in F32.
    public var nativeWeightBytes: Int {
        tensors.reduce(0) { sum, t in
            sum + (t.dimensions.count == 1 ? t.elementCount * 4 : t.type == .bf16 ? t.byteCount * 2 : t.byteCount)
        }
    }

    /// Bytes of each tensor type among the file's tensors, largest first.
    public var typeBytes: [(type: GGMLType, tensors: Int, bytes: Int)] {
        var sums: [GGMLType: (Int, Int)] = [:]
        for t in tensors { sums[t.type, default: (0, 0)].0 += 1; sums[t.type, default: (0, 0)].1 += t.byteCount }
        return sums.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.bytes > $1.bytes }
    }

    public var summary: String {
        let bytes = tensors.reduce(0) { $0 + $1.byteCount }
        var types: [String: Int] = [:]
        for t in tensors { types[t.type.name, default: 0] += 1 }
        return "GGUF v\(version), \(tensors.count) tensors, "
            + String(format: "%.1f MiB", Double(bytes) / 1_048_576) + " of tensor data ("
            + types.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
    }

    var cacheIdentity: String { fileIdentity([path]) }

    func contains(_ name: String) -> Bool { tensor(name) != nil }

    /// The tensor `name` with GGUF dimensions `expected`, of a type the dequantizer reads.
    func checkedTensor(_ name: String, _ expected: [Int]) throws -> GGUFTensorInfo {
        guard let t = tensor(name) else { throw error("missing tensor '\(name)'") }
        guard t.dimensions == expected else {
            throw error("tensor '\(name)' has shape \(t.dimensions), expected \(expected)")
        }
        guard t.type.isDequantizable else {
            throw error("tensor '\(name)' has type \(t.type.name), which cannot be loaded (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)")
        }
        return t
    }

    func vector(_ name: String, count: Int) throws -> [Float] {
        try Dequantizer.dequantize(checkedTensor(name, [count]), in: self)
    }

    /// GGUF stores a `[rows, cols]` matrix as `ne = [cols, rows]`.
    func matrixRows(_ name: String, rows: Int, cols: Int) throws -> MatrixRows {
        let t = try checkedTensor(name, [cols, rows])
        let rowBytes = cols / t.type.blockSize * t.type.blockBytes
        return MatrixRows { range, destination in
            try Dequantizer.dequantize(t.type, from: data(of: t).baseAddress! + range.lowerBound * rowBytes,
                                       into: destination, count: range.count * cols)
        }
    }

    func storedMatrix(_ name: String, rows: Int, cols: Int, level: QuantLevel, format: MatrixFormat) throws -> WeightMatrix? {
        nil
    }

    /// Quantized blocks copied as stored; F32 and F16 as themselves; BF16 widened to F32 (exactly: no kernel reads
    /// BF16 yet).
    func nativeMatrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
        let t = try checkedTensor(name, [cols, rows])
        let bytes = data(of: t)
        switch t.type {
        case .f32, .f16:
            return WeightMatrix(rows: rows, cols: cols, format: MatrixFormat(kind: t.type == .f32 ? QS_FORMAT_F32 : QS_FORMAT_F16, group: 1)) { data, _, _ in
                data.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            }
        case .bf16:
            return WeightMatrix(rows: rows, cols: cols, format: MatrixFormat(kind: QS_FORMAT_F32, group: 1)) { data, _, _ in
                qs_convert_bf16_to_fp32(data.assumingMemoryBound(to: Float.self), bytes.baseAddress!.assumingMemoryBound(to: UInt16.self), Int64(rows * cols))
            }
        default:
            guard let m = WeightMatrix(rows: rows, cols: cols, native: t.type, bytes: bytes) else {
                throw error("tensor '\(name)' has type \(t.type.name), which the native level cannot run; choose --quant int8 "
                            + "(or fp16, int4, nf4) to convert it")
            }
            return m
        }
    }

    func releasePages(_ name: String) {
        guard let t = tensor(name) else { return }
        file.releasePages(t.fileOffset..<(t.fileOffset + t.byteCount))
    }
}
