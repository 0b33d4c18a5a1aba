import Foundation
import QuantServe
import QuantServeJSON

/// `serve --config FILE`: the models and levels one server holds, its routers, API keys with budgets, the chat
/// history policy, the response cache and shadow measurement, as one JSON file (docs/server.md, examples/). A
/// repeated `--model PATH[:LEVEL,...]` is the same thing for the simple case. Every unknown key is an error, so a
/// typo is never silently ignored.
public struct ServerConfig: Sendable {
    /// One model file or folder, served once per level as `NAME:LEVEL` (no levels: once, as `NAME`, at its default).
    public struct Model: Sendable, Equatable {
        public var name: String
        public var path: String
        public var levels: [QuantLevel]
        /// Engine settings by `serve`'s flag names without the dashes (`threads`, `ctx-size`, `max-seqs`, ...).
        public var engine: [String: String]

        public init(name: String, path: String, levels: [QuantLevel], engine: [String: String] = [:]) {
            self.name = name
            self.path = path
            self.levels = levels
            self.engine = engine
        }
    }

    /// One engine the server runs: a served name, its model, its level (nil: the model's default) and settings.
    public struct Target: Sendable, Equatable {
        public var name: String
        public var path: String
        public var level: QuantLevel?
        public var engine: [String: String]
    }

    public struct Router: Sendable, Equatable {
        public var name: String
        /// Served names, largest first.
        public var ladder: [String]
        public var rules: [RouterRule]
        public var maxWaitSeconds: Double?
    }

    public struct APIKey: Sendable, Equatable {
        /// The name metrics and the report use (never the key itself).
        public var name: String
        public var key: String
        /// Prompt and completion tokens the key may use per window (nil: no limit).
        public var tokenBudget: Int?
        public var windowSeconds: Double
    }

    /// Chat history policy: keep the system messages and the newest turns that fit `maxPromptTokens`.
    public struct HistoryPolicy: Sendable, Equatable {
        /// nil: as many as fit the context with the request's `max_tokens`.
        public var maxPromptTokens: Int?
        /// Applied to every chat request (false: only to those that send `"truncate_history": true`).
        public var byDefault = false
        public init(maxPromptTokens: Int? = nil, byDefault: Bool = false) {
            self.maxPromptTokens = maxPromptTokens
            self.byDefault = byDefault
        }
    }

    /// Mirror a sample of the requests answered by `from` to `to` (another level of the same model).
    public struct Shadow: Sendable, Equatable {
        public var from: String
        public var to: String
        public var rate: Double
        /// The first N tokens of each answer compared.
        public var tokens: Int
    }

    public var models: [Model] = []
    public var routers: [Router] = []
    public var apiKeys: [APIKey] = []
    public var history = HistoryPolicy()
    /// Answers the response cache holds (0: off).
    public var responseCacheEntries = 0
    public var shadows: [Shadow] = []
    public var usdPerHour: Double?

    public init(models: [Model] = []) { self.models = models }

    /// Every engine to run, in order: each model's levels as `NAME:LEVEL`, or the model as `NAME`.
    public var targets: [Target] {
        models.flatMap { m in
            m.levels.isEmpty ? [Target(name: m.name, path: m.path, level: nil, engine: m.engine)]
                : m.levels.map { Target(name: "\(m.name):\($0.rawValue)", path: m.path, level: $0, engine: m.engine) }
        }
    }

    /// The routers the server has: those declared, or `auto` over every target when there are several and none is.
    public var effectiveRouters: [Router] {
        if !routers.isEmpty { return routers }
        let names = targets.map(\.name)
        return names.count > 1 ? [Router(name: ModelRouter.name, ladder: names, rules: RouterRule.defaults)] : []
    }
}

