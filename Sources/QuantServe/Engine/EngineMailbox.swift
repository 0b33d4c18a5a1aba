import Dispatch
import Synchronization

/// What crosses between the engine's callers and its loop: submissions and cancellations in, metrics out.
/// Everything in it is Sendable; the loop drains it at the start of every step.
final class EngineMailbox: Sendable {
    struct Submission: Sendable {
        let id: Int
        let request: GenerationRequest
        let handler: @Sendable (TokenEvent) -> Void
    }

    private struct Inbox {
        var nextID = 1
        var submissions: [Submission] = []
        var cancellations: [Int] = []
        var shutdown = false
        var metrics = EngineMetrics()
    }

    private let inbox = Mutex(Inbox())
    private let wake = DispatchSemaphore(value: 0)

    /// Queues a request; false once the engine is shutting down.
    func submit(_ request: GenerationRequest, handler: @escaping @Sendable (TokenEvent) -> Void) -> Int? {
        let id: Int? = inbox.withLock { box in
            guard !box.shutdown else { return nil }
            let id = box.nextID
            box.nextID += 1
            box.submissions.append(Submission(id: id, request: request, handler: handler))
            return id
        }
        if id != nil { wake.signal() }
        return id
    }

    func cancel(_ id: Int) {
        inbox.withLock { $0.cancellations.append(id) }
        wake.signal()
    }

    func shutdown() {
        inbox.withLock { $0.shutdown = true }
        wake.signal()
    }

    /// Everything that arrived since the last call.
    func take() -> (submissions: [Submission], cancellations: [Int], shutdown: Bool) {
        inbox.withLock { box in
            defer { box.submissions.removeAll(); box.cancellations.removeAll() }
            return (box.submissions, box.cancellations, box.shutdown)
        }
    }

    /// Blocks the loop until something is submitted, cancelled or shut down.
    func waitForWork() { wake.wait() }

    var metrics: EngineMetrics { inbox.withLock { $0.metrics } }
    func publish(_ metrics: EngineMetrics) { inbox.withLock { $0.metrics = metrics } }
}
