import CKernels
import Foundation
import XCTest

/// The kernels Gemma 3 added: sliding-window attention and the GELU(tanh)-gated product.
final class SlidingWindowKernelTests: XCTestCase {
    private var rng = SystemRandomNumberGenerator()

    private func randoms(_ n: Int, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in Float.random(in: -scale...scale, using: &rng) }
    }

    /// softmax(q·k * scale) v over keys in (p - window, p] (all of 0...p for window 0), in double precision.
    private func referenceAttention(q: [Float], k: [Float], v: [Float], positions: [Int32], heads: Int, kvHeads: Int,
                                    headDim d: Int, scale: Float, window: Int) -> [Float] {
        var out = [Float](repeating: 0, count: positions.count * heads * d)
        for (i, p) in positions.enumerated() {
            let p = Int(p)
            let first = window > 0 ? max(0, p - window + 1) : 0
            for h in 0..<heads {
                let kvh = h / (heads / kvHeads)
                var scores: [Double] = []
                for t in first...p {
                    var dot = 0.0
                    for j in 0..<d { dot += Double(q[(i * heads + h) * d + j]) * Double(k[(t * kvHeads + kvh) * d + j]) }
                    scores.append(dot * Double(scale))
                }
                let m = scores.max()!
                let e = scores.map { exp($0 - m) }
                let sum = e.reduce(0, +)
                for j in 0..<d {
                    var acc = 0.0
                    for (s, t) in (first...p).enumerated() { acc += e[s] / sum * Double(v[(t * kvHeads + kvh) * d + j]) }
                    out[(i * heads + h) * d + j] = Float(acc)
                }
            }
        }
        return out
    }

    /// One sequence of `rows` positions in a paged cache (blocks of 4, in order), attended at `positions`.
    private func pagedAttention(pool: OpaquePointer?, q: [Float], k: [Float], v: [Float], rows: Int, positions: [Int32],
                                heads: Int, kvHeads: Int, headDim d: Int, scale: Float, window: Int) -> [Float] {
        let blockSize = 4, kvDim = kvHeads * d
        let blocks = (rows + blockSize - 1) / blockSize
        var kCache = [UInt16](repeating: 0, count: blocks * blockSize * kvDim), vCache = kCache
        qs_kv_store(&kCache, &vCache, k, v, (0..<Int32(rows)).map { $0 }, Int64(rows), Int64(kvDim))
        let shape = qs_attention_shape(heads: Int64(heads), kv_heads: Int64(kvHeads), head_dim: Int64(d), scale: scale,
                                       window: Int64(window), block_size: Int64(blockSize))
        let per = Int(qs_attention_scratch(shape, Int64(rows)))
        var scratch = [Float](repeating: 0, count: per * Int(qs_pool_size(pool)))
        var out = [Float](repeating: .nan, count: q.count)
        let table = (0..<Int32(blocks)).map { $0 }
        qs_paged_attention(pool, qs_best_variant(), &out, q, kCache, vCache, positions, table,
                           [Int32](repeating: 0, count: positions.count), Int64(positions.count), shape, &scratch, Int64(per))
        return out
    }

    func testAttentionHonoursTheWindow() {
        let heads = 4, kvHeads = 2
        for d in [16, 20] {  // 20: a tail after the 16-wide SIMD steps
            let rows = 15
            let positions: [Int32] = [0, 1, 9, 12, 14]
            let q = randoms(positions.count * heads * d, scale: 2)
            // Keys and values as the fp16 cache holds them.
            let k = randoms(rows * kvHeads * d, scale: 2).map { Float(Float16($0)) }
            let v = randoms(rows * kvHeads * d).map { Float(Float16($0)) }
            let scale = 1 / Float(d).squareRoot()
            for threads in [1, 2] {
                let pool = qs_pool_create(Int32(threads))
                defer { qs_pool_destroy(pool) }
                var previous: [Float]?
                for window in [0, 1, 3, 8, 15, 100] {
                    let out = pagedAttention(pool: pool, q: q, k: k, v: v, rows: rows, positions: positions, heads: heads,
                                             kvHeads: kvHeads, headDim: d, scale: scale, window: window)
                    let want = referenceAttention(q: q, k: k, v: v, positions: positions, heads: heads, kvHeads: kvHeads,
                                                  headDim: d, scale: scale, window: window)
                    for (x, y) in zip(out, want) {
                        XCTAssertEqual(x, y, accuracy: 1e-5, "d \(d) window \(window) threads \(threads)")
                    }
                    // A window reaching back to position 0 is no window at all; a shorter one changes the result.
                    if window == 0 { previous = out }
                    if window >= 15 { XCTAssertEqual(previous, out, "window \(window) covers positions 0...14") }
                    if window == 3 { XCTAssertNotEqual(previous, out) }
                }
                // Window 1: each query sees only its own position's value row.
                let out = pagedAttention(pool: pool, q: q, k: k, v: v, rows: rows, positions: positions, heads: heads,
                                         kvHeads: kvHeads, headDim: d, scale: scale, window: 1)
                for (i, p) in positions.enumerated() {
                    for h in 0..<heads {
                        let kvh = h / (heads / kvHeads)
                        for j in 0..<d {
                            XCTAssertEqual(out[(i * heads + h) * d + j], v[(Int(p) * kvHeads + kvh) * d + j], accuracy: 1e-6)
                        }
                    }
                }
            }
        }
    }

    func testGeluTanhMulScalarAndAVX2() throws {
        // Values across the whole range, the saturation regions and exact zeros included.
        var x: [Float] = [0, -0, 1, -1, 0.5, -0.5, 3, -3, 9.9, -9.9, 10, -10, 20, -20, 60, -60, 1e-4, -1e-4, 1e-30]
        x += (0..<4000).map { Float($0 - 2000) / 150 }
        x += randoms(997, scale: 6)
        let up = randoms(x.count, scale: 3)
        func gelu(_ v: Float) -> Double {
            let d = Double(v)
            return 0.5 * d * (1 + tanh(0.79788456080286535587989211986876 * (d + 0.044715 * d * d * d)))
        }
        var scalar = x
        qs_gelu_tanh_mul(QS_VARIANT_SCALAR, &scalar, up, Int64(x.count))
        for i in x.indices {
            let want = gelu(x[i]) * Double(up[i])
            XCTAssertEqual(Double(scalar[i]), want, accuracy: 2e-6 * max(1, abs(Double(x[i] * up[i]))), "x \(x[i])")
        }
        XCTAssertEqual(scalar[0], 0)
        guard qs_variant_supported(QS_VARIANT_AVX2) != 0 else { throw XCTSkip("no AVX2 on this CPU") }
        var simd = x
        qs_gelu_tanh_mul(QS_VARIANT_AVX2, &simd, up, Int64(x.count))
        var worst: Float = 0
        for i in x.indices {
            worst = max(worst, abs(simd[i] - scalar[i]) / max(1, abs(x[i] * up[i])))
        }
        XCTAssertLessThan(worst, 2e-6, "AVX2 against the scalar reference")
        // Odd lengths: the tail after the 8-wide steps takes the scalar path.
        var tail = Array(x.prefix(13))
        qs_gelu_tanh_mul(QS_VARIANT_AVX2, &tail, up, 13)
        for i in 0..<13 { XCTAssertEqual(tail[i], simd[i], accuracy: 2e-6 * max(1, abs(x[i] * up[i]))) }
    }
}
