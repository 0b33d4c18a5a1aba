import Foundation
import QuantServe
import QuantServeJSON
import Synchronization

/// `"model": "auto"`: per request, one of the served models, by rules on the request and by load. The ladder is the
/// served models in the order they were given (for `--model PATH:int8,int4`: int8, then int4): hard requests go to its
/// top, easy ones to its bottom, the rest to its top; and when the chosen target's expected queue wait passes
/// `maxWaitSeconds`, the request steps down the ladder to the first target that would start sooner.
public final class ModelRouter: Sendable {
    public static let name = "auto"

    /// What a request looks like to the rules.
    public enum Difficulty: String, Sendable {
        case hard, easy, plain
    }

    public struct Decision: Sendable {
        public let target: ServedModel
        /// `rule_hard`, `rule_easy`, `default`, or `load` when it stepped down.
        public let reason: String
    }

    public let ladder: [ServedModel]
    public let maxWaitSeconds: Double
    private let decisions = Mutex<[String: Int]>([:])

    public init(ladder: [ServedModel], maxWaitSeconds: Double = 1.0) {
        precondition(!ladder.isEmpty)
        self.ladder = ladder
        self.maxWaitSeconds = maxWaitSeconds
    }

    /// Words that signal work a larger level does better, and work any level does well.
    static let hardWords = ["analy", "debug", "prove", "proof", "theorem", "derive", "calculat", "math", "equation",
                            "optimi", "algorithm", "complexity", "step by step", "reason", "why does", "refactor",
                            "architecture", "bug", "traceback", "exception"]
    static let easyWords = ["translate", "translation", "format", "reformat", "spell", "capitaliz", "rephrase",
                            "summarize in one", "list the", "convert", "what is the capital", "say hello"]

    /// The difficulty of a request from its text, its length and its conversation depth, with the rule that decided.
    public static func classify(text: String, messages: Int) -> (Difficulty, String) {
        let lower = text.lowercased()
        if text.count > 4000 { return (.hard, "long prompt") }
        if messages >= 8 { return (.hard, "deep conversation") }
        if hardWords.contains(where: { lower.contains($0) }) { return (.hard, "hard words") }
        if easyWords.contains(where: { lower.contains($0) }) { return (.easy, "easy words") }
        if text.count < 200 { return (.easy, "short") }
        return (.plain, "default")
    }

    /// The request's text (a completion's prompt, or every message's text) and its number of messages.
    static func text(of f: JSONValue) -> (String, Int) {
        if let messages = f["messages"]?.array {
            let parts = messages.map { m -> String in
                if let s = m["content"]?.string { return s }
                return (m["content"]?.array ?? []).compactMap { $0["text"]?.string }.joined(separator: "\n")
            }
            return (parts.joined(separator: "\n"), messages.count)
        }
        if let s = f["prompt"]?.string { return (s, 1) }
        let strings = (f["prompt"]?.array ?? []).compactMap(\.string)
        return (strings.joined(separator: "\n"), 1)
    }

    /// The seconds a new request to `model` would wait before its first step: the requests already waiting, each a
    /// mean request's time, shared among the engine's sequences (a busy engine with no finished request yet counts
    /// 10 s a request).
    public static func expectedWait(_ model: ServedModel, meanSeconds: Double?) -> Double {
        guard let engine = model.engine else { return .infinity }
        let m = engine.metrics
        let waiting = m.requestsWaiting
        guard waiting > 0 else { return 0 }
        let slots = max(1, engine.description.options.scheduler.maxSequences)
        return Double(waiting + 1) * (meanSeconds ?? 10) / Double(slots)
    }

    /// Picks the target for a request, counting the decision. `expectedWait` gives a target's expected queue wait in
    /// seconds (the server's: `expectedWait(_:meanSeconds:)` on its live metrics).
    public func route(_ request: JSONValue, expectedWait: (ServedModel) -> Double) -> Decision {
        let (text, messages) = Self.text(of: request)
        let (difficulty, _) = Self.classify(text: text, messages: messages)
        var index = difficulty == .easy ? ladder.count - 1 : 0
        var reason = difficulty == .hard ? "rule_hard" : difficulty == .easy ? "rule_easy" : "default"
        // Under load, down the ladder to the first target that would start within the bound.
        if expectedWait(ladder[index]) > maxWaitSeconds {
            for lower in (index + 1)..<max(index + 1, ladder.count) where expectedWait(ladder[lower]) <= maxWaitSeconds {
                index = lower
                reason = "load"
                break
            }
        }
        let decision = Decision(target: ladder[index], reason: reason)
        decisions.withLock { $0["\(decision.target.name)\u{0}\(reason)", default: 0] += 1 }
        return decision
    }

    /// `quantserve:router_decisions_total{router, target, reason}` lines.
    public func renderDecisions() -> String {
        let snapshot = decisions.withLock { $0 }
        var out = "# HELP quantserve:router_decisions_total Requests to a router, by the target it chose and why.\n"
        out += "# TYPE quantserve:router_decisions_total counter\n"
        for (key, count) in snapshot.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "\u{0}", maxSplits: 1).map(String.init)
            out += "quantserve:router_decisions_total{router=\"\(Self.name)\",target=\"\(parts[0])\",reason=\"\(parts[1])\"} \(count)\n"
        }
        return out
    }
}
