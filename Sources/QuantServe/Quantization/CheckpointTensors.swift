import CKernels
import Foundation

/// The tensors of one linear weight in a Hugging Face folder, from a matrix in memory (see `HFStoredMatrix` for the
/// layouts they are read back from).
enum CheckpointTensors {
    typealias Entry = SafetensorsWriter.Entry

    /// AutoAWQ GEMM: `qweight`, `qzeros`, `scales` of a Q4 matrix (rows a multiple of 8).
    static func awq(_ w: WeightMatrix, base: String) -> [Entry] {
        let (n, k, g) = (w.rows, w.cols, w.format.group)
        // Each entry converts the whole matrix and keeps its part (cheap next to writing it). The closures hold `w`,
        // which keeps its buffers alive until they run.
        func part(_ body: @escaping (AWQParts, UnsafeMutableRawBufferPointer) -> Void) -> (UnsafeMutableRawBufferPointer) -> Void {
            { out in
                let parts = AWQParts(k: k, n: n, g: g)
                parts.convert(w.matrix)
                body(parts, out)
            }
        }
        return [
            Entry(name: base + ".qweight", dtype: .I32, shape: [k, n / 8], fill: part { p, out in
                out.copyMemory(from: UnsafeRawBufferPointer(start: p.qweight, count: k * n / 2))
            }),
            Entry(name: base + ".qzeros", dtype: .I32, shape: [k / g, n / 8], fill: part { p, out in
                out.copyMemory(from: UnsafeRawBufferPointer(start: p.qzeros, count: k / g * n / 2))
            }),
            Entry(name: base + ".scales", dtype: .F16, shape: [k / g, n], fill: part { p, out in
                out.copyMemory(from: UnsafeRawBufferPointer(start: p.scales, count: k / g * n * 2))
            }),
        ]
    }

    /// bitsandbytes NF4 without double quantization: `weight`, `weight.absmax`, `weight.quant_map` and the quant state.
    static func nf4(_ w: WeightMatrix, base: String) throws -> [Entry] {
        let n = w.rows * w.cols
        let state: [String: Any] = ["quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [w.rows, w.cols]]
        let stateBytes = [UInt8](try JSONSerialization.data(withJSONObject: state, options: [.sortedKeys]))
        let table = withUnsafeBytes(of: QS_NF4_CODE) { Array($0) }
        return [
            Entry(name: base + ".weight", dtype: .U8, shape: [n / 2, 1]) { out in
                qs_q4_packing_to_bnb4(out.baseAddress!.assumingMemoryBound(to: UInt8.self), w.data.typed(UInt8.self), Int64(n))
            },
            Entry(name: base + ".weight.absmax", dtype: .F32, shape: [n / 64]) { out in
                out.copyMemory(from: UnsafeRawBufferPointer(start: w.scales!.pointer, count: n / 64 * 4))
            },
            Entry(name: base + ".weight.quant_map", dtype: .F32, shape: [16]) { out in
                table.withUnsafeBytes { out.copyMemory(from: $0) }
            },
            Entry(name: base + ".weight.quant_state.bitsandbytes__nf4", dtype: .U8, shape: [stateBytes.count]) { out in
                stateBytes.withUnsafeBytes { out.copyMemory(from: $0) }
            },
        ]
    }

    /// QuantServe int8: `weight` I8 `[out, in]` and `weight_scale` F16 `[out, in / 32]`, from a Q8 matrix.
    static func int8(_ w: WeightMatrix, base: String) -> [Entry] {
        [
            Entry(name: base + ".weight", dtype: .I8, shape: [w.rows, w.cols]) { out in
                out.copyMemory(from: UnsafeRawBufferPointer(start: w.data.pointer, count: w.rows * w.cols))
            },
            Entry(name: base + ".weight_scale", dtype: .F16, shape: [w.rows, w.cols / w.format.group]) { out in
                out.copyMemory(from: UnsafeRawBufferPointer(start: w.scales!.pointer, count: out.count))
            },
        ]
    }

    /// `weight` as stored in memory (F16 or F32), or dequantized to F32 for any other format (to F16 with
    /// `half`, for the 4-bit folders, whose unquantized tensors are all F16 as their peers expect).
    static func plain(_ w: WeightMatrix, base: String, half: Bool = false) -> Entry {
        switch w.format.kind {
        case QS_FORMAT_F16, QS_FORMAT_F32:
            let dtype: SafetensorsDType = w.format.kind == QS_FORMAT_F16 ? .F16 : .F32
            return Entry(name: base + ".weight", dtype: dtype, shape: [w.rows, w.cols]) { out in
                out.copyMemory(from: UnsafeRawBufferPointer(start: w.data.pointer, count: out.count))
            }
        default:
            return Entry(name: base + ".weight", dtype: half ? .F16 : .F32, shape: [w.rows, w.cols]) { out in
                if !half {
                    w.dequantizeRows(0..<w.rows, into: out.baseAddress!.assumingMemoryBound(to: Float.self))
                    return
                }
                var floats = [Float](repeating: 0, count: w.rows * w.cols)
                floats.withUnsafeMutableBufferPointer { w.dequantizeRows(0..<w.rows, into: $0.baseAddress!) }
                qs_convert_fp32_to_fp16(out.baseAddress!.assumingMemoryBound(to: UInt16.self), floats, Int64(floats.count))
            }
        }
    }

    /// `weight` as F16 from a source's own FP32 rows (embeddings and the output matrix of the 4-bit folders, which
    /// AutoAWQ and bitsandbytes keep unquantized).
    static func float16(rows reader: MatrixRows, rows: Int, cols: Int, name: String) -> Entry {
        Entry(name: name, dtype: .F16, shape: [rows, cols]) { out in
            let chunk = max(1, (1 << 20) / cols)
            let staging = UnsafeMutablePointer<Float>.allocate(capacity: min(chunk, rows) * cols)
            defer { staging.deallocate() }
            let half = out.baseAddress!.assumingMemoryBound(to: UInt16.self)
            var r = 0
            while r < rows {
                let end = min(rows, r + chunk)
                try reader.read(r..<end, staging)
                qs_convert_fp32_to_fp16(half + r * cols, staging, Int64((end - r) * cols))
                r = end
            }
        }
    }

    /// A norm or bias: F32, or F16 with `half`.
    static func vector(_ v: [Float], name: String, half: Bool = false) -> Entry {
        if half {
            return Entry(name: name, dtype: .F16, shape: [v.count]) { out in
                qs_convert_fp32_to_fp16(out.baseAddress!.assumingMemoryBound(to: UInt16.self), v, Int64(v.count))
            }
        }
        return Entry(name: name, dtype: .F32, shape: [v.count]) { out in v.withUnsafeBytes { out.copyMemory(from: $0) } }
    }

    /// For a llama GGUF's Q or K (rows permuted so RoPE pairs adjacent values): the order of rows that undoes the
    /// converter's permutation, giving Hugging Face's layout (NEOX pairing). Row (h, s, i) of the Hugging Face head h,
    /// half s, index i was GGUF row h·d + 2i + s.
    static func unpermutedRowOrder(heads: Int, headDim d: Int) -> [Int] {
        var order: [Int] = []
        order.reserveCapacity(heads * d)
        for h in 0..<heads { for s in 0..<2 { for i in 0..<(d / 2) { order.append(h * d + 2 * i + s) } } }
        return order
    }
}

/// The three AutoAWQ tensors of one matrix, converted from its Q4 parts.
private final class AWQParts {
    let k, n, g: Int
    let qweight: UnsafeMutablePointer<Int32>
    let qzeros: UnsafeMutablePointer<Int32>
    let scales: UnsafeMutablePointer<UInt16>

