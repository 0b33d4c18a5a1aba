import Foundation

/// This executable's own path.
var ownExecutable: URL { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath() }

/// Runs this executable again as a child (`quantserve ARGS`; or `executable`), its progress lines passed to
/// `onProgress` as they come, and returns its standard output. Throws with the end of its stderr when it fails.
func runChild(_ arguments: [String], executable: URL = ownExecutable,
              onProgress: @escaping @Sendable (String, Int, Int) -> Void) throws -> Data {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment[ChildProgress.environmentKey] = "1"
    process.environment = environment
    let stdout = Pipe(), stderr = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    // Stderr on its own thread, so that neither pipe can fill while the other is read.
    let tail = TailLines(limit: 40)
    let stderrDone = DispatchSemaphore(value: 0)
    let reader = Thread {
        var pending = Data()
        while true {
            let chunk = stderr.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            pending.append(chunk)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                if let p = ChildProgress.parse(line) { onProgress(p.phase, p.done, p.total) } else { tail.append(line) }
            }
        }
        if !pending.isEmpty { tail.append(String(decoding: pending, as: UTF8.self)) }
        stderrDone.signal()
    }
    reader.start()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    stderrDone.wait()
    guard process.terminationReason == .exit, process.terminationStatus == 0 else {
        let how = process.terminationReason == .exit ? "exited with status \(process.terminationStatus)"
            : "was killed by signal \(process.terminationStatus)"
        throw ChildFailure(description: "'\(executable.lastPathComponent) \(arguments.prefix(5).joined(separator: " ")) ...' \(how):\n"
                           + tail.lines.joined(separator: "\n"))
    }
    return output
}

struct ChildFailure: Error, CustomStringConvertible { let description: String }

/// The last `limit` lines seen, shared between the reading thread and the caller.
final class TailLines: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    private let limit: Int
    init(limit: Int) { self.limit = limit }
    func append(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        stored.append(line)
        if stored.count > limit { stored.removeFirst() }
    }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return stored }
}
