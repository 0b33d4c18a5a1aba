import Foundation

/// Wall time summed per named phase, in the order phases first ran (for logging where a long job's time goes).
final class PhaseClock {
    private var phases: [(name: String, seconds: Double)] = []

    func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if let i = phases.firstIndex(where: { $0.name == name }) { phases[i].seconds += seconds }
            else { phases.append((name, seconds)) }
        }
        return try body()
    }

    /// "capture 6.1 s, scales 20.3 s, ..."
    var summary: String {
        phases.map { String(format: "%@ %.1f s", $0.name, $0.seconds) }.joined(separator: ", ")
    }
}
