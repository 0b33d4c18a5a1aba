import CKernels
import COpenBLAS

/// How a weight matrix is held in memory.
public enum WeightPrecision: String, Sendable, CaseIterable {
    case f32
    case fp16

    var bytesPerValue: Int { self == .f32 ? 4 : 2 }
}

/// A weight matrix `W [rows, cols]` (Hugging Face `[out, in]`), row-major, at one precision.
public struct WeightMatrix: Sendable {
    public let rows: Int
    public let cols: Int
    public let precision: WeightPrecision
    let storage: AlignedBuffer

    /// Fills a matrix row by row from FP32 rows produced by `fill(row range, destination)`.
    init(rows: Int, cols: Int, precision: WeightPrecision,
         fill: (_ rows: Range<Int>, _ destination: UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        self.rows = rows
        self.cols = cols
        self.precision = precision
        storage = AlignedBuffer(byteCount: rows * cols * precision.bytesPerValue, zeroed: false)
        switch precision {
        case .f32:
            try fill(0..<rows, storage.typed(Float.self))
        case .fp16:
            // Through an FP32 staging buffer of at most ~4 MiB.
            let chunk = max(1, (1 << 20) / max(cols, 1))
            let staging = UnsafeMutablePointer<Float>.allocate(capacity: chunk * cols)
            defer { staging.deallocate() }
            var r = 0
            while r < rows {
                let end = min(rows, r + chunk)
                try fill(r..<end, staging)
                qs_convert_fp32_to_fp16(storage.typed(UInt16.self) + r * cols, staging, Int64((end - r) * cols))
                r = end
            }
        }
    }

    public var byteCount: Int { storage.byteCount }

    /// `W @ x [n, cols] -> out [n, rows]`.
    /// Few rows go through our fused SIMD kernels; many through OpenBLAS on FP32 tiles.
    func apply(_ x: UnsafePointer<Float>, n: Int, into out: UnsafeMutablePointer<Float>, context: ComputeContext,
               scratch: UnsafeMutablePointer<Float>, scratchCount: Int) {
        if n <= WeightMatrix.gemvMaxRows {
            switch precision {
            case .f32:
                qs_gemv_f32(context.pool, context.variant, out, Int64(rows), storage.typed(Float.self), x,
                            Int64(n), Int64(rows), Int64(cols))
            case .fp16:
                qs_gemv_f16(context.pool, context.variant, out, Int64(rows), storage.typed(UInt16.self), x,
                            Int64(n), Int64(rows), Int64(cols))
            }
            return
        }
        switch precision {
        case .f32:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(rows), Int32(cols), 1,
                        x, Int32(cols), storage.typed(Float.self), Int32(cols), 0, out, Int32(rows))
        case .fp16:
            // Widen a tile of rows to FP32 in scratch, multiply it, move on.
            let tileRows = max(16, min(rows, scratchCount / cols))
            var r = 0
            while r < rows {
                let end = min(rows, r + tileRows)
                qs_convert_fp16_to_fp32(scratch, storage.typed(UInt16.self) + r * cols, Int64((end - r) * cols))
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(end - r), Int32(cols), 1,
                            x, Int32(cols), scratch, Int32(cols), 0, out + r, Int32(rows))
                r = end
            }
        }
    }

    /// Up to this many activation rows use the fused kernels rather than OpenBLAS.
    static let gemvMaxRows = 16

    /// Row `row` of the matrix as FP32 (embedding look-up).
    func copyRow(_ row: Int, into destination: UnsafeMutablePointer<Float>) {
        switch precision {
        case .f32: destination.update(from: storage.typed(Float.self) + row * cols, count: cols)
        case .fp16: qs_convert_fp16_to_fp32(destination, storage.typed(UInt16.self) + row * cols, Int64(cols))
        }
    }
}
