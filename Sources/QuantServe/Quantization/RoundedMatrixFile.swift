import CKernels
import Foundation

/// The int4 matrices GPTQ rounded, cached on disk beside the AWQ search's JSON as a safetensors file:
/// for layer l and linear n, `blk.l.n.q4` U8 `[rows, cols / 2]` (the kernels' packing), `blk.l.n.scales` F16
/// `[rows, groups]` and `blk.l.n.zeros` U8 `[rows, groups]`; the group size follows from the shapes.
enum RoundedMatrixFile {
    static func write(_ layers: [[String: WeightMatrix]], to path: String) throws {
        var entries: [SafetensorsWriter.Entry] = []
        for (l, matrices) in layers.enumerated() {
            for name in matrices.keys.sorted() {
                let m = matrices[name]!
                precondition(m.format.kind == QS_FORMAT_Q4, "only int4 matrices are rounded")
                let groups = m.cols / m.format.group
                let base = "blk.\(l).\(name)"
                func entry(_ suffix: String, _ dtype: SafetensorsDType, _ shape: [Int], _ buffer: AlignedBuffer) -> SafetensorsWriter.Entry {
                    SafetensorsWriter.Entry(name: base + suffix, dtype: dtype, shape: shape) { out in
                        out.copyMemory(from: UnsafeRawBufferPointer(start: buffer.pointer, count: out.count))
                    }
                }
                entries.append(entry(".q4", .U8, [m.rows, m.cols / 2], m.data))
                entries.append(entry(".scales", .F16, [m.rows, groups], m.scales!))
                entries.append(entry(".zeros", .U8, [m.rows, groups], m.zeros!))
            }
        }
        try SafetensorsWriter.write(entries, metadata: ["format": "quantserve-gptq-int4"], to: path)
    }

    /// The matrices of `layerCount` layers, copied out of the file; nil when it is missing or does not hold
    /// exactly what `write` writes (the caller then searches again).
    static func read(path: String, layerCount: Int) -> [[String: WeightMatrix]]? {
        guard let file = try? SafetensorsFile(path: path), file.metadata["format"] == "quantserve-gptq-int4" else { return nil }
        var layers = [[String: WeightMatrix]](repeating: [:], count: layerCount)
        for tensor in file.tensors where tensor.name.hasSuffix(".q4") {
            let base = String(tensor.name.dropLast(3))
            let parts = base.split(separator: ".")
            guard parts.count == 3, let l = Int(parts[1]), l < layerCount, tensor.dtype == .U8, tensor.shape.count == 2,
                  let scales = file.tensor(base + ".scales"), let zeros = file.tensor(base + ".zeros"),
                  scales.dtype == .F16, scales.shape.count == 2, scales.shape[1] > 0
            else { return nil }
            let rows = tensor.shape[0], cols = tensor.shape[1] * 2, group = cols / scales.shape[1]
            guard group >= 32, group % 32 == 0, cols % group == 0, scales.shape == [rows, cols / group],
                  zeros.dtype == .U8, zeros.shape == [rows, cols / group] else { return nil }
            layers[l][String(parts[2])] = WeightMatrix(rows: rows, cols: cols, format: MatrixFormat(kind: QS_FORMAT_Q4, group: group)) { data, s, z in
                data.copyMemory(from: file.data(of: tensor).baseAddress!, byteCount: tensor.byteRange.count)
                s!.copyMemory(from: file.data(of: scales).baseAddress!, byteCount: scales.byteRange.count)
                UnsafeMutableRawPointer(z!).copyMemory(from: file.data(of: zeros).baseAddress!, byteCount: zeros.byteRange.count)
            }
        }
        return layers
    }
}
