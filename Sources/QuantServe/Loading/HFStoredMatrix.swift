import CKernels
import Foundation

/// One linear weight `[rows, cols]` (`[out, in]`) as a Hugging Face folder stores it, its tensors checked.
/// The layouts are in shared/FORMATS.md:
/// - float: `weight` F32/F16/BF16 `[out, in]`;
/// - AutoAWQ GEMM: `qweight` I32 `[in, out/8]`, `qzeros` I32 `[in/G, out/8]`, `scales` F16 `[in/G, out]`
///   (G is taken from the shapes, so each matrix may have its own);
/// - bitsandbytes NF4: `weight` U8 (two codes a byte, first high), `weight.absmax` (F32, or U8 codes with
///   `weight.nested_absmax` / `weight.nested_quant_map` when double-quantized), `weight.quant_map` F32 `[16]`,
///   `weight.quant_state.bitsandbytes__nf4` (the JSON quant state as U8 bytes);
/// - QuantServe int8: `weight` I8 `[out, in]`, `weight_scale` F16 `[out, in/G]`.
enum HFStoredMatrix: Sendable {
    case float(HFTensor)
    case awq(qweight: HFTensor, qzeros: HFTensor, scales: HFTensor, group: Int)
    case nf4(NF4Weight)
    case int8(weight: HFTensor, scale: HFTensor, group: Int)

    struct NF4Weight: Sendable {
        let packed: HFTensor
        /// One per block of `blockSize` elements of the flattened weight (double quantization undone).
        let absmax: [Float]
        let quantMap: [Float]
        let blockSize: Int
    }

    /// FP32 rows of the matrix, whatever its layout (dequantized by the layout's own definition).
    func rows(cols: Int) -> MatrixRows {
        switch self {
        case .float(let t):
            return MatrixRows { range, destination in
                t.readFloats(from: range.lowerBound * cols, count: range.count * cols, into: destination)
            }
        case let .awq(qweight, qzeros, scales, group):
            let n = scales.info.shape[1], words = n / 8
            return MatrixRows { range, destination in
                let q = qweight.bytes, z = qzeros.bytes, s = scales.bytes
                for k in 0..<cols {
                    let g = k / group
                    for r in range {
                        let shift = UInt32(4 * HFStoredMatrix.awqShift[r % 8])
                        let qv = (q.loadUnaligned(fromByteOffset: 4 * (k * words + r / 8), as: UInt32.self) >> shift) & 0xF
                        let zv = (z.loadUnaligned(fromByteOffset: 4 * (g * words + r / 8), as: UInt32.self) >> shift) & 0xF
                        let scale = qs_fp16_to_fp32(s.loadUnaligned(fromByteOffset: 2 * (g * n + r), as: UInt16.self))
                        destination[(r - range.lowerBound) * cols + k] = (Float(qv) - Float(zv)) * scale
                    }
                }
            }
        case .nf4(let w):
            return MatrixRows { range, destination in
                let packed = w.packed.bytes
                for e in (range.lowerBound * cols)..<(range.upperBound * cols) {
                    let byte = packed[e / 2]
                    let code = e % 2 == 0 ? byte >> 4 : byte & 0xF
                    destination[e - range.lowerBound * cols] = w.quantMap[Int(code)] * w.absmax[e / w.blockSize]
                }
            }
        case let .int8(weight, scale, group):
            let groups = cols / group
            return MatrixRows { range, destination in
                let q = weight.bytes
                var scales = [Float](repeating: 0, count: range.count * groups)
                scales.withUnsafeMutableBufferPointer { scale.readFloats(from: range.lowerBound * groups, count: range.count * groups, into: $0.baseAddress!) }
                for i in 0..<(range.count * cols) {
                    let e = range.lowerBound * cols + i
                    destination[i] = Float(Int8(bitPattern: q[e])) * scales[i / group]
                }
            }
        }
    }

