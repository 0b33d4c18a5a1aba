import XCTest
@testable import QuantServe

/// `quantserve plan`'s simulation: a replica's decode curve read as measured, requests conserved, time to first
/// token at least the prompt's prefill, an autoscaler that adds replicas under load within its bounds, and the same
/// answer every run.
final class CapacitySimulationTests: XCTestCase {
    let replica = CapacitySimulation.Replica(prefillTokensPerSecond: 200,
                                             decodeCurve: [(1, 30), (4, 80), (16, 160)], startSeconds: 20)

    func testTheDecodeCurveIsReadAsMeasured() {
        XCTAssertEqual(replica.decodeTokensPerSecond(1), 30, accuracy: 1e-9)
        XCTAssertEqual(replica.decodeTokensPerSecond(4), 80, accuracy: 1e-9)
        XCTAssertEqual(replica.decodeTokensPerSecond(10), 120, accuracy: 1e-9)
        XCTAssertEqual(replica.decodeTokensPerSecond(0.5), 15, accuracy: 1e-9)
        XCTAssertEqual(replica.decodeTokensPerSecond(40), 160, accuracy: 1e-9)
        XCTAssertEqual(replica.decodeTokensPerSecond(0), 0)
    }

    func testLightTrafficOneReplicaAndTheFirstTokenAfterThePrompt() {
        // One request every 10 s of 100 prompt tokens (0.5 s of prefill) and 20 output tokens: one replica idles.
        let traffic = [CapacitySimulation.Segment(start: 0, requestsPerSecond: 0.1, promptTokens: 100, outputTokens: 20)]
        let r = CapacitySimulation(replica: replica, traffic: traffic, duration: 1800).run()
        XCTAssertEqual(Set(r.replicasPerMinute), [1])
        XCTAssertEqual(r.replicasPerMinute.count, 30)
        XCTAssertEqual(Double(r.requests), 180, accuracy: 45, "about rate × duration")
        XCTAssertGreaterThanOrEqual(r.p99TTFT, 0.5 - 1e-9)
        XCTAssertLessThan(r.p99TTFT, 1.2)
        XCTAssertEqual(r.replicaSeconds, 1800, accuracy: 1)
        XCTAssertEqual(r.tokens, r.requests * 120)
    }

    func testHeavyTrafficScalesOutWithinBoundsAndDeterministically() {
        // 3 requests a second of 400 + 200 tokens: one replica manages about 0.25 (2 s of prefill plus 200 tokens
        // at 160 tok/s shared), so the autoscaler must add replicas, never past its maximum.
        let traffic = [CapacitySimulation.Segment(start: 0, requestsPerSecond: 0.05, promptTokens: 400, outputTokens: 200),
                       CapacitySimulation.Segment(start: 600, requestsPerSecond: 3, promptTokens: 400, outputTokens: 200)]
        var scaler = CapacitySimulation.Autoscaler()
        scaler.maxReplicas = 12
        scaler.targetBusy = 0.3
        let simulation = CapacitySimulation(replica: replica, traffic: traffic, duration: 2400, autoscaler: scaler)
        let r = simulation.run()
        XCTAssertLessThanOrEqual(r.replicasPerMinute.max() ?? 0, 12)
        XCTAssertEqual(r.replicasPerMinute.first, 1)
        XCTAssertGreaterThanOrEqual(r.replicasPerMinute.last ?? 0, 10, "\(r.replicasPerMinute)")
        let again = simulation.run()
        XCTAssertEqual(again.replicasPerMinute, r.replicasPerMinute)
        XCTAssertEqual(again.p99TTFT, r.p99TTFT)
        // Held to one replica, the same traffic queues: the first token comes far later.
        scaler.maxReplicas = 1
        let pinned = CapacitySimulation(replica: replica, traffic: traffic, duration: 2400, autoscaler: scaler).run()
        XCTAssertEqual(Set(pinned.replicasPerMinute), [1])
        XCTAssertGreaterThan(pinned.p99TTFT, 10 * r.p99TTFT)
    }
}
