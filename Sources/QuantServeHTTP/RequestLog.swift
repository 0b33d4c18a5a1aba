import Dispatch
import Synchronization

/// A request's access-log entry while it is answered. A streamed answer is logged when the stream ends, which
/// may be before or after its handler returns: the line is written by whichever of the two comes second.
final class RequestLog: Sendable {
    private struct State {
        var entry: AccessLog.Entry
        var handlerDone = false
        var streamEnded = false
        var written = false
    }

    let id: String
    let arrival = DispatchTime.now()
    private let state: Mutex<State>

    init(id: String, method: String, path: String) {
        self.id = id
        state = Mutex(State(entry: AccessLog.Entry(requestID: id, method: method, path: path)))
    }

    var modelName: String? { state.withLock { $0.entry.model } }
    /// The name of the API key the request sent, when the server has keys.
    var apiKeyName: String? { state.withLock { $0.entry.apiKey } }

    func update(_ body: (inout AccessLog.Entry) -> Void) { state.withLock { body(&$0.entry) } }

    /// A whole response: log it now.
    func finish(_ log: AccessLog) { write(log) { $0.handlerDone = true; $0.streamEnded = true } }

    /// A stream: log it when `streamEnded` is called too.
    func finishWhenStreamEnds(_ log: AccessLog) { write(log) { $0.handlerDone = true } }

    func streamEnded(_ log: AccessLog) { write(log) { $0.streamEnded = true } }

    private func write(_ log: AccessLog, _ mark: (inout State) -> Void) {
        let entry = state.withLock { s -> AccessLog.Entry? in
            mark(&s)
            guard s.handlerDone, s.streamEnded, !s.written else { return nil }
            s.written = true
            s.entry.totalSeconds = DispatchTime.now().seconds(since: arrival)
            return s.entry
        }
        if let entry { log.write(entry) }
    }
}
