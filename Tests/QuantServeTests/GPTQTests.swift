@testable import QuantServe
import CKernels
import XCTest

/// GPTQ rounding (`qs_gptq_q4_block` and `GPTQ`) against a plain double-precision transcription of the published
/// algorithm, and its defining properties: it lowers the output error it optimises, a diagonal covariance reduces it
/// to round-to-nearest, and neither the thread count nor the kernel variant changes the rounding.
final class GPTQTests: XCTestCase {
    struct Random {
        var state: UInt64
        mutating func uniform() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
    }

    /// Correlated inputs [n, k]: a few shared factors plus noise, and two outlier channels (as in real activations).
    func inputs(n: Int, k: Int, seed: UInt64) -> [Float] {
        var random = Random(state: seed)
        let factors = 8
        let mixing = (0..<(factors * k)).map { _ in random.uniform() }
        var x = [Float](repeating: 0, count: n * k)
        for t in 0..<n {
            let z = (0..<factors).map { _ in random.uniform() }
            for j in 0..<k {
                var v = 0.3 * random.uniform()
                for f in 0..<factors { v += z[f] * mixing[f * k + j] }
                x[t * k + j] = j == 3 || j == k / 2 ? 20 * v : v
            }
        }
        return x
    }

    func weights(rows: Int, cols: Int, seed: UInt64) -> Matrix {
        var random = Random(state: seed)
        return Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in random.uniform() * 0.1 })
    }

    func dequantized(_ m: WeightMatrix) -> [Float] {
        var out = [Float](repeating: 0, count: m.rows * m.cols)
        out.withUnsafeMutableBufferPointer { m.dequantizeRows(0..<m.rows, into: $0.baseAddress!) }
        return out
    }

    func roundToNearest(_ w: Matrix, group: Int, clip: [Float]?) -> WeightMatrix {
        WeightMatrix(rows: w.rows, cols: w.cols, format: MatrixFormat(kind: QS_FORMAT_Q4, group: group), clip: clip) { range, destination in
            for (i, r) in range.enumerated() {
                for j in 0..<w.cols { destination[i * w.cols + j] = w.values[r * w.cols + j] }
            }
        }
    }

    /// ‖X (W − Q)ᵀ‖², the output error on the inputs.
    func outputError(_ x: [Float], n: Int, _ w: Matrix, _ q: [Float]) -> Double {
        let reference = w.product(x, n: n), output = Matrix(rows: w.rows, cols: w.cols, values: q).product(x, n: n)
        return qs_squared_error(reference, output, Int64(reference.count))
    }

    func testInverseFactorInvertsTheDampedCovariance() throws {
        let k = 96, n = 200
        let h = GPTQ.covariance(inputs(n: n, k: k, seed: 1), n: n, k: k)
        let gptq = GPTQ(damping: 0.01)
        let u = try XCTUnwrap(gptq.inverseFactor(covariance: h, k: k))
        let mean = (0..<k).reduce(Float(0)) { $0 + h[$1 * k + $1] } / Float(k)
        for r in 0..<k { for c in 0..<r { XCTAssertEqual(u[r * k + c], 0, "upper triangular") } }
        // UᵀU (H + λI) = I.
        var worst: Double = 0
        for i in 0..<k {
            for j in 0..<k {
                var sum: Double = 0
                for m in 0..<k {
                    var inverse: Double = 0
                    for t in 0...min(i, m) { inverse += Double(u[t * k + i]) * Double(u[t * k + m]) }
                    sum += inverse * Double(h[m * k + j] + (m == j ? 0.01 * mean : 0))
                }
                worst = max(worst, abs(sum - (i == j ? 1 : 0)))
            }
        }
        XCTAssertLessThan(worst, 2e-3)
    }

    /// The kernel's batched, act-ordered rounding against the textbook loop (every column's error applied to the
    /// whole rest of the row at once), in double precision, over three column batches (the last one partial).
    func testMatchesTheTextbookAlgorithm() throws {
        let rows = 13, k = 320, group = 64, n = 400
        let x = inputs(n: n, k: k, seed: 2)
        let w = weights(rows: rows, cols: k, seed: 3)
        let gptq = GPTQ(damping: 0.01)
        let context = ComputeContext(threads: 2)
        let ours = dequantized(try XCTUnwrap(gptq.quantize(w, inputs: x, n: n, group: group, clip: nil, pool: context.pool)))

        // The same static groups, order and factor; then the plain algorithm.
        let rtn = roundToNearest(w, group: group, clip: nil)
        let h = GPTQ.covariance(x, n: n, k: k)
        let order = (0..<k).sorted { h[$0 * k + $0] != h[$1 * k + $1] ? h[$0 * k + $0] > h[$1 * k + $1] : $0 < $1 }
        var permuted = [Float](repeating: 0, count: k * k)
        for i in 0..<k { for j in 0..<k { permuted[i * k + j] = h[order[i] * k + order[j]] } }
        let u = try XCTUnwrap(gptq.inverseFactor(covariance: permuted, k: k))
        var reference = [Float](repeating: 0, count: rows * k)
        for r in 0..<rows {
            var row = order.map { Double(w.values[r * k + $0]) }
            for i in 0..<k {
                let g = r * (k / group) + order[i] / group
                let scale = Double(qs_fp16_to_fp32(rtn.scales!.typed(UInt16.self)[g])), zero = Double(rtn.zeros!.typed(UInt8.self)[g])
                let code = min(15, max(0, (row[i] / scale).rounded(.toNearestOrEven) + zero))
                let value = (code - zero) * scale
                reference[r * k + order[i]] = Float(value)
                let e = (row[i] - value) / Double(u[i * k + i])
                for j in (i + 1)..<max(i + 1, k) { row[j] -= e * Double(u[i * k + j]) }
            }
        }
        let same = zip(ours, reference).filter { $0 == $1 }.count
        XCTAssertGreaterThanOrEqual(Double(same) / Double(ours.count), 0.995, "values equal to the reference")
        // Float against double can move a value across a rounding boundary: then by one level only.
        for i in ours.indices where ours[i] != reference[i] {
            let g = (i / k) * (k / group) + (i % k) / group
            let scale = qs_fp16_to_fp32(rtn.scales!.typed(UInt16.self)[g])
            XCTAssertEqual(abs(ours[i] - reference[i]), scale, accuracy: scale * 1e-3)
        }
    }

    func testLowersTheOutputErrorOnItsCalibration() throws {
        let rows = 40, k = 256, group = 128, n = 512
        let x = inputs(n: n, k: k, seed: 4)
        let w = weights(rows: rows, cols: k, seed: 5)
        let context = ComputeContext(threads: 2)
        for damping: Float in [0.01, 1] {
            let gptq = GPTQ(damping: damping)
            let rounded = dequantized(try XCTUnwrap(gptq.quantize(w, inputs: x, n: n, group: group, clip: nil, pool: context.pool)))
            let nearest = dequantized(roundToNearest(w, group: group, clip: nil))
            let (ours, baseline) = (outputError(x, n: n, w, rounded), outputError(x, n: n, w, nearest))
            XCTAssertLessThan(ours, (damping < 0.1 ? 0.5 : 0.9) * baseline, "damping \(damping)")
        }
    }

    /// With a diagonal covariance no error is spread, so GPTQ is round-to-nearest bit for bit: clipping included,
    /// and across column blocks (the blocked assembly of a wide matrix).
    func testDiagonalCovarianceGivesRoundToNearest() throws {
        let rows = 9, k = 256, group = 32
        var random = Random(state: 6)
        // Inputs with one active channel per token: XᵀX is diagonal.
        let n = 2 * k
        var x = [Float](repeating: 0, count: n * k)
        for t in 0..<n { x[t * k + t % k] = 1 + abs(random.uniform()) }
        let w = weights(rows: rows, cols: k, seed: 7)
        let clip = (0..<(rows * k / group)).map { _ in 0.06 + 0.04 * abs(random.uniform()) }
        let context = ComputeContext(threads: 2)
        for maximumBlock in [1024, 64] {
            let gptq = GPTQ(damping: 0.01, maximumBlock: maximumBlock)
            let rounded = try XCTUnwrap(gptq.quantize(w, inputs: x, n: n, group: group, clip: clip, pool: context.pool))
            XCTAssertTrue(rounded.hasSameContents(as: roundToNearest(w, group: group, clip: clip)), "blocks of \(maximumBlock)")
        }
    }

    func testNeitherThreadsNorVariantChangeTheRounding() throws {
        let rows = 21, k = 192, group = 64, n = 300
        let x = inputs(n: n, k: k, seed: 8)
        let w = weights(rows: rows, cols: k, seed: 9)
        let gptq = GPTQ(damping: 0.01)
        let single = ComputeContext(threads: 1), double = ComputeContext(threads: 2)
        let one = try XCTUnwrap(gptq.quantize(w, inputs: x, n: n, group: group, clip: nil, pool: single.pool))
        let two = try XCTUnwrap(gptq.quantize(w, inputs: x, n: n, group: group, clip: nil, pool: double.pool))
        withExtendedLifetime((single, double)) { XCTAssertTrue(one.hasSameContents(as: two)) }

        // One batch of every column through each kernel variant: the same codes but for float contraction (FMA).
        try XCTSkipUnless(qs_variant_supported(QS_VARIANT_AVX2) != 0, "no AVX2")
        let h = GPTQ.covariance(x, n: n, k: k)
        let u = try XCTUnwrap(gptq.inverseFactor(covariance: h, k: k))
        let rtn = roundToNearest(w, group: group, clip: nil)
        var results: [([UInt8], [Float])] = []
        for variant in [QS_VARIANT_SCALAR, QS_VARIANT_AVX2] {
            var working = w.values, codes = [UInt8](repeating: 0, count: rows * k), errors = [Float](repeating: 0, count: rows * k)
            qs_gptq_q4_block_v(nil, variant, &codes, &errors, &working, Int64(k), u, Int64(rows), Int64(k), 0, Int64(k), nil,
                               rtn.scales!.typed(UInt16.self), rtn.zeros!.typed(UInt8.self), Int64(group))
            results.append((codes, errors))
        }
        let sameCodes = zip(results[0].0, results[1].0).filter { $0 == $1 }.count
        XCTAssertGreaterThanOrEqual(Double(sameCodes) / Double(rows * k), 0.995)
        // The first column's errors involve no spreading yet: equal in both.
        for r in 0..<rows { XCTAssertEqual(results[0].1[r * k], results[1].1[r * k]) }
    }
}
