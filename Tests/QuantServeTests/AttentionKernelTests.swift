import CKernels
import XCTest
@testable import QuantServe

/// Paged attention against a plain reference on contiguous keys and values, every variant, GQA, windows, and
/// scattered block tables; and a token's result independent of the other tokens in the call.
final class AttentionKernelTests: XCTestCase {
    var random = RandomSource(seed: 11)
    let heads = 6, kvHeads = 2, headDim = 24, blockSize = 4, blockCount = 40

    func randomFloats(_ n: Int) -> [Float] { (0..<n).map { _ in Float(random.nextUnit() * 2 - 1) } }

    struct Setup {
        var kCache, vCache: [UInt16]
        /// Per sequence: block table and its keys and values as stored (fp16 values widened), position-major.
        var tables: [[Int32]]
        var keys, values: [[Float]]
    }

    /// Two sequences of `lengths` tokens, their blocks scattered over the pool in a shuffled order.
    func makeSetup(lengths: [Int]) -> Setup {
        let kvDim = kvHeads * headDim
        var order = Array(0..<Int32(blockCount))
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(random.next() % UInt64(i + 1))) }
        var s = Setup(kCache: Array(repeating: 0, count: blockCount * blockSize * kvDim),
                      vCache: Array(repeating: 0, count: blockCount * blockSize * kvDim), tables: [], keys: [], values: [])
        var next = 0
        for length in lengths {
            let blocks = (length + blockSize - 1) / blockSize
            let table = Array(order[next..<(next + blocks)])
            next += blocks
            let k = randomFloats(length * kvDim), v = randomFloats(length * kvDim)
            let slots = (0..<length).map { table[$0 / blockSize] * Int32(blockSize) + Int32($0 % blockSize) }
            qs_kv_store(&s.kCache, &s.vCache, k, v, slots, Int64(length), Int64(kvDim))
            s.tables.append(table)
            s.keys.append(k.map { Float(Float16($0)) })
            s.values.append(v.map { Float(Float16($0)) })
        }
        return s
    }

    func shape(window: Int) -> qs_attention_shape {
        qs_attention_shape(heads: Int64(heads), kv_heads: Int64(kvHeads), head_dim: Int64(headDim),
                           scale: 1 / Float(headDim).squareRoot(), window: Int64(window), block_size: Int64(blockSize))
    }

    /// Token i of the call belongs to sequence seq[i] at position pos[i].
    func attention(_ s: Setup, q: [Float], seq: [Int], pos: [Int32], window: Int, variant: qs_variant,
                   pool: OpaquePointer?) -> [Float] {
        var tables: [Int32] = [], starts: [Int32] = []
        var startOf: [Int32] = []
        for t in s.tables { startOf.append(Int32(tables.count)); tables += t }
        for i in seq { starts.append(startOf[i]) }
        let sh = shape(window: window)
        let per = Int(qs_attention_scratch(sh, 64))
        var scratch = [Float](repeating: 0, count: per * 4)
        var out = [Float](repeating: .nan, count: q.count)
        qs_paged_attention(pool, variant, &out, q, s.kCache, s.vCache, pos, tables, starts, Int64(seq.count), sh,
                           &scratch, Int64(per))
        return out
    }

    func reference(_ s: Setup, q: [Float], seq: [Int], pos: [Int32], window: Int) -> [Float] {
        let kvDim = kvHeads * headDim, group = heads / kvHeads
        var out = [Float](repeating: 0, count: q.count)
        for (i, sq) in seq.enumerated() {
            let last = Int(pos[i]), first = window > 0 ? max(0, last - window + 1) : 0
            for h in 0..<heads {
                let kvh = h / group
                let qh = Array(q[(i * heads + h) * headDim..<((i * heads + h) + 1) * headDim])
                var scores: [Double] = []
                for p in first...last {
                    var dot = 0.0
                    for j in 0..<headDim { dot += Double(qh[j]) * Double(s.keys[sq][p * kvDim + kvh * headDim + j]) }
                    scores.append(dot / Double(headDim).squareRoot())
                }
                let m = scores.max()!
                let e = scores.map { exp($0 - m) }
                let z = e.reduce(0, +)
                for j in 0..<headDim {
                    var acc = 0.0
                    for (t, p) in (first...last).enumerated() { acc += e[t] / z * Double(s.values[sq][p * kvDim + kvh * headDim + j]) }
                    out[(i * heads + h) * headDim + j] = Float(acc)
                }
            }
        }
        return out
    }

    func testEveryVariantMatchesTheReference() {
        let pool = qs_pool_create(2)
        defer { qs_pool_destroy(pool) }
        let s = makeSetup(lengths: [37, 21])
        // Prefill-like tokens of both sequences, mixed, some at block edges.
        let seq = [0, 1, 0, 0, 1, 1, 0]
        let pos: [Int32] = [0, 3, 4, 36, 20, 7, 15]
        let q = randomFloats(seq.count * heads * headDim)
        for window in [0, 5] {
            let expected = reference(s, q: q, seq: seq, pos: pos, window: window)
            for v in [QS_VARIANT_SCALAR] + [QS_VARIANT_AVX2, QS_VARIANT_AVX512].filter({ qs_variant_supported($0) != 0 }) {
                let got = attention(s, q: q, seq: seq, pos: pos, window: window, variant: v, pool: pool)
                for j in got.indices {
                    XCTAssertEqual(got[j], expected[j], accuracy: 1e-5, "\(String(cString: qs_variant_name(v))) window \(window)")
                }
            }
        }
    }

    func testATokensResultDoesNotDependOnTheOthers() {
        let pools = [qs_pool_create(1), qs_pool_create(3)]
        defer { pools.forEach { qs_pool_destroy($0) } }
        let s = makeSetup(lengths: [37, 21])
        let q = randomFloats(5 * heads * headDim)
        let alone = attention(s, q: Array(q[0..<(heads * headDim)]), seq: [1], pos: [19], window: 0,
                              variant: qs_best_variant(), pool: pools[0])
        for pool in pools {
            let batch = attention(s, q: q, seq: [1, 0, 0, 1, 0], pos: [19, 30, 2, 5, 36], window: 0,
                                  variant: qs_best_variant(), pool: pool)
            XCTAssertEqual(Array(batch[0..<(heads * headDim)]), alone)
        }
    }

    /// The int8 cache: each (token, head) row stored as codes and one scale per group (here the whole head, 24
    /// values, as 32 does not divide it), within half a step of the value, and attention over it equal to the
    /// reference on the dequantized keys and values, for every variant.
    func testInt8CacheMatchesItsReference() {
        XCTAssertEqual(qs_kv_int8_group(64), 32)
        XCTAssertEqual(qs_kv_int8_group(128), 32)
        XCTAssertEqual(qs_kv_int8_group(24), 24)
        let pool = qs_pool_create(2)
        defer { qs_pool_destroy(pool) }
        let kvDim = kvHeads * headDim, group = Int(qs_kv_int8_group(Int64(headDim)))
        var kCodes = [Int8](repeating: 0, count: blockCount * blockSize * kvDim), vCodes = kCodes
        var kScales = [Float](repeating: 0, count: blockCount * blockSize * kvDim / group), vScales = kScales
        var s = Setup(kCache: [], vCache: [], tables: [], keys: [], values: [])
        var next = 0
        for length in [29, 18] {
            let blocks = (length + blockSize - 1) / blockSize
            let table = (next..<(next + blocks)).map { Int32(blockCount - 1 - $0) }
            next += blocks
            let k = randomFloats(length * kvDim).map { $0 * 3 }, v = randomFloats(length * kvDim)
            let slots = (0..<length).map { table[$0 / blockSize] * Int32(blockSize) + Int32($0 % blockSize) }
            kCodes.withUnsafeMutableBytes { kc in vCodes.withUnsafeMutableBytes { vc in
                kScales.withUnsafeMutableBufferPointer { ks in vScales.withUnsafeMutableBufferPointer { vs in
                    var layer = qs_kv_layer(dtype: QS_KV_INT8, k: kc.baseAddress, v: vc.baseAddress, k_scale: ks.baseAddress,
                                            v_scale: vs.baseAddress, group: Int64(group))
                    qs_kv_store_layer(&layer, k, v, slots, Int64(length), Int64(kvDim))
                } }
            } }
            // The stored values, read back by hand: code times its group's scale.
            func stored(_ codes: [Int8], _ scales: [Float]) -> [Float] {
                (0..<(length * kvDim)).map { i in
                    let slot = Int(slots[i / kvDim]), j = i % kvDim
                    return Float(codes[slot * kvDim + j]) * scales[(slot * kvDim + j) / group]
                }
            }
            let keys = stored(kCodes, kScales), values = stored(vCodes, vScales)
            for (x, back) in [(k, keys), (v, values)] {
                for g in 0..<(x.count / group) {
                    let amax = x[(g * group)..<((g + 1) * group)].map(abs).max()!
                    for j in (g * group)..<((g + 1) * group) {
                        XCTAssertLessThanOrEqual(abs(back[j] - x[j]), amax / 254 * 1.0001 + 1e-7)
                    }
                }
            }
            s.tables.append(table)
            s.keys.append(keys)
            s.values.append(values)
        }
        let seq = [0, 1, 0, 1], pos: [Int32] = [28, 0, 3, 17]
        let q = randomFloats(seq.count * heads * headDim)
        var tables: [Int32] = [], starts: [Int32] = []
        for t in s.tables { starts.append(Int32(tables.count)); tables += t }
        let tokenStarts = seq.map { starts[$0] }
        for window in [0, 6] {
            let expected = reference(s, q: q, seq: seq, pos: pos, window: window)
            for v in [QS_VARIANT_SCALAR] + [QS_VARIANT_AVX2, QS_VARIANT_AVX512].filter({ qs_variant_supported($0) != 0 }) {
                let sh = shape(window: window)
                let per = Int(qs_attention_scratch(sh, 64))
                var scratch = [Float](repeating: 0, count: per * 4)
                var out = [Float](repeating: .nan, count: q.count)
                kCodes.withUnsafeMutableBytes { kc in vCodes.withUnsafeMutableBytes { vc in
                    kScales.withUnsafeMutableBufferPointer { ks in vScales.withUnsafeMutableBufferPointer { vs in
                        var layer = qs_kv_layer(dtype: QS_KV_INT8, k: kc.baseAddress, v: vc.baseAddress,
                                                k_scale: ks.baseAddress, v_scale: vs.baseAddress, group: Int64(group))
                        qs_paged_attention_layer(pool, v, &out, q, &layer, pos, tables, tokenStarts, Int64(seq.count), sh,
                                                 &scratch, Int64(per))
                    } }
                } }
                for j in out.indices {
                    XCTAssertEqual(out[j], expected[j], accuracy: 1e-5, "\(String(cString: qs_variant_name(v))) window \(window)")
                }
            }
        }
    }
}