/// A config file's mistake, with where it is (`models[1].levels[0]`).
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension ServerConfig {
    /// Engine setting names a model may give (as `serve`'s flags).
    public static let engineSettings: Set<String> = ["threads", "ctx-size", "max-seqs", "max-batch-tokens", "kv-blocks",
                                                     "kv-cache-mb", "kv-cache-dtype", "max-waiting", "calibration"]

    /// Reads a config file; relative model paths are taken from `baseDirectory` (the file's folder).
    public static func load(path: String) throws(ConfigError) -> ServerConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError("cannot read the config file '\(path)'") }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do { return try parse(Array(data), baseDirectory: base) } catch { throw ConfigError("\(path): \(error.message)") }
    }

    public static func parse(_ bytes: [UInt8], baseDirectory: String = ".") throws(ConfigError) -> ServerConfig {
        let root: JSONValue
        do { root = try JSONValue.parse(bytes) } catch { throw ConfigError("not valid JSON: \(error)") }
        let top = try ConfigObject(root, at: "config")
        try top.only(["models", "routers", "api_keys", "history", "response_cache", "shadow", "usd_per_hour"])
        var config = ServerConfig()
        for (i, m) in try top.array("models", required: true).enumerated() {
            config.models.append(try model(m, at: "models[\(i)]", base: baseDirectory))
        }
        guard !config.models.isEmpty else { throw ConfigError("config.models is empty: list at least one model") }
        let targets = config.targets
        let names = targets.map(\.name)
        var seen = Set<String>()
        for n in names where !seen.insert(n).inserted {
            throw ConfigError("two served models are named '\(n)': give each model a distinct 'name'")
        }
        for (i, r) in try top.array("routers").enumerated() {
            config.routers.append(try router(r, at: "routers[\(i)]", served: names))
        }
        for r in config.routers where names.contains(r.name) {
            throw ConfigError("the router '\(r.name)' has a served model's name")
        }
        if Set(config.routers.map(\.name)).count != config.routers.count { throw ConfigError("two routers have one name") }
        for (i, k) in try top.array("api_keys").enumerated() { config.apiKeys.append(try apiKey(k, at: "api_keys[\(i)]")) }
        if Set(config.apiKeys.map(\.name)).count != config.apiKeys.count { throw ConfigError("two API keys have one name") }
        if Set(config.apiKeys.map(\.key)).count != config.apiKeys.count { throw ConfigError("two API keys are the same key") }
        if let h = try top.object("history") {
            try h.only(["max_prompt_tokens", "default"])
            config.history = HistoryPolicy(maxPromptTokens: try h.int("max_prompt_tokens", in: 1...(1 << 24)),
                                           byDefault: try h.bool("default") ?? false)
        }
        if let c = try top.object("response_cache") {
            try c.only(["max_entries"])
            config.responseCacheEntries = try c.int("max_entries", in: 0...1_000_000, required: true)!
        }
        for (i, s) in try top.array("shadow").enumerated() {
            config.shadows.append(try shadow(s, at: "shadow[\(i)]", targets: targets))
        }
        config.usdPerHour = try top.number("usd_per_hour", in: 0...1_000_000)
        return config
    }

    private static func model(_ v: JSONValue, at: String, base: String) throws(ConfigError) -> Model {
        let o = try ConfigObject(v, at: at)
        try o.only(["name", "path", "levels", "engine"])
        var path = try o.string("path", required: true)!
        if !path.hasPrefix("/") { path = URL(fileURLWithPath: base).appendingPathComponent(path).path }
        guard FileManager.default.fileExists(atPath: path) else { throw ConfigError("\(at).path: no model at '\(path)'") }
        var levels: [QuantLevel] = []
        for (i, l) in try o.array("levels").enumerated() {
            guard let s = l.string, let level = try? QuantLevel.parse(s) else {
                throw ConfigError("\(at).levels[\(i)]: not a level (known: \(QuantLevel.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard !levels.contains(level) else { throw ConfigError("\(at).levels lists '\(s)' twice") }
            levels.append(level)
        }
        var engine: [String: String] = [:]
        if let e = try o.object("engine") {
            try e.only(engineSettings)
            for (key, value) in e.members {
                switch value {
                case .string(let s): engine[key] = s
                case .number(let n) where Int(exactly: n) != nil: engine[key] = String(Int(n))
                default: throw ConfigError("\(at).engine.\(key) must be a string or an integer, got \(value.kind)")
                }
            }
            if let c = engine["calibration"], !c.hasPrefix("/") {
                engine["calibration"] = URL(fileURLWithPath: base).appendingPathComponent(c).path
            }
        }
        let name = try o.string("name") ?? ServedModel.defaultName(forPath: path)
        guard !name.isEmpty, !name.contains(":") else { throw ConfigError("\(at).name must be non-empty and without ':'") }
        return Model(name: name, path: path, levels: levels, engine: engine)
    }

    private static func router(_ v: JSONValue, at: String, served: [String]) throws(ConfigError) -> Router {
        let o = try ConfigObject(v, at: at)
        try o.only(["name", "ladder", "rules", "max_wait_seconds"])
        let name = try o.string("name") ?? ModelRouter.name
        var ladder: [String] = []
        for (i, t) in try o.array("ladder", required: true).enumerated() {
            guard let s = t.string, served.contains(s) else {
                throw ConfigError("\(at).ladder[\(i)] must be a served name (one of \(served.joined(separator: ", ")))")
            }
            ladder.append(s)
        }
        guard !ladder.isEmpty else { throw ConfigError("\(at).ladder is empty") }
        var rules: [RouterRule] = []
        if o["rules"] == nil {
            rules = RouterRule.defaults
        } else {
            for (i, r) in try o.array("rules").enumerated() {
                rules.append(try rule(r, at: "\(at).rules[\(i)]", ladder: ladder))
            }
        }
        return Router(name: name, ladder: ladder, rules: rules,
                      maxWaitSeconds: try o.number("max_wait_seconds", in: 0...86_400))
    }

    private static func rule(_ v: JSONValue, at: String, ladder: [String]) throws(ConfigError) -> RouterRule {
        let o = try ConfigObject(v, at: at)
        try o.only(["name", "min_chars", "max_chars", "min_messages", "max_messages", "any_words", "target"])
        let name = try o.string("name", required: true)!
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }) else {
            throw ConfigError("\(at).name must be printable ASCII without spaces or quotes")
        }
        let targetName = try o.string("target", required: true)!
        let target: RouterRule.Target
        switch targetName {
        case "top": target = .top
        case "bottom": target = .bottom
        default:
            guard ladder.contains(targetName) else {
                throw ConfigError("\(at).target must be 'top', 'bottom' or a name on the ladder, got '\(targetName)'")
            }
            target = .named(targetName)
        }
        var words: [String] = []
        for (i, w) in try o.array("any_words").enumerated() {
            guard let s = w.string, !s.isEmpty else { throw ConfigError("\(at).any_words[\(i)] must be a non-empty string") }
            words.append(s)
        }
        return RouterRule(name: name, minChars: try o.int("min_chars", in: 0...Int(Int32.max)),
                          maxChars: try o.int("max_chars", in: 0...Int(Int32.max)),
                          minMessages: try o.int("min_messages", in: 0...100_000),
                          maxMessages: try o.int("max_messages", in: 0...100_000), anyWords: words, target: target)
    }

    private static func apiKey(_ v: JSONValue, at: String) throws(ConfigError) -> APIKey {
        let o = try ConfigObject(v, at: at)
        try o.only(["name", "key", "key_env", "token_budget", "budget_window_seconds"])
        let name = try o.string("name", required: true)!
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }) else {
            throw ConfigError("\(at).name must be printable ASCII without spaces or quotes")
        }
        var key = try o.string("key")
        if let env = try o.string("key_env") {
            guard key == nil else { throw ConfigError("\(at): give 'key' or 'key_env', not both") }
            guard let value = ProcessInfo.processInfo.environment[env], !value.isEmpty else {
                throw ConfigError("\(at).key_env: the environment variable '\(env)' is not set")
            }
            key = value
        }
        guard let key, !key.isEmpty else { throw ConfigError("\(at): 'key' (or 'key_env') is required") }
        return APIKey(name: name, key: key, tokenBudget: try o.int("token_budget", in: 1...Int(Int64.max / 2)),
                      windowSeconds: try o.number("budget_window_seconds", in: 1...(366 * 86_400)) ?? 86_400)
    }

    private static func shadow(_ v: JSONValue, at: String, targets: [Target]) throws(ConfigError) -> Shadow {
        let o = try ConfigObject(v, at: at)
        try o.only(["from", "to", "rate", "tokens"])
        let from = try o.string("from", required: true)!, to = try o.string("to", required: true)!
        guard let a = targets.first(where: { $0.name == from }) else { throw ConfigError("\(at).from: no served model '\(from)'") }
        guard let b = targets.first(where: { $0.name == to }) else { throw ConfigError("\(at).to: no served model '\(to)'") }
        guard from != to, a.path == b.path else {
            throw ConfigError("\(at): 'from' and 'to' must be two levels of one model")
        }
        return Shadow(from: from, to: to, rate: try o.number("rate", in: 0...1) ?? 0.1,
                      tokens: try o.int("tokens", in: 1...64) ?? 16)
    }
}

