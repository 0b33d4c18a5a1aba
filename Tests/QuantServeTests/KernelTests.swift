import CKernels
import XCTest
@testable import QuantServe

/// Every SIMD path against the scalar reference, on random data with odd sizes.
final class KernelTests: XCTestCase {
    var random = RandomSource(seed: 42)

    func randomFloats(_ n: Int) -> [Float] {
        (0..<n).map { _ in Float(random.nextUnit() * 2 - 1) }
    }

    var variants: [qs_variant] {
        [QS_VARIANT_AVX2, QS_VARIANT_AVX512].filter { qs_variant_supported($0) != 0 }
    }

    func testFP16ConversionMatchesKnownValues() {
        let cases: [(Float, UInt16)] = [
            (0, 0x0000), (-0.0, 0x8000), (1, 0x3C00), (-2, 0xC000), (65504, 0x7BFF), (65520, 0x7C00),
            (.infinity, 0x7C00), (-.infinity, 0xFC00), (5.9604645e-08, 0x0001), (6.1035156e-05, 0x0400),
            (0.333333343, 0x3555), (1e-9, 0x0000), (2.98e-08, 0x0000), (2.99e-08, 0x0001),
        ]
        for (f, h) in cases {
            XCTAssertEqual(qs_fp32_to_fp16(f), h, "fp32 \(f) -> fp16")
        }
        for (f, h) in cases where f.magnitude <= 65504 && f.magnitude >= 5.9604645e-08 || f == 0 {
            XCTAssertEqual(qs_fp16_to_fp32(h), Float(Float16(f)), "fp16 \(h) -> fp32")
        }
        XCTAssertTrue(qs_fp16_to_fp32(0x7E00).isNaN)
        // Every half value survives the round trip, and the bulk paths agree with the scalar ones.
        let all = (0...UInt16.max).map { $0 }.filter { ($0 & 0x7C00) != 0x7C00 }
        var widened = [Float](repeating: 0, count: all.count)
        qs_convert_fp16_to_fp32(&widened, all, Int64(all.count))
        var narrowed = [UInt16](repeating: 0, count: all.count)
        qs_convert_fp32_to_fp16(&narrowed, widened, Int64(all.count))
        for i in all.indices {
            XCTAssertEqual(widened[i], qs_fp16_to_fp32(all[i]))
            XCTAssertEqual(widened[i], Float(Float16(bitPattern: all[i])))
            XCTAssertEqual(narrowed[i], all[i])
        }
        // Rounding of values between halves, bulk vs scalar vs Swift's Float16.
        let values = randomFloats(1000).map { $0 * 70000 } + randomFloats(1000).map { $0 * 1e-5 }
        var bulk = [UInt16](repeating: 0, count: values.count)
        qs_convert_fp32_to_fp16(&bulk, values, Int64(values.count))
        for (i, v) in values.enumerated() {
            XCTAssertEqual(qs_fp32_to_fp16(v), Float16(v).bitPattern, "\(v)")
            XCTAssertEqual(bulk[i], Float16(v).bitPattern, "\(v)")
        }
    }

    func gemv(_ variant: qs_variant, f16: Bool, w: [Float], x: [Float], n: Int, rows: Int, cols: Int,
              pool: OpaquePointer?) -> [Float] {
        var out = [Float](repeating: .nan, count: n * rows)
        if f16 {
            var half = [UInt16](repeating: 0, count: w.count)
            qs_convert_fp32_to_fp16(&half, w, Int64(w.count))
            qs_gemv_f16(pool, variant, &out, Int64(rows), half, x, Int64(n), Int64(rows), Int64(cols))
        } else {
            qs_gemv_f32(pool, variant, &out, Int64(rows), w, x, Int64(n), Int64(rows), Int64(cols))
        }
        return out
    }

    func testGemvVariantsMatchScalarOnOddSizes() {
        let pool = qs_pool_create(2)
        defer { qs_pool_destroy(pool) }
        for (rows, cols) in [(1, 1), (3, 7), (5, 33), (17, 100), (64, 896), (130, 257), (301, 4864)] {
            let w = randomFloats(rows * cols)
            for n in [1, 2, 5, 16] {
                let x = randomFloats(n * cols)
                for f16 in [false, true] {
                    let reference = gemv(QS_VARIANT_SCALAR, f16: f16, w: w, x: x, n: n, rows: rows, cols: cols, pool: pool)
                    for v in variants {
                        let got = gemv(v, f16: f16, w: w, x: x, n: n, rows: rows, cols: cols, pool: pool)
                        for i in got.indices {
                            XCTAssertEqual(got[i], reference[i], accuracy: 1e-4 * Float(cols).squareRoot() + 1e-5,
                                           "\(String(cString: qs_variant_name(v))) f16=\(f16) \(rows)x\(cols) n=\(n) at \(i)")
                        }
                    }
                }
            }
        }
    }

