import Foundation

/// Mean, median, standard deviation and percentiles as numpy computes them (linear interpolation between ranks),
/// so that figures compare with `vllm bench serve`'s.
public enum ServeStatistics {
    public static func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }

    public static func std(_ v: [Double]) -> Double {
        guard !v.isEmpty else { return 0 }
        let m = mean(v)
        return (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count)).squareRoot()
    }

    /// `p` in 0...100.
    public static func percentile(_ v: [Double], _ p: Double) -> Double {
        guard !v.isEmpty else { return 0 }
        let sorted = v.sorted()
        let rank = p / 100 * Double(sorted.count - 1)
        let low = Int(rank.rounded(.down)), high = Int(rank.rounded(.up))
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low))
    }
}

extension DispatchTime {
    /// Seconds from `start` to this time.
    func seconds(since start: DispatchTime) -> Double { Double(uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }
}