    /// The matrix in `format` without re-quantizing, when the stored layout holds exactly that packing.
    func weightMatrix(rows: Int, cols: Int, format: MatrixFormat) throws -> WeightMatrix? {
        switch self {
        case .float(let t):
            let matching = (t.info.dtype == .F16 && format.kind == QS_FORMAT_F16) || (t.info.dtype == .F32 && format.kind == QS_FORMAT_F32)
            guard matching else { return nil }
            // Copied out of the mapping into huge-page-backed memory: decode runs about 12% faster than on the
            // mapping's 4 KiB pages (measured on the 0.5B int8 model), for about 0.1 s more at load.
            return WeightMatrix(rows: rows, cols: cols, format: format) { data, _, _ in
                data.copyMemory(from: t.bytes.baseAddress!, byteCount: t.bytes.count)
            }
        case let .awq(qweight, qzeros, scales, group):
            // The kernels take groups of 32 · 2^k.
            guard format.kind == QS_FORMAT_Q4, group % 32 == 0, (group / 32) & (group / 32 - 1) == 0 else { return nil }
            return WeightMatrix(rows: rows, cols: cols, format: MatrixFormat(kind: QS_FORMAT_Q4, group: group)) { data, s, z in
                qs_awq_to_q4(data.assumingMemoryBound(to: UInt8.self), s!.assumingMemoryBound(to: UInt16.self), z!,
                             qweight.bytes.baseAddress!.assumingMemoryBound(to: Int32.self),
                             qzeros.bytes.baseAddress!.assumingMemoryBound(to: Int32.self),
                             scales.bytes.baseAddress!.assumingMemoryBound(to: UInt16.self),
                             Int64(cols), Int64(rows), Int64(group), 0, Int64(rows))
            }
        case .nf4(let w):
            let table = withUnsafeBytes(of: QS_NF4_CODE) { Array($0.bindMemory(to: Float.self)) }
            let standardMap = zip(w.quantMap, table).allSatisfy { abs($0 - $1) <= 1e-6 }
            guard format.kind == QS_FORMAT_NF4, w.blockSize == 64, cols % 64 == 0, standardMap else { return nil }
            return WeightMatrix(rows: rows, cols: cols, format: format) { data, s, _ in
                qs_bnb4_to_q4_packing(data.assumingMemoryBound(to: UInt8.self),
                                      w.packed.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), Int64(rows * cols))
                w.absmax.withUnsafeBytes { s!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
        case let .int8(weight, scale, group):
            guard format.kind == QS_FORMAT_Q8, format.group == group, scale.info.dtype == .F16 else { return nil }
            return WeightMatrix(rows: rows, cols: cols, format: format) { data, s, _ in
                data.copyMemory(from: weight.bytes.baseAddress!, byteCount: weight.bytes.count)
                s!.copyMemory(from: scale.bytes.baseAddress!, byteCount: scale.bytes.count)
            }
        }
    }

    /// Nibble position of column 8c + j inside an AutoAWQ i32.
    static let awqShift = [0, 4, 1, 5, 2, 6, 3, 7]
}

extension HFModelFolder {
    /// The stored form of the linear `name` (a Hugging Face `….weight` name) of shape `[rows, cols]`, checked.
    func storedForm(_ name: String, rows: Int, cols: Int) throws -> HFStoredMatrix {
        let base = name.hasSuffix(".weight") ? String(name.dropLast(7)) : name
        if let qweight = tensor(base + ".qweight") {
            guard rows % 8 == 0 else { throw qweight.error("is AWQ-packed but the matrix has \(rows) rows (not a multiple of 8)") }
            guard let scales = tensor(base + ".scales") else { throw missing(base + ".scales") }
            guard let qzeros = tensor(base + ".qzeros") else { throw missing(base + ".qzeros") }
            try qweight.expect([.I32], shape: [cols, rows / 8])
            guard scales.info.shape.count == 2, scales.info.shape[0] > 0, cols % scales.info.shape[0] == 0 else {
                throw scales.error("has shape \(scales.info.shape), expected [\(cols) / group, \(rows)]")
            }
            let groups = scales.info.shape[0]
            try scales.expect([.F16], shape: [groups, rows])
            try qzeros.expect([.I32], shape: [groups, rows / 8])
            return .awq(qweight: qweight, qzeros: qzeros, scales: scales, group: cols / groups)
        }
        guard let weight = tensor(name) else { throw missing(name) }
        if tensor(name + ".quant_state.bitsandbytes__fp4") != nil {
            throw weight.error("is bitsandbytes FP4, which is not supported (only NF4)")
        }
        if let state = tensor(name + ".quant_state.bitsandbytes__nf4") {
            return .nf4(try nf4Weight(weight, state: state, rows: rows, cols: cols))
        }
        if weight.info.dtype == .I8 {
            try weight.expect([.I8], shape: [rows, cols])
            guard let scale = tensor(base + ".weight_scale") else { throw missing(base + ".weight_scale") }
            guard scale.info.shape.count == 2, scale.info.shape[0] == rows, scale.info.shape[1] > 0,
                  cols % scale.info.shape[1] == 0 else {
                throw scale.error("has shape \(scale.info.shape), expected [\(rows), \(cols) / group]")
            }
            try scale.expectFloat(shape: [rows, scale.info.shape[1]])
            return .int8(weight: weight, scale: scale, group: cols / scale.info.shape[1])
        }
        try weight.expectFloat(shape: [rows, cols])
        return .float(weight)
    }

