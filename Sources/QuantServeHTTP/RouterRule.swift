/// One rule of a router: conditions on a request (all must hold; a rule with none matches every request) and the
/// ladder position or served name it sends a matching request to. A router tries its rules in order; the first
/// that matches decides, and its name is the decision's reason (`rule_NAME`).
public struct RouterRule: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        /// The ladder's first (largest) target.
        case top
        /// The ladder's last (cheapest) target.
        case bottom
        /// A served name on the ladder.
        case named(String)
    }

    public var name: String
    /// Bounds on the request's text in characters (a chat's every message, a completion's prompt).
    public var minChars: Int?
    public var maxChars: Int?
    /// Bounds on the number of messages (a completion counts one).
    public var minMessages: Int?
    public var maxMessages: Int?
    /// Matches when the text holds any of these, ignoring case (empty: no condition).
    public var anyWords: [String] = []
    public var target: Target

    public init(name: String, minChars: Int? = nil, maxChars: Int? = nil, minMessages: Int? = nil,
                maxMessages: Int? = nil, anyWords: [String] = [], target: Target) {
        self.name = name
        self.minChars = minChars
        self.maxChars = maxChars
        self.minMessages = minMessages
        self.maxMessages = maxMessages
        self.anyWords = anyWords.map { $0.lowercased() }
        self.target = target
    }

    /// `lowered`: the text in lower case; `chars`: its length in characters.
    func matches(lowered: String, chars: Int, messages: Int) -> Bool {
        if let m = minChars, chars < m { return false }
        if let m = maxChars, chars > m { return false }
        if let m = minMessages, messages < m { return false }
        if let m = maxMessages, messages > m { return false }
        if !anyWords.isEmpty, !anyWords.contains(where: { lowered.contains($0) }) { return false }
        return true
    }

    /// Words that signal work a larger level does better, and work any level does well.
    public static let hardWords = ["analy", "debug", "prove", "proof", "theorem", "derive", "calculat", "math", "equation",
                                   "optimi", "algorithm", "complexity", "step by step", "reason", "why does", "refactor",
                                   "architecture", "bug", "traceback", "exception"]
    public static let easyWords = ["translate", "translation", "format", "reformat", "spell", "capitaliz", "rephrase",
                                   "summarize in one", "list the", "convert", "what is the capital", "say hello"]

    /// The rules a router has when none are declared: long prompts, deep conversations and hard words to the top;
    /// easy words and short prompts to the bottom; anything else falls to the router's default (the top).
    public static let defaults: [RouterRule] = [
        RouterRule(name: "hard", minChars: 4001, target: .top),
        RouterRule(name: "hard", minMessages: 8, target: .top),
        RouterRule(name: "hard", anyWords: hardWords, target: .top),
        RouterRule(name: "easy", anyWords: easyWords, target: .bottom),
        RouterRule(name: "easy", maxChars: 199, target: .bottom),
    ]
}