/// A JSON object of a config file, with typed fields whose errors say where they are.
struct ConfigObject {
    let members: [(key: String, value: JSONValue)]
    let at: String

    init(_ value: JSONValue, at: String) throws(ConfigError) {
        guard let members = value.object else { throw ConfigError("\(at) must be an object, got \(value.kind)") }
        self.members = members
        self.at = at
    }

    subscript(_ key: String) -> JSONValue? { members.last { $0.key == key }?.value }

    func only(_ keys: Set<String>) throws(ConfigError) {
        for m in members where !keys.contains(m.key) {
            throw ConfigError("\(at): unknown key '\(m.key)' (known: \(keys.sorted().joined(separator: ", ")))")
        }
    }

    func string(_ key: String, required: Bool = false) throws(ConfigError) -> String? {
        guard let v = self[key] else {
            if required { throw ConfigError("\(at).\(key) is required") }
            return nil
        }
        guard let s = v.string else { throw ConfigError("\(at).\(key) must be a string, got \(v.kind)") }
        return s
    }

    func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let v = self[key] else { return nil }
        guard let b = v.bool else { throw ConfigError("\(at).\(key) must be true or false, got \(v.kind)") }
        return b
    }

    func int(_ key: String, in range: ClosedRange<Int>, required: Bool = false) throws(ConfigError) -> Int? {
        guard let v = self[key] else {
            if required { throw ConfigError("\(at).\(key) is required") }
            return nil
        }
        guard let n = v.number, let i = Int(exactly: n), range.contains(i) else {
            throw ConfigError("\(at).\(key) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return i
    }

    func number(_ key: String, in range: ClosedRange<Double>) throws(ConfigError) -> Double? {
        guard let v = self[key] else { return nil }
        guard let n = v.number, range.contains(n) else {
            throw ConfigError("\(at).\(key) must be a number in \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    func array(_ key: String, required: Bool = false) throws(ConfigError) -> [JSONValue] {
        guard let v = self[key] else {
            if required { throw ConfigError("\(at).\(key) is required") }
            return []
        }
        guard let a = v.array else { throw ConfigError("\(at).\(key) must be an array, got \(v.kind)") }
        return a
    }

    func object(_ key: String) throws(ConfigError) -> ConfigObject? {
        guard let v = self[key] else { return nil }
        return try ConfigObject(v, at: "\(at).\(key)")
    }
}
