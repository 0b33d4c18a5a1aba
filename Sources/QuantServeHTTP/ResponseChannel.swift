import CHTTPShim
import Synchronization

/// Bytes on their way from a producer (the engine's event handler) to a connection's thread, which sleeps until
/// they come, the producer finishes, or the client hangs up. Whoever notices a hang-up (the waiting thread, or
/// the server when the connection closes) calls `hangUp()`, which runs `onHangUp` once (to cancel the generation).
public final class ResponseChannel: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var finished = false
        var hungUp = false
        /// The connection has sent the whole response (or closed).
        var closed = false
        var onHangUp: (@Sendable () -> Void)?
    }

    public enum Read: Equatable {
        case bytes([UInt8])
        /// Finished and drained.
        case end
        /// Nothing yet.
        case empty
        case hungUp
    }

    private let state = Mutex(State())
    /// Signalled on every write, finish and hang-up.
    let eventFD: Int32

    /// nil when no file descriptor is left for its eventfd.
    public init?() {
        eventFD = qs_http_eventfd()
        guard eventFD >= 0 else { return nil }
    }

    deinit { qs_http_close(eventFD) }

    /// What to do when the client goes away before the channel is finished; runs at once if it already has.
    public func onHangUp(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { s -> Bool in
            if s.hungUp { return true }
            s.onHangUp = action
            return false
        }
        if runNow { action() }
    }

    /// Appends bytes; false once the client has gone or the channel is finished (nothing is written then).
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        let ok = state.withLock { s -> Bool in
            guard !s.finished, !s.hungUp else { return false }
            s.pending.append(contentsOf: bytes)
            return true
        }
        if ok { qs_http_signal(eventFD) }
        return ok
    }

    /// Writes the last bytes and ends the stream; false if it had already ended (then nothing is written).
    @discardableResult
    public func finish(with bytes: [UInt8] = []) -> Bool {
        let ok = state.withLock { s -> Bool in
            guard !s.finished else { return false }
            if !s.hungUp { s.pending.append(contentsOf: bytes) }
            s.finished = true
            return true
        }
        if ok { qs_http_signal(eventFD) }
        return ok
    }

    public var isFinished: Bool { state.withLock { $0.finished } }

    /// The connection is done with this channel: its bytes were sent, or it closed.
    public var isClosed: Bool { state.withLock { $0.closed } }
    func connectionClosed() { state.withLock { $0.closed = true } }
    public var isHungUp: Bool { state.withLock { $0.hungUp } }

    /// The client went away: the producer's writes are dropped from now on.
    public func hangUp() {
        let action = state.withLock { s -> (@Sendable () -> Void)? in
            guard !s.hungUp else { return nil }
            s.hungUp = true
            s.pending = []
            let finished = s.finished
            s.finished = true
            defer { s.onHangUp = nil }
            return finished ? nil : s.onHangUp
        }
        qs_http_signal(eventFD)
        action?()
    }

    /// Takes up to `max` pending bytes without waiting.
    public func read(max: Int) -> Read {
        state.withLock { s in
            if s.hungUp { return .hungUp }
            if !s.pending.isEmpty {
                let n = min(max, s.pending.count)
                let out = Array(s.pending[..<n])
                s.pending.removeFirst(n)
                return .bytes(out)
            }
            return s.finished ? .end : .empty
        }
    }

    /// Sleeps until there is something to read or the client on `socket` hangs up (then `hangUp()` is called),
    /// at most `timeoutMilliseconds` (-1: no limit). `socket` < 0: no client to watch.
    public func wait(socket: Int32, timeoutMilliseconds: Int32 = -1) {
        if qs_http_wait(eventFD, socket, timeoutMilliseconds) == Int32(QS_WAIT_HANGUP) { hangUp() }
    }

    /// Sleeps until finished (or the client hangs up); true when finished with the client still there.
    public func waitUntilFinished(socket: Int32) -> Bool {
        while true {
            let (finished, hungUp) = state.withLock { ($0.finished, $0.hungUp) }
            if hungUp { return false }
            if finished { return true }
            wait(socket: socket)
        }
    }
}
