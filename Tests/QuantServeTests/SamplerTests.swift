import XCTest
@testable import QuantServe

final class SamplerTests: XCTestCase {
    let logits: [Float] = [0.5, 3.0, -1.0, 2.5, 2.9, 0.0, 1.0, -2.0]

    func draw(_ p: SamplingParameters, times: Int = 2000) -> [Int32] {
        var sampler = Sampler(p)
        return (0..<times).map { _ in logits.withUnsafeBufferPointer { sampler.sample($0) } }
    }

    func testGreedyAndTopKOneAreArgmax() {
        XCTAssertEqual(Set(draw(.greedy, times: 10)), [1])
        XCTAssertEqual(Set(draw(SamplingParameters(temperature: 1, topK: 1, topP: 1, seed: 3), times: 50)), [1])
    }

    func testSeedMakesDrawsReproducible() {
        let p = SamplingParameters(temperature: 1, topK: 0, topP: 1, seed: 42)
        XCTAssertEqual(draw(p, times: 200), draw(p, times: 200))
        XCTAssertNotEqual(draw(p, times: 200), draw(SamplingParameters(temperature: 1, topK: 0, topP: 1, seed: 43), times: 200))
    }

    func testTopKAndTopPLimitTheSupport() {
        XCTAssertEqual(Set(draw(SamplingParameters(temperature: 1, topK: 3, topP: 1, seed: 1))), [1, 4, 3])
        // Top-p: softmax of (3.0, 2.9, 2.5, ...) puts ~0.36 on the first, ~0.33 on the second: p = 0.5 keeps two.
        XCTAssertEqual(Set(draw(SamplingParameters(temperature: 1, topK: 0, topP: 0.5, seed: 1))), [1, 4])
        XCTAssertEqual(Set(draw(SamplingParameters(temperature: 1, topK: 0, topP: 0.01, seed: 1))), [1])
    }

    func testTemperatureShapesTheDistribution() {
        // With all tokens allowed, the frequency of the best token follows softmax(logits / T).
        for t: Float in [0.5, 1, 2] {
            let draws = draw(SamplingParameters(temperature: t, topK: 0, topP: 1, seed: 9), times: 20000)
            let weights = logits.map { exp(Double($0 / t)) }
            let expected = weights[1] / weights.reduce(0, +)
            let observed = Double(draws.filter { $0 == 1 }.count) / Double(draws.count)
            XCTAssertEqual(observed, expected, accuracy: 0.02, "T=\(t)")
        }
    }

    func testInvalidParametersAreRejected() {
        XCTAssertThrowsError(try SamplingParameters(temperature: -1).validate())
        XCTAssertThrowsError(try SamplingParameters(temperature: .nan).validate())
        XCTAssertThrowsError(try SamplingParameters(topK: -2).validate())
        XCTAssertThrowsError(try SamplingParameters(topP: 0).validate())
        XCTAssertThrowsError(try SamplingParameters(topP: 1.5).validate())
        XCTAssertNoThrow(try SamplingParameters.greedy.validate())
    }
}

final class SamplerExtrasTests: XCTestCase {
    let logits: [Float] = [0.5, 3.0, -1.0, 2.5, 2.9, 0.0, 1.0, -2.0]

    func testMinPDropsUnlikelyTokens() {
        // softmax: p(1) ≈ 0.36, p(4) ≈ 0.33, p(3) ≈ 0.22, the rest below 0.05.
        var sampler = Sampler(SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0.5, seed: 7))
        let drawn = Set((0..<2000).map { _ in logits.withUnsafeBufferPointer { sampler.sample($0) } })
        XCTAssertEqual(drawn, [1, 4, 3])
    }

    func testPenaltiesChangeTheLogitsAsDocumented() {
        var p = PenaltyState(SamplingParameters(repetitionPenalty: 2, presencePenalty: 0.5, frequencyPenalty: 0.25),
                             prompt: [0])
        p.record(1)
        p.record(1)
        p.record(2)
        var l = logits
        l.withUnsafeMutableBufferPointer { p.apply(to: $0) }
        XCTAssertEqual(l[0], 0.25, accuracy: 1e-6, "prompt token, positive logit: divided")
        XCTAssertEqual(l[1], 3.0 / 2 - 0.5 - 0.5, accuracy: 1e-6, "generated twice")
        XCTAssertEqual(l[2], -1.0 * 2 - 0.5 - 0.25, accuracy: 1e-6, "negative logit: multiplied")
        XCTAssertEqual(l[3], 2.5)
    }

    func testLogprobsAreTheLogSoftmax() {
        let (lp, top) = logits.withUnsafeBufferPointer { Logprobs.of(4, in: $0, top: 2) }
        let z = log(logits.map { exp(Double($0)) }.reduce(0, +))
        XCTAssertEqual(Double(lp), Double(logits[4]) - z, accuracy: 1e-5)
        XCTAssertEqual(top.map(\.token), [1, 4])
        XCTAssertEqual(Double(top[0].logprob), Double(logits[1]) - z, accuracy: 1e-5)
    }

    func testInvalidValuesAreRejected() {
        XCTAssertThrowsError(try SamplingParameters(minP: 1.5).validate())
        XCTAssertThrowsError(try SamplingParameters(repetitionPenalty: 0).validate())
        XCTAssertThrowsError(try SamplingParameters(presencePenalty: 3).validate())
        XCTAssertThrowsError(try SamplingParameters(frequencyPenalty: .nan).validate())
    }
}
