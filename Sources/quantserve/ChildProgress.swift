import Foundation

/// How a `quantserve` child process tells its parent (`bench`) how far it is: with `QUANTSERVE_PROGRESS=1` in its
/// environment, lines `quantserve-progress PHASE DONE TOTAL` on stderr. Off otherwise.
enum ChildProgress {
    static let environmentKey = "QUANTSERVE_PROGRESS"
    static let prefix = "quantserve-progress "
    static let enabled = ProcessInfo.processInfo.environment[environmentKey] == "1"

    static func report(_ phase: String, _ done: Int, _ total: Int) {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\(prefix)\(phase) \(done) \(total)\n".utf8))
    }

    /// (phase, done, total) of a progress line; nil for any other line.
    static func parse(_ line: String) -> (phase: String, done: Int, total: Int)? {
        guard line.hasPrefix(prefix) else { return nil }
        let parts = line.dropFirst(prefix.count).split(separator: " ")
        guard parts.count == 3, let done = Int(parts[1]), let total = Int(parts[2]), total > 0 else { return nil }
        return (String(parts[0]), done, total)
    }
}