    /// A row's result must not depend on how many rows share the call, or on the thread count.
    func testGemvRowResultIndependentOfBatchAndThreads() {
        let pools = [qs_pool_create(1), qs_pool_create(2), qs_pool_create(3)]
        defer { pools.forEach { qs_pool_destroy($0) } }
        let rows = 203, cols = 901
        let w = randomFloats(rows * cols)
        let x = randomFloats(16 * cols)
        for v in [QS_VARIANT_SCALAR] + variants {
            for f16 in [false, true] {
                let single = gemv(v, f16: f16, w: w, x: Array(x[0..<cols]), n: 1, rows: rows, cols: cols, pool: pools[0])
                for pool in pools {
                    let batch = gemv(v, f16: f16, w: w, x: x, n: 16, rows: rows, cols: cols, pool: pool)
                    XCTAssertEqual(Array(batch[0..<rows]), single)
                }
            }
        }
    }

    func testPoolRunsEveryIndexOnce() {
        for threads in [1, 2, 4] {
            let pool = qs_pool_create(Int32(threads))
            // Each index writes only its own slot, so no synchronisation is needed to count.
            let hits = UnsafeMutablePointer<Int32>.allocate(capacity: 8)
            hits.initialize(repeating: 0, count: 8)
            for _ in 0..<1000 {
                qs_pool_run(pool, { ctx, index, _ in
                    ctx!.assumingMemoryBound(to: Int32.self)[Int(index)] += 1
                }, hits)
            }
            for i in 0..<threads { XCTAssertEqual(hits[i], 1000, "threads \(threads) index \(i)") }
            for i in threads..<8 { XCTAssertEqual(hits[i], 0) }
            hits.deallocate()
            qs_pool_destroy(pool)
        }
    }

    func testRMSNormAndSiluMul() {
        var x: [Float] = [1, 2, 3, 4]
        let w: [Float] = [1, 1, 2, 0.5]
        qs_rmsnorm(&x, x, w, 1, 4, 0)
        let rms = Float((1 + 4 + 9 + 16) / 4.0).squareRoot()
        for (got, want) in zip(x, [1 / rms, 2 / rms, 6 / rms, 2 / rms]) { XCTAssertEqual(got, want, accuracy: 1e-6) }
        var g: [Float] = [0, 1, -2]
        qs_silu_mul(QS_VARIANT_SCALAR, &g, [2, 3, 4], 3)
        XCTAssertEqual(g[0], 0)
        XCTAssertEqual(g[1], 3 / (1 + exp(-1)), accuracy: 1e-6)
        XCTAssertEqual(g[2], 4 * -2 / (1 + exp(2)), accuracy: 1e-6)
    }

    /// SiLU's AVX2 variant against the formula over the whole range (saturation and an odd tail included).
    func testSiluMulVariants() {
        var x: [Float] = [0, 1, -1, 20, -20, 90, -90, 1e-4, -1e-4]
        x += (0..<3000).map { Float($0 - 1500) / 100 }
        x += (0..<13).map { _ in Float(random.nextUnit() * 16 - 8) }
        let up = randomFloats(x.count).map { $0 * 3 }
        for v in [QS_VARIANT_SCALAR] + variants {
            var got = x
            qs_silu_mul(v, &got, up, Int64(x.count))
            for i in x.indices {
                let want = Double(x[i]) / (1 + exp(-Double(x[i]))) * Double(up[i])
                XCTAssertEqual(Double(got[i]), want, accuracy: 2e-6 * max(1, abs(Double(x[i] * up[i]))),
                               "\(String(cString: qs_variant_name(v))) x \(x[i])")
            }
        }
    }

    func testRopePairings() {
        // One head of dim 4 at position 1 with inverse frequencies [1, 0.5].
        let f: [Float] = [1, 0.5]
        var adjacent: [Float] = [1, 0, 1, 0]
        qs_rope(&adjacent, [1], 1, 1, 4, f, 0)
        XCTAssertEqual(adjacent[0], cos(1), accuracy: 1e-6)
        XCTAssertEqual(adjacent[1], sin(1), accuracy: 1e-6)
        XCTAssertEqual(adjacent[2], cos(0.5), accuracy: 1e-6)
        XCTAssertEqual(adjacent[3], sin(0.5), accuracy: 1e-6)
        var neox: [Float] = [1, 1, 0, 0]
        qs_rope(&neox, [1], 1, 1, 4, f, 1)
        XCTAssertEqual(neox[0], cos(1), accuracy: 1e-6)
        XCTAssertEqual(neox[2], sin(1), accuracy: 1e-6)
        XCTAssertEqual(neox[1], cos(0.5), accuracy: 1e-6)
        XCTAssertEqual(neox[3], sin(0.5), accuracy: 1e-6)
    }
}