    init(k: Int, n: Int, g: Int) {
        (self.k, self.n, self.g) = (k, n, g)
        qweight = .allocate(capacity: k * n / 8)
        qzeros = .allocate(capacity: k / g * n / 8)
        scales = .allocate(capacity: k / g * n)
    }

    func convert(_ m: qs_matrix) {
        qs_q4_to_awq(qweight, qzeros, scales, m.data.assumingMemoryBound(to: UInt8.self),
                     m.scales.assumingMemoryBound(to: UInt16.self), m.zeros, Int64(k), Int64(n), Int64(g), 0, Int64(n))
    }

    deinit {
        qweight.deallocate()
        qzeros.deallocate()
        scales.deallocate()
    }
}

extension WeightMatrix {
    /// The matrix with its rows in `order` (row i of the result is row `order[i]`); every format's scales and zero
    /// points are per row, so packed rows move as they are.
    func permutingRows(_ order: [Int]) -> WeightMatrix {
        let k = format.kind, c = Int64(cols), g = Int64(format.group)
        let dataRow = Int(qs_matrix_data_bytes(k, 1, c)), scaleRow = Int(qs_matrix_scale_bytes(k, 1, c, g))
        let zeroRow = Int(qs_matrix_zero_bytes(k, 1, c, g))
        let source = rowMajor
        return WeightMatrix(rows: rows, cols: cols, format: format) { data, scales, zeros in
            for (i, r) in order.enumerated() {
                (data + i * dataRow).copyMemory(from: source.data.pointer + r * dataRow, byteCount: dataRow)
                if let scales { (scales + i * scaleRow).copyMemory(from: source.scales!.pointer + r * scaleRow, byteCount: scaleRow) }
                if let zeros { (zeros + i * zeroRow).update(from: source.zeros!.typed(UInt8.self) + r * zeroRow, count: zeroRow) }
            }
        }
    }
}
