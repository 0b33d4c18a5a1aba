import Foundation
import CKernels
import COpenBLAS

/// A weight matrix `W [rows, cols]` (Hugging Face `[out, in]`), row-major, in one storage format.
public struct WeightMatrix: Sendable {
    public let rows: Int
    public let cols: Int
    let format: MatrixFormat
    let data: AlignedBuffer
    let scales: AlignedBuffer?
    let zeros: AlignedBuffer?
    /// Where the parts sit: row-major, or x16 (sixteen rows interleaved, for the `vnni` kernels).
    let layout: qs_layout

    /// Fills the matrix from FP32 rows that `fill(rowRange, destination)` writes, a chunk of rows at a time.
    /// `clip`, for Q4, gives each group's clipping factor (AWQ's clipping search); nil keeps min and max.
    init(rows: Int, cols: Int, format: MatrixFormat, clip: [Float]? = nil,
         fill: (_ rows: Range<Int>, _ destination: UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        self.rows = rows
        self.cols = cols
        self.format = format
        layout = QS_LAYOUT_ROWS
        precondition(clip == nil || clip!.count == rows * (cols / format.group), "one clip bound per (row, group)")
        let k = format.kind
        data = AlignedBuffer(byteCount: Int(qs_matrix_data_bytes(k, Int64(rows), Int64(cols))), zeroed: false)
        let scaleBytes = Int(qs_matrix_scale_bytes(k, Int64(rows), Int64(cols), Int64(format.group)))
        let zeroBytes = Int(qs_matrix_zero_bytes(k, Int64(rows), Int64(cols), Int64(format.group)))
        scales = scaleBytes > 0 ? AlignedBuffer(byteCount: scaleBytes, zeroed: false) : nil
        zeros = zeroBytes > 0 ? AlignedBuffer(byteCount: zeroBytes, zeroed: false) : nil
        if k == QS_FORMAT_F32 {
            try fill(0..<rows, data.typed(Float.self))
            return
        }
        // Through an FP32 staging buffer of at most ~4 MiB.
        let chunk = max(1, (1 << 20) / max(cols, 1))
        let staging = UnsafeMutablePointer<Float>.allocate(capacity: min(chunk, rows) * cols)
        defer { staging.deallocate() }
        var r = 0
        while r < rows {
            let end = min(rows, r + chunk)
            try fill(r..<end, staging)
            quantize(rows: r..<end, from: staging, clip: clip)
            r = end
        }
    }

    private func quantize(rows range: Range<Int>, from src: UnsafePointer<Float>, clip: [Float]?) {
        let n = Int64(range.count), c = Int64(cols), r0 = range.lowerBound
        let groups = cols / format.group
        switch format.kind {
        case QS_FORMAT_F16:
            qs_convert_fp32_to_fp16(data.typed(UInt16.self) + r0 * cols, src, n * c)
        case QS_FORMAT_Q8:
            qs_quantize_q8(data.typed(Int8.self) + r0 * cols, scales!.typed(UInt16.self) + r0 * groups, src, n, c)
        case QS_FORMAT_Q4:
            let clipPointer = clip.map { c in c.withUnsafeBufferPointer { $0.baseAddress! + r0 * groups } }
            qs_quantize_q4(data.typed(UInt8.self) + r0 * cols / 2, scales!.typed(UInt16.self) + r0 * groups,
                           zeros!.typed(UInt8.self) + r0 * groups, src, n, c, Int64(format.group), clipPointer)
        default:
            qs_quantize_nf4(data.typed(UInt8.self) + r0 * cols / 2, scales!.typed(Float.self) + r0 * groups, src, n, c)
        }
    }

    public var byteCount: Int { data.byteCount + (scales?.byteCount ?? 0) + (zeros?.byteCount ?? 0) }

    /// The C view of the matrix (pointers into this matrix's buffers, valid while it lives).
    var matrix: qs_matrix {
        qs_matrix(format: format.kind, rows: Int64(rows), cols: Int64(cols), group: Int64(format.group),
                  data: data.pointer, scales: scales?.pointer, zeros: zeros?.typed(UInt8.self), layout: layout,
                  native_type: format.native?.rawValue ?? 0)
    }

    /// `W @ x [n, cols] -> out [n, rows]`.
    /// The fused kernels where `usesFusedKernels` says so, else OpenBLAS on FP32 tiles.
    func apply(_ x: UnsafePointer<Float>, n: Int, into out: UnsafeMutablePointer<Float>, context: ComputeContext,
               scratch: ScratchSpace) {
        var m = matrix
        if usesFusedKernels(n: n, context: context) {
            qs_matmul(context.pool, context.variant, out, Int64(rows), &m, x, Int64(n),
                      scratch.activations(floats: Int(qs_activation_scratch_floats(Int64(n), Int64(cols)))))
            return
        }
        if format.kind == QS_FORMAT_F32 {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(rows), Int32(cols), 1,
                        x, Int32(cols), data.typed(Float.self), Int32(cols), 0, out, Int32(rows))
            return
        }
        // Widen a tile of rows to FP32, multiply it, move on.
        let tile = scratch.tile
        let tileRows = max(16, min(rows, tile.count / cols))
        var r = 0
        while r < rows {
            let end = min(rows, r + tileRows)
            qs_matrix_dequantize_rows(tile.baseAddress!, &m, Int64(r), Int64(end))
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(end - r), Int32(cols), 1,
                        x, Int32(cols), tile.baseAddress!, Int32(cols), 0, out + r, Int32(rows))
            r = end
        }
    }

    /// Up to this many activation rows FP32/FP16 use the fused kernels rather than OpenBLAS on AVX2 machines.
    static let gemvMaxRows = 16

    /// Whether `W @ x` with n activation rows takes our fused kernels (a row's result then never depends on n):
    /// always for quantized formats (unless QS_QUANTIZED_PREFILL=blas), and for FP32/FP16 up to `gemvMaxRows` rows,
    /// or at any n with AVX-512, whose tiled kernel outruns widening to FP32 for OpenBLAS.
    func usesFusedKernels(n: Int, context: ComputeContext) -> Bool {
        if format.isQuantized { return !WeightMatrix.quantizedPrefillUsesBLAS }
        return n <= WeightMatrix.gemvMaxRows || context.variant.rawValue >= QS_VARIANT_AVX512.rawValue
    }

    /// QS_QUANTIZED_PREFILL=blas sends large quantized batches through OpenBLAS on dequantized tiles instead of
    /// the integer kernels (for measuring the two; the integer kernels keep rows batch-invariant).
    static let quantizedPrefillUsesBLAS = ProcessInfo.processInfo.environment["QS_QUANTIZED_PREFILL"] == "blas"

    /// Row `row` of the matrix as FP32 (embedding look-up).
    func copyRow(_ row: Int, into destination: UnsafeMutablePointer<Float>) {
        var m = matrix
        qs_matrix_dequantize_rows(destination, &m, Int64(row), Int64(row + 1))
    }
}

/// Scratch memory the matrix products borrow: an FP32 tile for the OpenBLAS path and room for quantized activations.
final class ScratchSpace {
    private let tileBuffer: AlignedBuffer
    let tile: UnsafeMutableBufferPointer<Float>
    private var activationBuffer: AlignedBuffer
    private var activationCount: Int

    init(tileFloats: Int) {
        tileBuffer = AlignedBuffer(count: tileFloats, of: Float.self)
        tile = UnsafeMutableBufferPointer(start: tileBuffer.typed(Float.self), count: tileFloats)
        activationCount = 1 << 16
        activationBuffer = AlignedBuffer(count: activationCount, of: Float.self)
    }

    /// At least `floats` floats; grows (rarely: the largest batch sets the size) and is reused.
    func activations(floats: Int) -> UnsafeMutablePointer<Float> {
        if floats > activationCount {
            activationCount = max(floats, activationCount * 2)
            activationBuffer = AlignedBuffer(count: activationCount, of: Float.self)
        }
        return activationBuffer.typed(Float.self)
    }
}
