import CKernels
import XCTest
@testable import QuantServe

/// The native level's products on GGUF block types: every type, scalar and SIMD, against dequantize-then-multiply
/// (the dequantizers are checked against the `gguf` package in DequantizerTests), and row results that never
/// depend on the batch.
final class NativeKernelTests: XCTestCase {
    static let types: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
    var random = RandomSource(seed: 11)

    /// Offsets of each type's fp16 scale fields inside a block.
    static func halfFields(_ type: GGMLType) -> [Int] {
        switch type {
        case .q4_0, .q5_0, .q8_0: [0]
        case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
        case .q2_K: [80, 82]
        case .q3_K: [108]
        default: [208]
        }
    }

    /// Random blocks: random codes and sub-scales, the fp16 scales set to small positive values (a min field, where
    /// a type has one, to a value of either sign for Q4_1/Q5_1).
    func randomMatrix(_ type: GGMLType, rows: Int, cols: Int) -> [UInt8] {
        let blocks = rows * cols / type.blockSize
        var bytes = (0..<blocks * type.blockBytes).map { _ in UInt8.random(in: 0...255, using: &random) }
        for b in 0..<blocks {
            for (i, offset) in Self.halfFields(type).enumerated() {
                var value = Float(0.002 + random.nextUnit() * 0.02)
                if i == 1, type == .q4_1 || type == .q5_1 { value = Float(random.nextUnit() * 0.2 - 0.1) }
                let h = Float16(value).bitPattern
                bytes[b * type.blockBytes + offset] = UInt8(h & 0xFF)
                bytes[b * type.blockBytes + offset + 1] = UInt8(h >> 8)
            }
        }
        return bytes
    }

    func floats(_ n: Int) -> [Float] { (0..<n).map { _ in Float(random.nextUnit() * 2 - 1) } }

    func weightMatrix(_ type: GGMLType, _ bytes: [UInt8], rows: Int, cols: Int) -> WeightMatrix {
        bytes.withUnsafeBytes { WeightMatrix(rows: rows, cols: cols, native: type, bytes: $0)! }
    }

    func product(_ w: WeightMatrix, _ x: [Float], n: Int, variant: qs_variant, threads: Int = 1) -> [Float] {
        let context = ComputeContext(threads: threads, variant: variant)
        var m = w.matrix
        var out = [Float](repeating: .nan, count: n * w.rows)
        var scratch = [Float](repeating: 0, count: Int(qs_activation_scratch_floats(Int64(n), Int64(w.cols))))
        qs_matmul(context.pool, variant, &out, Int64(w.rows), &m, x, Int64(n), &scratch)
        return out
    }

    var variants: [qs_variant] {
        [QS_VARIANT_SCALAR, QS_VARIANT_AVX2, QS_VARIANT_AVX512].filter { qs_variant_supported($0) != 0 }
    }

    func testDequantizedRowsMatchTheDequantizers() throws {
        for type in Self.types {
            let rows = 3, cols = 512
            let bytes = randomMatrix(type, rows: rows, cols: cols)
            var expected = [Float](repeating: 0, count: rows * cols)
            try bytes.withUnsafeBytes { try Dequantizer.dequantize(type, from: $0.baseAddress!, into: &expected, count: rows * cols) }
            let matrix = weightMatrix(type, bytes, rows: rows, cols: cols)
            var got = [Float](repeating: .nan, count: rows * cols)
            matrix.dequantizeRows(0..<rows, into: &got)
            let scale = expected.map(abs).max()!
            for i in 0..<got.count where abs(got[i] - expected[i]) > 1e-6 * scale {
                XCTFail("\(type.name) value \(i): \(got[i]) vs \(expected[i])")
                break
            }
        }
    }

