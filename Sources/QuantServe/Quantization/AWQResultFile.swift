import CKernels
import Foundation

/// The AWQ search result on disk, as a safetensors file beside a small JSON (`AWQResult`'s key and version), so a
/// second start reads binary instead of parsing tens of megabytes of numbers. For layer l:
/// - scales F32: `blk.l.attn_scales`, `blk.l.out_scales` (when the layer has them), `blk.l.mlp_scales`,
///   `blk.l.down_scales`;
/// - clipping bounds F32 `[rows · groups]`: `blk.l.clip.NAME` for each clipped linear NAME;
/// - each int4 matrix GPTQ rounded: `blk.l.NAME.q4` U8 `[rows, cols / 2]` (the kernels' packing), `blk.l.NAME.scales`
///   F16 `[rows, groups]` and `blk.l.NAME.zeros` U8 `[rows, groups]`; the group size follows from the shapes.
enum AWQResultFile {
    static let format = "quantserve-awq-result"

    static func write(_ layers: [AWQLayer], to path: String) throws {
        var entries: [SafetensorsWriter.Entry] = []
        func vector(_ name: String, _ values: [Float]) {
            entries.append(SafetensorsWriter.Entry(name: name, dtype: .F32, shape: [values.count]) { out in
                values.withUnsafeBytes { out.copyMemory(from: $0) }
            })
        }
        for (l, layer) in layers.enumerated() {
            let base = "blk.\(l)."
            vector(base + "attn_scales", layer.attentionScales)
            if let outputScales = layer.outputScales { vector(base + "out_scales", outputScales) }
            vector(base + "mlp_scales", layer.mlpScales)
            vector(base + "down_scales", layer.downScales)
            for name in layer.clips.keys.sorted() { vector(base + "clip." + name, layer.clips[name]!) }
            for name in layer.rounded.keys.sorted() {
                let m = layer.rounded[name]!.rowMajor
                precondition(m.format.kind == QS_FORMAT_Q4, "only int4 matrices are rounded")
                let groups = m.cols / m.format.group
                func entry(_ suffix: String, _ dtype: SafetensorsDType, _ shape: [Int], _ buffer: AlignedBuffer) -> SafetensorsWriter.Entry {
                    SafetensorsWriter.Entry(name: base + name + suffix, dtype: dtype, shape: shape) { out in
                        out.copyMemory(from: UnsafeRawBufferPointer(start: buffer.pointer, count: out.count))
                    }
                }
                entries.append(entry(".q4", .U8, [m.rows, m.cols / 2], m.data))
                entries.append(entry(".scales", .F16, [m.rows, groups], m.scales!))
                entries.append(entry(".zeros", .U8, [m.rows, groups], m.zeros!))
            }
        }
        try SafetensorsWriter.write(entries, metadata: ["format": format], to: path)
    }

    /// The layers, copied out of the file; nil when it is missing or does not hold exactly what `write` writes
    /// (the caller then searches again).
    static func read(path: String, layerCount: Int) -> [AWQLayer]? {
        guard let file = try? SafetensorsFile(path: path), file.metadata["format"] == format else { return nil }
        func vector(_ name: String) -> [Float]? {
            guard let t = file.tensor(name), t.dtype == .F32, t.shape.count == 1 else { return nil }
            let raw = file.data(of: t), count = t.shape[0]
            guard raw.count == count * 4 else { return nil }
            // Copied byte for byte: a tensor's offset in the file need not be aligned for Float.
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
                initialized = count
            }
        }
        var layers: [AWQLayer] = []
        for l in 0..<layerCount {
            let base = "blk.\(l)."
            guard let attention = vector(base + "attn_scales"), let mlp = vector(base + "mlp_scales"),
                  let down = vector(base + "down_scales") else { return nil }
            layers.append(AWQLayer(attentionScales: attention, outputScales: vector(base + "out_scales"), mlpScales: mlp,
                                   downScales: down, clips: [:]))
        }
        for tensor in file.tensors {
            let parts = tensor.name.split(separator: ".")
            guard parts.count >= 3, parts[0] == "blk", let l = Int(parts[1]), l < layerCount else { return nil }
            if parts.count == 4 && parts[2] == "clip" {
                guard let values = vector(tensor.name) else { return nil }
                layers[l].clips[String(parts[3])] = values
                continue
            }
            guard parts.count == 4 && parts[3] == "q4" else { continue }
            let base = "blk.\(l).\(parts[2])"
            guard tensor.dtype == .U8, tensor.shape.count == 2,
                  let scales = file.tensor(base + ".scales"), let zeros = file.tensor(base + ".zeros"),
                  scales.dtype == .F16, scales.shape.count == 2, scales.shape[1] > 0
            else { return nil }
            let rows = tensor.shape[0], cols = tensor.shape[1] * 2, group = cols / scales.shape[1]
            guard group >= 32, group % 32 == 0, cols % group == 0, scales.shape == [rows, cols / group],
                  zeros.dtype == .U8, zeros.shape == [rows, cols / group] else { return nil }
            layers[l].rounded[String(parts[2])] = WeightMatrix(rows: rows, cols: cols, format: MatrixFormat(kind: QS_FORMAT_Q4, group: group)) { data, s, z in
                data.copyMemory(from: file.data(of: tensor).baseAddress!, byteCount: tensor.byteRange.count)
                s!.copyMemory(from: file.data(of: scales).baseAddress!, byteCount: scales.byteRange.count)
                UnsafeMutableRawPointer(z!).copyMemory(from: file.data(of: zeros).baseAddress!, byteCount: zeros.byteRange.count)
            }
        }
        return layers
    }
}
