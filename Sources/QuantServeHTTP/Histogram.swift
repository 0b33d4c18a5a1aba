import Foundation

/// A Prometheus histogram: cumulative bucket counts, their sum and count.
struct Histogram: Sendable {
    let bounds: [Double]
    private(set) var counts: [Int]
    private(set) var sum = 0.0
    private(set) var count = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    mutating func observe(_ value: Double) {
        guard value.isFinite else { return }
        sum += value
        count += 1
        if let i = bounds.firstIndex(where: { value <= $0 }) { counts[i] += 1 }
    }

    /// The `_bucket`, `_sum` and `_count` lines of `name` with `labels` (`model_name="x"`).
    func render(_ name: String, labels: String, into out: inout String) {
        var cumulative = 0
        for (bound, c) in zip(bounds, counts) {
            cumulative += c
            out += "\(name)_bucket{\(labels),le=\"\(formatBound(bound))\"} \(cumulative)\n"
        }
        out += "\(name)_bucket{\(labels),le=\"+Inf\"} \(count)\n"
        out += "\(name)_sum{\(labels)} \(sum)\n"
        out += "\(name)_count{\(labels)} \(count)\n"
    }

    private func formatBound(_ b: Double) -> String {
        b == b.rounded() && abs(b) < 1e15 ? String(format: "%.1f", b) : "\(b)"
    }

    /// vLLM's buckets, so its dashboards read these unchanged.
    static let timeToFirstToken: [Double] = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                                             5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]
    static let interToken: [Double] = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0,
                                       7.5, 10.0, 20.0, 40.0, 80.0]
    static let requestLatency: [Double] = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
                                           60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0]
}
