import Dispatch
import Synchronization

/// What crosses between the engine's callers and its loop: submissions and cancellations in, metrics out.
/// Everything in it is Sendable; the loop drains it at the start of every step.
final class EngineMailbox: Sendable {
    struct Submission: Sendable {
        let id: Int
        let request: GenerationRequest
        let handler: @Sendable (TokenEvent) -> Void
        /// A copy of this earlier submission's prompt: it starts once that prompt is computed, so that it reads
        /// the prompt's KV blocks from the prefix cache instead of computing them again.
        let follows: Int?
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
    /// Requests submitted and not yet scheduled: the waiting queue's length, bounded by `maxWaiting`.
    let queued = Atomic<Int>(0)

    /// Queues requests (copies of one prompt follow the first, see `Submission.follows`); nil once the engine is
    /// shutting down. Throws `.queueFull` when they would take more than `maxWaiting` places in the queue.
    func submit(_ requests: [GenerationRequest], sharingPrompt: Bool, maxWaiting: Int,
                handlers: [@Sendable (TokenEvent) -> Void]) throws(EngineError) -> [Int]? {
        let n = requests.count
        let (_, count) = queued.add(n, ordering: .relaxed)
        guard count <= maxWaiting else {
            queued.subtract(n, ordering: .relaxed)
            throw .queueFull(limit: maxWaiting)
        }
        let ids: [Int]? = inbox.withLock { box in
            guard !box.shutdown else { return nil }
            let first = box.nextID
            box.nextID += n
            for (k, request) in requests.enumerated() {
                box.submissions.append(Submission(id: first + k, request: request, handler: handlers[k],
                                                  follows: sharingPrompt && k > 0 ? first : nil))
            }
            return Array(first..<(first + n))
        }
        if ids != nil { wake.signal() } else { queued.subtract(n, ordering: .relaxed) }
        return ids
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

    var metrics: EngineMetrics {
        var m = inbox.withLock { $0.metrics }
        m.queuedRequests = queued.load(ordering: .relaxed)
        return m
    }
    func publish(_ metrics: EngineMetrics) { inbox.withLock { $0.metrics = metrics } }
}
