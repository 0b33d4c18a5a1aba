import CKernels
import XCTest

/// The AVX2 quantizers (fast start-up) give the scalar quantizers' results bit for bit, ties and odd values included.
final class QuantizerVariantTests: XCTestCase {
    /// Random rows with values placed on rounding ties, zeros, a zero block, large and tiny magnitudes.
    func rows(_ rows: Int, _ cols: Int, seed: UInt64) -> [Float] {
        var state = seed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
        var x = (0..<(rows * cols)).map { _ in next() }
        for i in stride(from: 0, to: x.count, by: 7) { x[i] = Float(Int(next() * 40)) / 2 }   // halves: ties in Q8/Q4
        for i in stride(from: 3, to: x.count, by: 11) { x[i] *= 1e4 }
        for i in stride(from: 5, to: x.count, by: 13) { x[i] = 0 }
        for j in 0..<min(64, cols) { x[j] = 0 }                                           // an all-zero block
        // Row 1 starts with exact ties: Q8 scale 1 (max 127) and Q4 scale 1 (min 0, max 15) over halves.
        if rows > 1 {
            let b = cols
            for j in 0..<32 { x[b + j] = Float(j % 15) + 0.5 - (j % 2 == 0 ? 0 : 15) }
            x[b] = 0
            x[b + 1] = 15
            if cols >= 64 { x[b + 32] = 127; for j in 33..<64 { x[b + j] = Float(j - 90) + 0.5 } }
        }
        return x
    }

    func testQ8() throws {
        try XCTSkipUnless(qs_variant_supported(QS_VARIANT_AVX2) != 0, "no AVX2")
        for (r, c) in [(3, 32), (17, 96), (5, 896)] {
            let x = rows(r, c, seed: UInt64(r * c))
            var qa = [Int8](repeating: 0, count: r * c), qb = qa
            var sa = [UInt16](repeating: 0, count: r * c / 32), sb = sa
            qs_quantize_q8_v(QS_VARIANT_SCALAR, &qa, &sa, x, Int64(r), Int64(c))
            qs_quantize_q8_v(QS_VARIANT_AVX2, &qb, &sb, x, Int64(r), Int64(c))
            XCTAssertEqual(qa, qb, "\(r)x\(c)")
            XCTAssertEqual(sa, sb, "\(r)x\(c)")
        }
    }

    func testNF4() throws {
        try XCTSkipUnless(qs_variant_supported(QS_VARIANT_AVX2) != 0, "no AVX2")
        for (r, c) in [(3, 64), (9, 192), (4, 896)] {
            // Also values exactly on the midpoints between code entries.
            var x = rows(r, c, seed: UInt64(r + c))
            let mids = withUnsafeBytes(of: QS_NF4_CODE) { Array($0.bindMemory(to: Float.self)) }
            for i in stride(from: 64, to: x.count, by: 64) where i + 15 < x.count {
                x[i] = 1
                for k in 1..<15 { x[i + k] = 0.5 * (mids[k - 1] + mids[k]) }
            }
            var qa = [UInt8](repeating: 0, count: r * c / 2), qb = qa
            var aa = [Float](repeating: 0, count: r * c / 64), ab = aa
            qs_quantize_nf4_v(QS_VARIANT_SCALAR, &qa, &aa, x, Int64(r), Int64(c))
            qs_quantize_nf4_v(QS_VARIANT_AVX2, &qb, &ab, x, Int64(r), Int64(c))
            XCTAssertEqual(qa, qb, "\(r)x\(c)")
            XCTAssertEqual(aa, ab, "\(r)x\(c)")
        }
    }

    func testQ4WithAndWithoutClipping() throws {
        try XCTSkipUnless(qs_variant_supported(QS_VARIANT_AVX2) != 0, "no AVX2")
        for (r, c, g) in [(3, 128, 128), (8, 192, 64), (5, 160, 32)] {
            let x = rows(r, c, seed: UInt64(3 * r + c))
            let clip = (0..<(r * c / g)).map { Float($0 % 5 + 1) * 0.2 }
            for useClip in [false, true] {
                var qa = [UInt8](repeating: 0, count: r * c / 2), qb = qa
                var sa = [UInt16](repeating: 0, count: r * c / g), sb = sa
                var za = [UInt8](repeating: 0, count: r * c / g), zb = za
                clip.withUnsafeBufferPointer { cp in
                    let p = useClip ? cp.baseAddress : nil
                    qs_quantize_q4_v(QS_VARIANT_SCALAR, &qa, &sa, &za, x, Int64(r), Int64(c), Int64(g), p)
                    qs_quantize_q4_v(QS_VARIANT_AVX2, &qb, &sb, &zb, x, Int64(r), Int64(c), Int64(g), p)
                }
                XCTAssertEqual(qa, qb, "\(r)x\(c) g\(g) clip \(useClip)")
                XCTAssertEqual(sa, sb, "\(r)x\(c) g\(g) clip \(useClip)")
                XCTAssertEqual(za, zb, "\(r)x\(c) g\(g) clip \(useClip)")
            }
        }
    }

    /// The AWQ search's quantize-then-dequantize: the same floats from both paths, with column scales and clipping,
    /// rows split over two threads.
    func testFakeQ4WithScalesAndClipping() throws {
        try XCTSkipUnless(qs_variant_supported(QS_VARIANT_AVX2) != 0, "no AVX2")
        let pool = qs_pool_create(2)
        defer { qs_pool_destroy(pool) }
        for (r, c, g) in [(3, 128, 128), (9, 192, 64), (5, 160, 32)] {
            let x = rows(r, c, seed: UInt64(5 * r + c))
            let clip = (0..<(r * c / g)).map { Float($0 % 5 + 1) * 0.2 }
            let scales = (0..<c).map { Float($0 % 7 + 1) * 0.37 }
            for (useClip, useScales) in [(false, false), (true, false), (false, true), (true, true)] {
                var a = [Float](repeating: .nan, count: r * c), b = a
                clip.withUnsafeBufferPointer { cp in
                    scales.withUnsafeBufferPointer { sp in
                        let p = useClip ? cp.baseAddress : nil, s = useScales ? sp.baseAddress : nil
                        qs_fake_quantize_q4_v(pool, QS_VARIANT_SCALAR, &a, x, s, Int64(r), Int64(c), Int64(g), p)
                        qs_fake_quantize_q4_v(pool, QS_VARIANT_AVX2, &b, x, s, Int64(r), Int64(c), Int64(g), p)
                    }
                }
                XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(r)x\(c) g\(g) clip \(useClip) scales \(useScales)")
                XCTAssertFalse(a.contains { $0.isNaN })
            }
        }
    }
}
