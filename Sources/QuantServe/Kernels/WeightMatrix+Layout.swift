import CKernels

/// The x16 layout (sixteen rows interleaved; `CKernels.h`), which the `vnni` kernels read, and the way back to rows.
extension WeightMatrix {
    /// The matrix in the layout the kernels in use want: x16 for a quantized matrix where the `vnni` variant is the
    /// best (qs_x16_layout_preferred), otherwise the matrix itself. Codes and scales are copied, never rounded again.
    func forKernels() -> WeightMatrix {
        guard format.isQuantized, format.kind != QS_FORMAT_NATIVE, layout == QS_LAYOUT_ROWS,
              qs_x16_layout_preferred() != 0 else { return self }
        return packedX16()
    }

    /// The same matrix in the x16 layout.
    func packedX16() -> WeightMatrix {
        precondition(format.isQuantized && layout == QS_LAYOUT_ROWS)
        let k = format.kind, r = Int64(rows), c = Int64(cols), g = Int64(format.group)
        let parts = (0..<3).map { Int(qs_matrix_x16_bytes(k, r, c, g, Int32($0))) }
        let packed = WeightMatrix(rows: rows, cols: cols, format: format, layout: QS_LAYOUT_X16,
                                  data: AlignedBuffer(byteCount: parts[0], zeroed: false),
                                  scales: parts[1] > 0 ? AlignedBuffer(byteCount: parts[1], zeroed: false) : nil,
                                  zeros: parts[2] > 0 ? AlignedBuffer(byteCount: parts[2], zeroed: false) : nil)
        var m = matrix
        qs_matrix_pack_x16(packed.data.pointer, packed.scales?.pointer, packed.zeros?.typed(UInt8.self), &m)
        return packed
    }

    /// The matrix in the row-major layout (itself when it is), for writers of checkpoint formats.
    var rowMajor: WeightMatrix {
        guard layout == QS_LAYOUT_X16 else { return self }
        return WeightMatrix(rows: rows, cols: cols, format: format) { data, scales, zeros in
            var m = matrix
            qs_matrix_unpack_x16_rows(data, scales, zeros, &m, 0, Int64(rows))
        }
    }
}
