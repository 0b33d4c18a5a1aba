import CKernels
import Foundation

/// Building a weight matrix from parts already packed in its format (a pre-quantized checkpoint), and reading it back.
extension WeightMatrix {
    /// A matrix whose parts `fill(data, scales, zeros)` writes directly, each sized for `format`
    /// (`scales` nil for F32/F16, `zeros` nil except for Q4).
    init(rows: Int, cols: Int, format: MatrixFormat,
         packed fill: (_ data: UnsafeMutableRawPointer, _ scales: UnsafeMutableRawPointer?,
                       _ zeros: UnsafeMutablePointer<UInt8>?) throws -> Void) rethrows {
        self.rows = rows
        self.cols = cols
        self.format = format
        layout = QS_LAYOUT_ROWS
        let k = format.kind
        data = AlignedBuffer(byteCount: Int(qs_matrix_data_bytes(k, Int64(rows), Int64(cols))), zeroed: false)
        let scaleBytes = Int(qs_matrix_scale_bytes(k, Int64(rows), Int64(cols), Int64(format.group)))
        let zeroBytes = Int(qs_matrix_zero_bytes(k, Int64(rows), Int64(cols), Int64(format.group)))
        scales = scaleBytes > 0 ? AlignedBuffer(byteCount: scaleBytes, zeroed: false) : nil
        zeros = zeroBytes > 0 ? AlignedBuffer(byteCount: zeroBytes, zeroed: false) : nil
        try fill(data.pointer, scales?.pointer, zeros?.typed(UInt8.self))
    }

    /// A matrix made of parts already laid out (`layout`).
    init(rows: Int, cols: Int, format: MatrixFormat, layout: qs_layout, data: AlignedBuffer, scales: AlignedBuffer?,
         zeros: AlignedBuffer?) {
        self.rows = rows
        self.cols = cols
        self.format = format
        self.layout = layout
        self.data = data
        self.scales = scales
        self.zeros = zeros
    }

    /// Rows `range` as FP32 into `destination` (`range.count * cols` floats).
    func dequantizeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        var m = matrix
        qs_matrix_dequantize_rows(destination, &m, Int64(range.lowerBound), Int64(range.upperBound))
    }

    /// Same shape, format and bytes.
    func hasSameContents(as other: WeightMatrix) -> Bool {
        func same(_ a: AlignedBuffer?, _ b: AlignedBuffer?) -> Bool {
            guard let a, let b else { return a == nil && b == nil }
            return a.byteCount == b.byteCount && memcmp(a.pointer, b.pointer, a.byteCount) == 0
        }
        return rows == other.rows && cols == other.cols && format == other.format && layout == other.layout
            && same(data, other.data)
            && same(scales, other.scales) && same(zeros, other.zeros)
    }
}