    private func nf4Weight(_ weight: HFTensor, state: HFTensor, rows: Int, cols: Int) throws -> HFStoredMatrix.NF4Weight {
        let name = weight.name
        let json = try JSONFields(path: state.file.path + " (\(state.name))", data: Data(state.bytes))
        let type = try json.string("quant_type")
        guard type == "nf4" else { throw state.error("has quant_type '\(type)' (only nf4 is supported)") }
        let blockSize = try json.int("blocksize")
        guard blockSize > 0 else { throw state.error("has blocksize \(blockSize)") }
        guard let shape = json.object["shape"] as? [Int], shape == [rows, cols] else {
            throw state.error("has shape \(json.describe(json.object["shape"])), expected [\(rows), \(cols)]")
        }
        let count = rows * cols, blocks = (count + blockSize - 1) / blockSize
        // bnb_4bit_quant_storage may be another dtype (the same bytes viewed as 16- or 32-bit values): only the
        // byte count matters.
        guard weight.info.byteRange.count == (count + 1) / 2 else {
            throw weight.error("has \(weight.info.byteRange.count) bytes; NF4 of \(count) values packs into \((count + 1) / 2)")
        }
        guard let mapTensor = tensor(name + ".quant_map") else { throw missing(name + ".quant_map") }
        try mapTensor.expect([.F32], shape: [16])
        guard let absmaxTensor = tensor(name + ".absmax") else { throw missing(name + ".absmax") }
        var absmax = [Float](repeating: 0, count: blocks)
        if absmaxTensor.info.dtype == .U8 {
            // Double quantization: absmax = nested_quant_map[code] · nested_absmax[i / nested_blocksize] + offset.
            try absmaxTensor.expect([.U8], shape: [blocks])
            let nestedBlock = try json.int("nested_blocksize")
            let offset = Float(try json.optionalDouble("nested_offset") ?? 0)
            guard nestedBlock > 0 else { throw state.error("has nested_blocksize \(nestedBlock)") }
            guard let nested = tensor(name + ".nested_absmax") else { throw missing(name + ".nested_absmax") }
            guard let nestedMap = tensor(name + ".nested_quant_map") else { throw missing(name + ".nested_quant_map") }
            try nested.expect([.F32], shape: [(blocks + nestedBlock - 1) / nestedBlock])
            try nestedMap.expect([.F32], shape: [256])
            let map = (0..<256).map { nestedMap.bytes.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            for i in 0..<blocks {
                let scale = nested.bytes.loadUnaligned(fromByteOffset: 4 * (i / nestedBlock), as: Float.self)
                absmax[i] = map[Int(absmaxTensor.bytes[i])] * scale + offset
            }
        } else {
            try absmaxTensor.expect([.F32], shape: [blocks])
            absmax.withUnsafeMutableBufferPointer { absmaxTensor.readFloats(from: 0, count: blocks, into: $0.baseAddress!) }
        }
        let quantMap = (0..<16).map { mapTensor.bytes.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        return HFStoredMatrix.NF4Weight(packed: weight, absmax: absmax, quantMap: quantMap, blockSize: blockSize)
    }
}
