import CKernels

/// Turns GGUF tensor data of any supported type into FP32.
public enum Dequantizer {
    /// Dequantizes `count` values (a multiple of the type's block size) from `source` into `destination`.
    public static func dequantize(
        _ type: GGMLType, from source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int
    ) throws {
        let n = Int64(count)
        switch type {
        case .f32: destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
        case .f16: qs_convert_fp16_to_fp32(destination, source.assumingMemoryBound(to: UInt16.self), n)
        case .bf16: qs_convert_bf16_to_fp32(destination, source.assumingMemoryBound(to: UInt16.self), n)
        case .q8_0: qs_dequantize_q8_0(destination, source, n)
        case .q4_0: qs_dequantize_q4_0(destination, source, n)
        case .q5_0: qs_dequantize_q5_0(destination, source, n)
        case .q4_K: qs_dequantize_q4_k(destination, source, n)
        case .q6_K: qs_dequantize_q6_k(destination, source, n)
        case .q4_1: qs_dequantize_q4_1(destination, source, n)
        case .q5_1: qs_dequantize_q5_1(destination, source, n)
        case .q2_K: qs_dequantize_q2_k(destination, source, n)
        case .q3_K: qs_dequantize_q3_k(destination, source, n)
        case .q5_K: qs_dequantize_q5_k(destination, source, n)
        default: throw DequantizerError.unsupported(type)
        }
    }

    /// Dequantizes one row (`tensor.rowLength` values) of a tensor.
    public static func dequantizeRow(
        _ row: Int, of tensor: GGUFTensorInfo, in file: GGUFFile, into destination: UnsafeMutablePointer<Float>
    ) throws {
        precondition(row >= 0 && row < tensor.rowCount, "row out of range")
        let rowBytes = tensor.rowLength / tensor.type.blockSize * tensor.type.blockBytes
        let base = file.data(of: tensor).baseAddress! + row * rowBytes
        try dequantize(tensor.type, from: base, into: destination, count: tensor.rowLength)
    }

    /// The whole tensor as FP32.
    public static func dequantize(_ tensor: GGUFTensorInfo, in file: GGUFFile) throws -> [Float] {
        let data = file.data(of: tensor)
        return try [Float](unsafeUninitializedCapacity: tensor.elementCount) { buffer, initialized in
            try dequantize(tensor.type, from: data.baseAddress!, into: buffer.baseAddress!, count: tensor.elementCount)
            initialized = tensor.elementCount
        }
    }
}

public enum DequantizerError: Error, CustomStringConvertible {
    case unsupported(GGMLType)

    public var description: String {
        switch self {
        case .unsupported(let t): "tensor type \(t.name) cannot be dequantized (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)"
        }
    }
}
