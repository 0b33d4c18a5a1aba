import CKernels
import XCTest
@testable import QuantServe

/// Quantizers and the quantized matrix products: SIMD against the scalar reference, against a plain
/// dequantize-then-multiply, and row results independent of the batch.
final class QuantizedKernelTests: XCTestCase {
    var random = RandomSource(seed: 7)

    func randomFloats(_ n: Int, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in Float(random.nextUnit() * 2 - 1) * scale }
    }

    static let formats: [MatrixFormat] = [
        MatrixFormat(kind: QS_FORMAT_Q8, group: 32), MatrixFormat(kind: QS_FORMAT_Q4, group: 128),
        MatrixFormat(kind: QS_FORMAT_Q4, group: 32), MatrixFormat(kind: QS_FORMAT_Q4, group: 64),
        MatrixFormat(kind: QS_FORMAT_NF4, group: 64),
    ]

    func matrix(_ values: [Float], rows: Int, cols: Int, format: MatrixFormat) -> WeightMatrix {
        values.withUnsafeBufferPointer { src in
            WeightMatrix(rows: rows, cols: cols, format: format) { range, dst in
                dst.update(from: src.baseAddress! + range.lowerBound * cols, count: range.count * cols)
            }
        }
    }

    func dequantized(_ w: WeightMatrix) -> [Float] {
        var m = w.matrix
        var out = [Float](repeating: .nan, count: w.rows * w.cols)
        qs_matrix_dequantize_rows(&out, &m, 0, Int64(w.rows))
        return out
    }

    func product(_ w: WeightMatrix, _ x: [Float], n: Int, variant: qs_variant, pool: OpaquePointer?) -> [Float] {
        var m = w.matrix
        var out = [Float](repeating: .nan, count: n * w.rows)
        var scratch = [Float](repeating: 0, count: Int(qs_activation_scratch_floats(Int64(n), Int64(w.cols))))
        qs_matmul(pool, variant, &out, Int64(w.rows), &m, x, Int64(n), &scratch)
        return out
    }

    /// Quantization error stays within what each format's step allows.
    func testQuantizersRoundTripWithinTheirStep() {
        let rows = 8, cols = 256
        let w = randomFloats(rows * cols)
        for format in Self.formats {
            let back = dequantized(matrix(w, rows: rows, cols: cols, format: format))
            let worst = zip(w, back).map { abs($0 - $1) }.max()!
            // Q8: half a step of amax/127; Q4: half of (max-min)/15 plus fp16 rounding; NF4: half its widest gap.
            let bound: Float = switch format.kind {
            case QS_FORMAT_Q8: 0.5 / 127 + 1e-3
            case QS_FORMAT_Q4: 0.5 * 2 / 15 + 1e-2
            default: 0.5 * (0.6961928 - 0.5250731 > 1 - 0.6961928 ? 0.6961928 - 0.5250731 : 1 - 0.6961928) + 1e-3
            }
            XCTAssertLessThanOrEqual(worst, bound, "\(format.name)")
        }
    }

    func testNF4UsesTheCodeTableExactly() {
        // Values that are exactly codes times a block absmax dequantize to themselves.
        let cols = 64
        let absmax: Float = 0.5
        let codes = (0..<cols).map { QS_NF4_CODE_VALUE($0 % 16) * absmax }
        let back = dequantized(matrix(codes, rows: 1, cols: cols, format: MatrixFormat(kind: QS_FORMAT_NF4, group: 64)))
        XCTAssertEqual(back, codes)
    }

    func testQ4FollowsTheAWQFormula() {
        // One group [min, max] = [-1, 2]: s = 3/15, z = round(1/s) = 5.
        var w = [Float](repeating: 0.5, count: 128)
        w[0] = -1; w[1] = 2; w[2] = 0.21
        let back = dequantized(matrix(w, rows: 1, cols: 128, format: MatrixFormat(kind: QS_FORMAT_Q4, group: 128)))
        let s = Float(Float16(Float(3) / 15))
        XCTAssertEqual(back[0], (0 - 5) * s, accuracy: 1e-6)
        XCTAssertEqual(back[1], (15 - 5) * s, accuracy: 1e-6)
        XCTAssertEqual(back[2], (Float((0.21 / s).rounded()) + 5 - 5) * s, accuracy: 1e-6)
    }

    func testProductsMatchScalarAndDequantizedReference() {
        let pool = qs_pool_create(2)
        defer { qs_pool_destroy(pool) }
        let variants = [QS_VARIANT_AVX2, QS_VARIANT_AVX512].filter { qs_variant_supported($0) != 0 }
        // 320 columns: an odd number of 64-value block pairs (Q4's paired AVX2 path) where the group allows it.
        for (rows, cols) in [(1, 128), (7, 256), (33, 384), (130, 896), (5, 320)] {
            let w = randomFloats(rows * cols)
            for n in [1, 3, 16, 40] {
                let x = randomFloats(n * cols, scale: 3)
                for format in Self.formats where cols % format.group == 0 {
                    let m = matrix(w, rows: rows, cols: cols, format: format)
                    let reference = product(m, x, n: n, variant: QS_VARIANT_SCALAR, pool: pool)
                    // Against FP32 math on the dequantized weights: only activation rounding differs, int16 per 32
                    // values against Q8 (int8 rounding, about 0.1 here, would fail its bound) and int8 otherwise.
                    let dw = dequantized(m)
                    for i in 0..<n {
                        for r in 0..<rows {
                            var exact: Float = 0
                            for k in 0..<cols { exact += dw[r * cols + k] * x[i * cols + k] }
                            // NF4's kernel also rounds the code table to int8 (code * 127): a little more noise.
                            let tolerance = (format.kind == QS_FORMAT_Q8 ? 2e-4
                                : format.kind == QS_FORMAT_NF4 ? 0.035 : 0.02) * Float(cols).squareRoot()
                            XCTAssertEqual(reference[i * rows + r], exact, accuracy: tolerance, "\(format.name) \(rows)x\(cols) n=\(n)")
                        }
                    }
                    // SIMD against scalar: the same integer products, only the float sums' order differs.
                    for v in variants {
                        let got = product(m, x, n: n, variant: v, pool: pool)
                        for j in got.indices {
                            XCTAssertEqual(got[j], reference[j], accuracy: 1e-4 * max(1, abs(reference[j])),
                                           "\(String(cString: qs_variant_name(v))) \(format.name) \(rows)x\(cols) n=\(n)")
                        }
                    }
                }
            }
        }
    }

    /// The x16 layout copies codes and scales exactly: back to rows byte for byte, the same dequantized floats, and
    /// the scalar reference on it gives the row layout's results bit for bit (on every CPU).
    func testX16LayoutRoundTripsExactly() {
        for format in Self.formats {
            for (rows, cols) in [(16, 128), (37, 256), (88, 384)] {
                let m = matrix(randomFloats(rows * cols), rows: rows, cols: cols, format: format)
                let packed = m.packedX16()
                XCTAssertEqual(packed.layout, QS_LAYOUT_X16)
                XCTAssertTrue(packed.rowMajor.hasSameContents(as: m), "\(format.name) \(rows)x\(cols)")
                XCTAssertEqual(dequantized(packed), dequantized(m), "\(format.name) \(rows)x\(cols)")
                let x = randomFloats(3 * cols, scale: 2)
                XCTAssertEqual(product(packed, x, n: 3, variant: QS_VARIANT_SCALAR, pool: nil),
                               product(m, x, n: 3, variant: QS_VARIANT_SCALAR, pool: nil), "\(format.name) \(rows)x\(cols)")
            }
        }
    }

    /// The `vnni` kernels on the x16 layout against the scalar reference on rows, for every format, odd row counts
    /// (a partial last group of 16), both tile widths and tails; and each row's result independent of the batch and
    /// the thread count.
    func testX16VNNIProductsMatchScalar() throws {
        guard qs_variant_supported(QS_VARIANT_VNNI) != 0 else { throw XCTSkip("this CPU has no AVX-512 VNNI") }
        let pools = [qs_pool_create(1), qs_pool_create(3)]
        defer { pools.forEach { qs_pool_destroy($0) } }
        for format in Self.formats {
            for (rows, cols) in [(16, 128), (40, 256), (88, 384), (200, 896)] where cols % format.group == 0 {
                let w = randomFloats(rows * cols)
                let m = matrix(w, rows: rows, cols: cols, format: format), packed = m.packedX16()
                let deq = dequantized(m)
                for n in [1, 3, 4, 5, 17, 40] {
                    let x = randomFloats(n * cols, scale: 3)
                    let reference = product(m, x, n: n, variant: QS_VARIANT_SCALAR, pool: pools[0])
                    let got = product(packed, x, n: n, variant: QS_VARIANT_VNNI, pool: pools[1])
                    XCTAssertEqual(got, product(packed, x, n: n, variant: QS_VARIANT_VNNI, pool: pools[0]), "threads")
                    for i in 0..<n {
                        let alone = product(packed, Array(x[(i * cols)..<((i + 1) * cols)]), n: 1, variant: QS_VARIANT_VNNI,
                                            pool: pools[0])
                        XCTAssertEqual(Array(got[(i * rows)..<((i + 1) * rows)]), alone, "\(format.name) batch row \(i)")
                        for r in 0..<rows {
                            var magnitude: Float = 0
                            for k in 0..<cols { magnitude += abs(deq[r * cols + k] * x[i * cols + k]) }
                            XCTAssertEqual(got[i * rows + r], reference[i * rows + r], accuracy: 1e-5 * max(magnitude, 1),
                                           "\(format.name) \(rows)x\(cols) n=\(n) at \(i),\(r)")
                        }
                    }
                }
            }
        }
    }

    /// Several matrices on one input in one call (q, k and v): each result is the one its matrix gives alone, for
    /// every format, variant and batch size, and for a group of mixed formats (multiplied one after another).
    func testGroupedProductsEqualSeparateOnes() {
        let pool = qs_pool_create(2)
        defer { qs_pool_destroy(pool) }
        let cols = 384
        let shapes = [130, 16, 37]
        for n in [1, 5, 16] {
            let x = randomFloats(n * cols)
            let mixed = [MatrixFormat(kind: QS_FORMAT_Q4, group: 128), MatrixFormat(kind: QS_FORMAT_Q8, group: 32),
                         MatrixFormat(kind: QS_FORMAT_F16, group: 1)]
            for (formats, x16) in Self.formats.map({ ([$0, $0, $0], false) }) + Self.formats.map({ ([$0, $0, $0], true) })
                + [(mixed, false)] {
                let ms = zip(shapes, formats).map { rows, f in
                    let m = matrix(randomFloats(rows * cols), rows: rows, cols: cols, format: f)
                    return x16 ? m.packedX16() : m
                }
                let fastest = qs_variant_supported(QS_VARIANT_VNNI) != 0 ? QS_VARIANT_VNNI : qs_best_variant()
                for v in [QS_VARIANT_SCALAR, x16 ? fastest : qs_best_variant()] {
                    var out0 = [Float](repeating: .nan, count: n * ms[0].rows)
                    var out1 = [Float](repeating: .nan, count: n * ms[1].rows)
                    var out2 = [Float](repeating: .nan, count: n * ms[2].rows)
                    var views = ms.map(\.matrix)
                    var ldo = ms.map { Int64($0.rows) }
                    var scratch = [Float](repeating: 0, count: Int(qs_activation_scratch_floats(Int64(n), Int64(cols))))
                    out0.withUnsafeMutableBufferPointer { o0 in
                        out1.withUnsafeMutableBufferPointer { o1 in
                            out2.withUnsafeMutableBufferPointer { o2 in
                                var targets: [UnsafeMutablePointer<Float>?] = [o0.baseAddress, o1.baseAddress, o2.baseAddress]
                                qs_matmul_many(pool, v, 3, &targets, &ldo, &views, x, Int64(n), &scratch)
                            }
                        }
                    }
                    let outs = [out0, out1, out2]
                    for (m, out) in zip(ms, outs) {
                        XCTAssertEqual(out, product(m, x, n: n, variant: v, pool: pool), "\(formats.map(\.name)) n=\(n)")
                    }
                }
            }
        }
    }

    /// A row's result must be bit-identical whatever else shares the call and however many threads run it.
    func testRowResultsIndependentOfBatchAndThreads() {
        let pools = [qs_pool_create(1), qs_pool_create(2), qs_pool_create(3)]
        defer { pools.forEach { qs_pool_destroy($0) } }
        let rows = 77, cols = 512
        let w = randomFloats(rows * cols)
        let x = randomFloats(40 * cols)
        for format in Self.formats {
            let m = matrix(w, rows: rows, cols: cols, format: format)
            for v in [QS_VARIANT_SCALAR, qs_best_variant()] {
                let alone = product(m, Array(x[0..<cols]), n: 1, variant: v, pool: pools[0])
                for pool in pools {
                    for n in [2, 11, 16, 40] {
                        let batch = product(m, Array(x[0..<(n * cols)]), n: n, variant: v, pool: pool)
                        XCTAssertEqual(Array(batch[0..<rows]), alone, "\(format.name) n=\(n)")
                    }
                }
            }
        }
    }
}

/// The NF4 code value at an index, read from the C table.
func QS_NF4_CODE_VALUE(_ i: Int) -> Float {
    withUnsafeBytes(of: QS_NF4_CODE) { $0.load(fromByteOffset: i * 4, as: Float.self) }
}
