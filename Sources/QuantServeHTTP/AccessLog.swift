import Foundation

/// One line per request on stderr: time, request id, method, route, status, prompt / cached / completion
/// tokens, time to first token and total time, then the model that answered, the API key's name and a cache hit.
public struct AccessLog: Sendable {
    public var enabled = true
    public init(enabled: Bool = true) { self.enabled = enabled }

    struct Entry: Sendable {
        var requestID: String
        var method: String
        var path: String
        var model: String?
        /// The name of the API key the request used (config `api_keys`).
        var apiKey: String?
        /// `hit` when the response cache answered.
        var cache: String?
        var status = 0
        var promptTokens = 0
        var cachedTokens = 0
        var completionTokens = 0
        var timeToFirstToken: Double?
        var totalSeconds = 0.0
    }

    func write(_ e: Entry) {
        guard enabled else { return }
        let ttft = e.timeToFirstToken.map { String(format: "%.3f", $0) } ?? "-"
        let line = "\(Self.timestamp()) \(e.requestID) \(e.method) \(e.path) \(e.status) prompt=\(e.promptTokens) "
            + "cached=\(e.cachedTokens) completion=\(e.completionTokens) ttft=\(ttft) total="
            + String(format: "%.3f", e.totalSeconds) + (e.model.map { " model=\($0)" } ?? "")
            + (e.apiKey.map { " key=\($0)" } ?? "") + (e.cache.map { " cache=\($0)" } ?? "") + "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var t = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &t)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                      t.tm_hour, t.tm_min, t.tm_sec, now.tv_nsec / 1_000_000)
    }
}
