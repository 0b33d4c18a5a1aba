import Foundation

/// `bench`'s progress display on stderr: the level, its phase, how far the whole run is and about how long is left.
/// On a terminal one line rewritten in place; otherwise a plain line per phase; nothing when quiet (`--json`).
final class BenchProgress: @unchecked Sendable {
    /// Each phase's share of one level's time (roughly as measured on the default model).
    private static let weights: [String: Double] = ["load": 0.25, "rounds": 0.35, "serving": 0.2, "quality": 0.2, "tasks": 0.6]

    private let lock = NSLock()
    private let levels: [String]
    private let phases: [String]
    private let quiet: Bool
    private let terminal = isatty(STDERR_FILENO) == 1
    private let start = DispatchTime.now()
    private var level = 0
    /// The level and phase of the last plain line written.
    private var lastKey = ""

    init(levels: [String], quality: Bool, tasks: Bool, quiet: Bool) {
        self.levels = levels
        phases = ["load", "rounds", "serving"] + (quality ? ["quality"] : []) + (tasks ? ["tasks"] : [])
        self.quiet = quiet
    }

    func begin(level index: Int) { update(level: index, phase: "load", done: 0, total: 1) }

    func update(level index: Int? = nil, phase: String, done: Int, total: Int) {
        lock.lock(); defer { lock.unlock() }
        if let index { level = index }
        guard !quiet else { return }
        let share = phases.reduce(0) { $0 + Self.weights[$1]! }
        let before = phases.prefix { $0 != phase }.reduce(0) { $0 + Self.weights[$1]! }
        let within = (Self.weights[phase] ?? 0) * Double(min(done, total)) / Double(max(total, 1))
        let fraction = (Double(level) + (before + within) / share) / Double(levels.count)
        let elapsed = DispatchTime.now().seconds(since: start)
        let left = fraction > 0.02 ? " · about \(Self.duration(elapsed * (1 - fraction) / fraction)) left" : ""
        let line = "bench [\(level + 1)/\(levels.count)] \(levels[level]): \(Self.describe(phase)) \(done)/\(total)"
            + " · \(Int(fraction * 100))% done\(left)"
        if terminal {
            FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
        } else if "\(level) \(phase)" != lastKey {
            FileHandle.standardError.write(Data("\(line)\n".utf8))
            lastKey = "\(level) \(phase)"
        }
    }

    /// Ends the display (the terminal line is cleared).
    func finish() {
        lock.lock(); defer { lock.unlock() }
        guard !quiet else { return }
        let elapsed = Self.duration(DispatchTime.now().seconds(since: start))
        FileHandle.standardError.write(Data(((terminal ? "\r\u{1B}[K" : "") + "bench: done in \(elapsed)\n").utf8))
    }

    static func describe(_ phase: String) -> String {
        switch phase {
        case "load": "loading"
        case "rounds": "single-stream rounds"
        case "serving": "concurrency runs"
        case "quality": "perplexity chunks against fp16"
        case "tasks": "task suites (generating, then running the tests)"
        default: phase
        }
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}
