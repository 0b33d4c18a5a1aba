import Foundation
import Synchronization
@testable import QuantServe

/// What a test sees of one finished request.
struct Completion: Sendable {
    var tokens: [Int32] = []
    var text = ""
    var logprobs: [[TokenLogprob]] = []
    var summary: GenerationSummary?
    var error: EngineError?
}

extension Engine {
    static func load(_ path: String, level: QuantLevel, options: EngineOptions = EngineOptions()) throws -> Engine {
        try Engine(options: options) { context in try ModelLoader.load(path: path, level: level, context: context) }
    }

    /// Submits every request at once and waits for all of them.
    func complete(_ requests: [GenerationRequest]) throws -> [Completion] {
        let results = Mutex([Completion](repeating: Completion(), count: requests.count))
        let group = DispatchGroup()
        for (i, r) in requests.enumerated() {
            group.enter()
            try submit(r) { event in
                results.withLock { all in
                    switch event {
                    case .token(let t):
                        all[i].tokens.append(t.id)
                        all[i].text += t.text
                        all[i].logprobs.append(t.topLogprobs)
                    case .finished(let s):
                        all[i].summary = s
                        all[i].text += s.finalText
                    case .failed(let e):
                        all[i].error = e
                    }
                }
                switch event {
                case .token: break
                case .finished, .failed: group.leave()
                }
            }
        }
        group.wait()
        return results.withLock { $0 }
    }

    /// Waits until the loop has published metrics with nothing running (events precede the metrics update).
    func settledMetrics() -> EngineMetrics {
        for _ in 0..<1000 {
            let m = metrics
            if m.runningSequences == 0 && m.waitingSequences == 0 && m.kvBlocksUsed == 0 { return m }
            usleep(2000)
        }
        return metrics
    }
}
