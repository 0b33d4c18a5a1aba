import CKernels

/// Matrices in a GGUF file's own block types (the `native` level): the blocks are copied as the file stores them and
/// multiplied in place by the native kernels (native_matmul.c).
extension WeightMatrix {
    /// Whether the native kernels read `type`.
    static func runsNatively(_ type: GGMLType) -> Bool { qs_native_type_supported(type.rawValue) != 0 }

    /// A `[rows, cols]` matrix of `type` blocks from `bytes` (rows after rows, each `cols / blockSize` blocks).
    /// Nil when the kernels do not read the type or the byte count does not match the shape.
    init?(rows: Int, cols: Int, native type: GGMLType, bytes: UnsafeRawBufferPointer) {
        let rowBytes = Int(qs_native_row_bytes(type.rawValue, Int64(cols)))
        let total = rows.multipliedReportingOverflow(by: rowBytes)
        guard rowBytes > 0, rows > 0, !total.overflow, total.partialValue == bytes.count else { return nil }
        let data = AlignedBuffer(byteCount: bytes.count, zeroed: false)
        data.pointer.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        self.init(rows: rows, cols: cols, format: .native(type), layout: QS_LAYOUT_ROWS, data: data, scales: nil, zeros: nil)
    }
}
