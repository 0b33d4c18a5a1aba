import Foundation
import QuantServe
import QuantServeJSON
import Synchronization

/// A router: per request, one of the served models, by rules on the request and by load. `auto` exists whenever a
/// server holds more than one target, with the default rules and the targets in the order given as its ladder (for
/// `--model PATH:int8,int4`: int8, then int4); a config file may declare routers of its own. The first rule that
/// matches picks a ladder position (hard work to the top, easy work to the bottom by default); no match: the top.
/// When the chosen target's expected queue wait passes `maxWaitSeconds`, the request steps down the ladder to the
/// first target that would start within it.
public final class ModelRouter: Sendable {
    /// The default router's name.
    public static let name = "auto"

    public struct Decision: Sendable {
        public let target: ServedModel
        /// `rule_NAME` of the rule that matched, `default`, or `load` when it stepped down.
        public let reason: String
    }

    public let name: String
    public let ladder: [ServedModel]
    public let rules: [RouterRule]
    public let maxWaitSeconds: Double
    private let decisions = Mutex<[String: Int]>([:])

    /// `rules`' named targets must be on the ladder (the config reader checks).
    public init(name: String = ModelRouter.name, ladder: [ServedModel], rules: [RouterRule] = RouterRule.defaults,
                maxWaitSeconds: Double = 1.0) {
        precondition(!ladder.isEmpty)
        self.name = name
        self.ladder = ladder
        self.rules = rules
        self.maxWaitSeconds = maxWaitSeconds
    }

    /// The ladder position a request's first matching rule picks, with the reason (nil rule: the top, `default`).
    func position(text: String, messages: Int) -> (Int, String) {
        let lowered = text.lowercased(), chars = text.count
        guard let rule = rules.first(where: { $0.matches(lowered: lowered, chars: chars, messages: messages) }) else {
            return (0, "default")
        }
        switch rule.target {
        case .top: return (0, "rule_" + rule.name)
        case .bottom: return (ladder.count - 1, "rule_" + rule.name)
        case .named(let n): return (ladder.firstIndex { $0.name == n } ?? 0, "rule_" + rule.name)
        }
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
        var (index, reason) = position(text: text, messages: messages)
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

    /// The decisions so far: (target, reason) → count.
    public var decisionCounts: [(target: String, reason: String, count: Int)] {
        decisions.withLock { $0 }.sorted { $0.key < $1.key }.map { key, count in
            let parts = key.split(separator: "\u{0}", maxSplits: 1).map(String.init)
            return (parts[0], parts[1], count)
        }
    }

    /// `quantserve:router_decisions_total{router, target, reason}` lines (the family's header is the caller's).
    public func renderDecisions() -> String {
        var out = ""
        for d in decisionCounts {
            out += "quantserve:router_decisions_total{router=\"\(name)\",target=\"\(d.target)\",reason=\"\(d.reason)\"} \(d.count)\n"
        }
        return out
    }
}
