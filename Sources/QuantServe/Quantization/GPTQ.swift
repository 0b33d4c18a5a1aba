import CKernels
import COpenBLAS

/// GPTQ rounding for the int4 level (Frantar et al., 2022), run after AWQ's scales and clipping: instead of rounding
/// every weight to its nearest level, a row's columns are rounded one by one and each error is compensated on the
/// columns still to come, weighted by the calibration inputs' covariance H = XᵀX. The kernel is `qs_gptq_q4_block`.
/// Columns go in decreasing order of H's diagonal (the most active inputs first, "act order"), with every group's
/// scale and zero point fixed beforehand from the AWQ-scaled, clipped weights ("static groups").
struct GPTQ {
    /// Added to H's diagonal, as a fraction of its mean. The reference's 1% fits our 1024 calibration tokens so closely
    /// that held-out perplexity got worse. Of 0.1, 0.3, 1 and 3, a ridge as large as the mean diagonal scored best on
    /// the held-out text; on a second text (README) 0.1 to 3 were close and 1% was worst again.
    var damping: Float = 1
    /// Wider matrices are rounded in independent column blocks of at most this many columns (whole groups), each
    /// with its own diagonal block of H: the factorisation's cost grows with the cube of the width.
    var maximumBlock = 1024

    /// The covariance XᵀX of columns [c0, c0 + width) of x [n, k].
    static func covariance(_ x: [Float], n: Int, k: Int, columns c0: Int = 0, width: Int? = nil) -> [Float] {
        let width = width ?? k
        var h = [Float](repeating: 0, count: width * width)
        x.withUnsafeBufferPointer { xp in
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(width), Int32(n), 1, xp.baseAddress! + c0, Int32(k), 0,
                        &h, Int32(width))
        }
        for i in 0..<width { for j in 0..<i { h[i * width + j] = h[j * width + i] } }
        return h
    }

    /// The row-major upper triangular U with UᵀU = (H + λI)⁻¹, λ = `damping` × mean diagonal; a channel the
    /// calibration never activated gets a unit diagonal first. Nil if the factorisation fails.
    func inverseFactor(covariance h: [Float], k: Int) -> [Float]? {
        var a = h
        for i in 0..<k where a[i * k + i] <= 0 { a[i * k + i] = 1 }
        let mean = (0..<k).reduce(Float(0)) { $0 + a[$1 * k + $1] } / Float(k)
        for i in 0..<k { a[i * k + i] += damping * mean }
        // LAPACK is column-major; a symmetric matrix reads the same either way.
        var n = Int32(k), info: Int32 = 0
        spotrf_("L", &n, &a, &n, &info, 1)  // H = L Lᵀ
        guard info == 0 else { return nil }
        spotri_("L", &n, &a, &n, &info, 1)  // H⁻¹ in the lower triangle
        guard info == 0 else { return nil }
        for j in 0..<k { for i in 0..<j { a[j * k + i] = a[i * k + j] } }
        spotrf_("L", &n, &a, &n, &info, 1)  // H⁻¹ = L Lᵀ; read row-major, the triangle holds Lᵀ = U
        guard info == 0 else { return nil }
        for r in 0..<k { for c in 0..<r { a[r * k + c] = 0 } }
        return a
    }

    /// What rounding needs from one set of inputs, computed once for every linear that reads them (Q, K and V share
    /// one; gate and up another): per column block, the act order and the inverse covariance factor.
    struct Factorisation {
        struct Block {
            let start: Int, width: Int
            /// Block columns by decreasing activity (H's diagonal), ties by index.
            let order: [Int32]
            /// The upper factor of the block's covariance permuted by `order`.
            let u: [Float]
        }
        let columns: Int
        let blocks: [Block]
    }

    /// The factorisation of inputs x [n, k] for groups of `group`; nil if a covariance block cannot be factorised.
    func factorise(inputs x: [Float], n: Int, k: Int, group: Int) -> Factorisation? {
        let blockWidth = max(1, maximumBlock / group) * group
        var blocks: [Factorisation.Block] = []
        for c0 in stride(from: 0, to: k, by: blockWidth) {
            let width = min(blockWidth, k - c0)
            let h = GPTQ.covariance(x, n: n, k: k, columns: c0, width: width)
            let order = (0..<width).sorted { a, b in
                h[a * width + a] != h[b * width + b] ? h[a * width + a] > h[b * width + b] : a < b
            }
            var permuted = [Float](repeating: 0, count: width * width)
            for i in 0..<width { for j in 0..<width { permuted[i * width + j] = h[order[i] * width + order[j]] } }
            guard let u = inverseFactor(covariance: permuted, k: width) else { return nil }
            blocks.append(Factorisation.Block(start: c0, width: width, order: order.map(Int32.init), u: u))
        }
        return Factorisation(columns: k, blocks: blocks)
    }

    /// `w` [rows, k] rounded into int4 with groups of `group`, given its calibration inputs x [n, k]; each
    /// (row, group)'s range clamped to ±`clip` (nil: min and max kept). Nil if H cannot be factorised.
    func quantize(_ w: Matrix, inputs x: [Float], n: Int, group: Int, clip: [Float]?, pool: OpaquePointer?) -> WeightMatrix? {
        factorise(inputs: x, n: n, k: w.cols, group: group).map {
            quantize(w, factorisation: $0, group: group, clip: clip, pool: pool)
        }
    }

    /// `w` [rows, k] rounded through the factorisation of its inputs (made for the same `group`).
    func quantize(_ w: Matrix, factorisation f: Factorisation, group: Int, clip: [Float]?, pool: OpaquePointer?) -> WeightMatrix {
        precondition(w.cols == f.columns, "a factorisation of \(f.columns) inputs for a matrix of \(w.cols)")
        let k = w.cols, groups = k / group
        if f.blocks.count == 1 { return quantizeBlock(w, f.blocks[0], group: group, clip: clip, pool: pool) }
        let parts = f.blocks.map { b in
            quantizeBlock(Matrix(rows: w.rows, cols: b.width, values: columns(w.values, rows: w.rows, cols: k, b.start, b.width)),
                          b, group: group, clip: clip.map { columns($0, rows: w.rows, cols: groups, b.start / group, b.width / group) },
                          pool: pool)
        }
        return WeightMatrix(rows: w.rows, cols: k, format: MatrixFormat(kind: QS_FORMAT_Q4, group: group)) { data, scales, zeros in
            for (b, m) in zip(f.blocks, parts) {
                let g0 = b.start / group, blockGroups = b.width / group
                for r in 0..<w.rows {
                    (data + (r * k + b.start) / 2).copyMemory(from: m.data.pointer + r * b.width / 2, byteCount: b.width / 2)
                    (scales! + 2 * (r * groups + g0)).copyMemory(from: m.scales!.pointer + 2 * r * blockGroups, byteCount: 2 * blockGroups)
                    (zeros! + r * groups + g0).update(from: m.zeros!.typed(UInt8.self) + r * blockGroups, count: blockGroups)
                }
            }
        }
    }

    /// Columns [c0, c0 + width) of a row-major [rows, cols] array.
    private func columns(_ a: [Float], rows: Int, cols: Int, _ c0: Int, _ width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * width)
        for r in 0..<rows { for j in 0..<width { out[r * width + j] = a[r * cols + c0 + j] } }
        return out
    }

    /// Columns rounded by the kernel this many at a time; the updates beyond each batch are one OpenBLAS product.
    static let batch = 128

    /// `w` [rows, block.width]: the block's columns of a matrix.
    private func quantizeBlock(_ w: Matrix, _ block: Factorisation.Block, group: Int, clip: [Float]?,
                               pool: OpaquePointer?) -> WeightMatrix {
        let k = w.cols, rows = w.rows, u = block.u
        var working = [Float](repeating: 0, count: rows * k)
        for r in 0..<rows { for i in 0..<k { working[r * k + i] = w.values[r * k + Int(block.order[i])] } }
        var codes = [UInt8](repeating: 0, count: rows * k)
        var errors = [Float](repeating: 0, count: rows * GPTQ.batch)
        return WeightMatrix(rows: rows, cols: k, format: MatrixFormat(kind: QS_FORMAT_Q4, group: group)) { data, scales, zeros in
            let q = data.assumingMemoryBound(to: UInt8.self), s = scales!.assumingMemoryBound(to: UInt16.self)
            // Static groups: every group's scale and zero point from the weights as given (round to nearest fills
            // the codes too; they are all replaced below).
            qs_quantize_q4(q, s, zeros!, w.values, Int64(rows), Int64(k), Int64(group), clip)
            for i0 in stride(from: 0, to: k, by: GPTQ.batch) {
                let i1 = min(k, i0 + GPTQ.batch)
                qs_gptq_q4_block(pool, &codes, &errors, &working, Int64(k), u, Int64(rows), Int64(k), Int64(i0), Int64(i1),
                                 block.order, s, zeros!, Int64(group))
                guard i1 < k else { break }
                working.withUnsafeMutableBufferPointer { wp in
                    u.withUnsafeBufferPointer { up in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(k - i1), Int32(i1 - i0), -1,
                                    errors, Int32(i1 - i0), up.baseAddress! + i0 * k + i1, Int32(k), 1, wp.baseAddress! + i1, Int32(k))
                    }
                }
            }
            qs_pack_q4_codes(q, codes, Int64(rows * k))
        }
    }
}
