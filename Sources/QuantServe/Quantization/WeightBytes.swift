import CKernels

extension ModelConfiguration {
    /// Every weight matrix as (rows, cols, isOutput); the tied embedding counts as the output.
    var matrixShapes: [(rows: Int, cols: Int, isOutput: Bool)] {
        var shapes: [(Int, Int, Bool)] = [(vocabularySize, hiddenSize, tiedOutput)]
        if !tiedOutput { shapes.append((vocabularySize, hiddenSize, true)) }
        for _ in 0..<layerCount {
            shapes += [(qDim, hiddenSize, false), (kvDim, hiddenSize, false), (kvDim, hiddenSize, false),
                       (hiddenSize, qDim, false), (intermediateSize, hiddenSize, false),
                       (intermediateSize, hiddenSize, false), (hiddenSize, intermediateSize, false)]
        }
        return shapes
    }

    /// Bytes of resident weights at a level: the matrices in their formats, plus norms and biases in FP32. Nil for
    /// `native`, whose bytes are the file's (`GGUFFile.nativeWeightBytes`), not the configuration's.
    public func weightBytes(at level: QuantLevel) -> Int? {
        guard level != .native else { return nil }
        let matrices = matrixShapes.reduce(0) { sum, m in
            let f = level.format(cols: m.cols, isOutput: m.isOutput)
            let (r, c, g) = (Int64(m.rows), Int64(m.cols), Int64(f.group))
            if f.isQuantized && qs_x16_layout_preferred() != 0 {
                // The x16 layout the `vnni` kernels read (rows padded to 16; int8 with its block sums).
                return sum + (0..<3).reduce(0) { $0 + Int(qs_matrix_x16_bytes(f.kind, r, c, g, Int32($1))) }
            }
            return sum + Int(qs_matrix_data_bytes(f.kind, r, c) + qs_matrix_scale_bytes(f.kind, r, c, g)
                             + qs_matrix_zero_bytes(f.kind, r, c, g))
        }
        let vectors = layerCount * (2 * hiddenSize + (hasQKVBias ? qDim + 2 * kvDim : 0)
                                    + (hasQKNorm ? 2 * headDim : 0) + (hasPostNorms ? 2 * hiddenSize : 0)) + hiddenSize
        return matrices + vectors * 4
    }
}