    /// Each output is within the activations' rounding of the exact product: sum |w| * (block amax / 254).
    func testProductsMatchTheDequantizedReference() throws {
        for type in Self.types {
            let rows = 37, cols = type.blockSize == 256 ? 768 : 864, n = 6
            let bytes = randomMatrix(type, rows: rows, cols: cols)
            var w = [Float](repeating: 0, count: rows * cols)
            try bytes.withUnsafeBytes { try Dequantizer.dequantize(type, from: $0.baseAddress!, into: &w, count: rows * cols) }
            var x = floats(n * cols)
            for j in stride(from: 5, to: x.count, by: 97) { x[j] *= 9 } // uneven magnitudes within blocks
            let matrix = weightMatrix(type, bytes, rows: rows, cols: cols)
            let block = type.blockSize == 256 ? 256 : 32
            for variant in variants {
                let got = product(matrix, x, n: n, variant: variant)
                for i in 0..<n {
                    for r in 0..<rows {
                        var exact = 0.0, bound = 0.0
                        for j in 0..<cols {
                            exact += Double(w[r * cols + j]) * Double(x[i * cols + j])
                            let start = i * cols + j / block * block
                            let amax = x[start..<start + block].map(abs).max()!
                            bound += Double(abs(w[r * cols + j])) * Double(amax) / 254
                        }
                        XCTAssertEqual(Double(got[i * rows + r]), exact, accuracy: bound * 1.01 + 1e-4,
                                       "\(type.name) \(String(cString: qs_variant_name(variant))) row \(r) of \(i)")
                    }
                }
            }
        }
    }

    /// A row's result is the same alone, in a batch of any size (tiles of four and single rows), on any threads.
    func testRowResultsDoNotDependOnTheBatch() {
        for type in Self.types {
            let rows = 40, cols = type.blockSize == 256 ? 512 : 320, n = 9
            let matrix = weightMatrix(type, randomMatrix(type, rows: rows, cols: cols), rows: rows, cols: cols)
            let x = floats(n * cols)
            for variant in variants {
                let batch = product(matrix, x, n: n, variant: variant, threads: 2)
                for i in [0, 3, 8] {
                    let alone = product(matrix, Array(x[i * cols..<(i + 1) * cols]), n: 1, variant: variant)
                    XCTAssertEqual(alone, Array(batch[i * rows..<(i + 1) * rows]),
                                   "\(type.name) \(String(cString: qs_variant_name(variant))) row \(i)")
                }
            }
        }
    }

    func testSIMDAgreesWithScalar() throws {
        try XCTSkipUnless(qs_variant_supported(QS_VARIANT_AVX2) != 0, "no AVX2 on this CPU")
        for type in Self.types {
            let rows = 20, cols = type.blockSize == 256 ? 1024 : 256, n = 5
            let matrix = weightMatrix(type, randomMatrix(type, rows: rows, cols: cols), rows: rows, cols: cols)
            let x = floats(n * cols)
            let scalar = product(matrix, x, n: n, variant: QS_VARIANT_SCALAR)
            let simd = product(matrix, x, n: n, variant: QS_VARIANT_AVX2)
            let scale = scalar.map(abs).max()!
            for i in 0..<scalar.count {
                XCTAssertEqual(simd[i], scalar[i], accuracy: 1e-5 * scale, "\(type.name) output \(i)")
            }
        }
    }

    /// The AVX-512 variant runs the AVX2 native kernels: the same results, bit for bit.
    func testVariantsAboveAVX2GiveTheAVX2Results() throws {
        try XCTSkipUnless(qs_variant_supported(QS_VARIANT_AVX512) != 0, "no AVX-512 on this CPU")
        for type in Self.types {
            for cols in type.blockSize == 256 ? [2048, 768] : [640, 1024, 96] {
                let rows = 48, n = 7
                let matrix = weightMatrix(type, randomMatrix(type, rows: rows, cols: cols), rows: rows, cols: cols)
                let x = floats(n * cols)
                XCTAssertEqual(product(matrix, x, n: n, variant: QS_VARIANT_AVX2, threads: 2),
                               product(matrix, x, n: n, variant: QS_VARIANT_AVX512, threads: 2), "\(type.name) cols \(cols)")
            }
        }
    }

    func testShapesTheKernelsCannotReadAreRefused() {
        let bytes = [UInt8](repeating: 0, count: 144)
        bytes.withUnsafeBytes { raw in
            XCTAssertNil(WeightMatrix(rows: 1, cols: 128, native: .q4_K, bytes: raw), "cols not a multiple of 256")
            XCTAssertNil(WeightMatrix(rows: 2, cols: 256, native: .q4_K, bytes: raw), "too few bytes")
            XCTAssertNil(WeightMatrix(rows: 1, cols: 256, native: .q8_K, bytes: raw), "a type the kernels do not read")
            XCTAssertNotNil(WeightMatrix(rows: 1, cols: 256, native: .q4_K, bytes: raw))
        }
    }
}
