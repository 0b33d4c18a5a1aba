import Dispatch
import Foundation
import QuantServe
import QuantServeJSON
import Synchronization

public struct APIServerOptions: Sendable {
    /// Requests to every route but `/health` and `/metrics` must send `Authorization: Bearer KEY`.
    public var apiKey: String?
    public var maxBodyBytes = 8 << 20
    public var accessLog = AccessLog()
    /// `/health` turns 503 when the engine has had work and made no step for this long.
    public var stallSeconds = 30.0
    /// Browser origins allowed to call the API (CORS); empty: no CORS header at all, so browsers on other origins
    /// cannot read the answers. `*` allows every origin.
    public var allowedOrigins: [String] = []
    /// What an hour of the machine costs, for `usage.cost` and `quantserve:cost_usd_total`.
    public var usdPerHour = APIServerOptions.defaultUSDPerHour
    /// About the on-demand price of a 2-vCPU cloud VM (AWS c7a.large), as `bench --usd-per-hour`'s default.
    public static let defaultUSDPerHour = 0.10
    /// The routers' bound on a target's expected queue wait before a request steps down a ladder (a router
    /// declared with its own bound keeps it).
    public var routerMaxWaitSeconds = 1.0
    /// Routers by name (nil: `auto` with the default rules over every served model, when there are several).
    public var routers: [ServerConfig.Router]?
    /// Named API keys, some with token budgets (besides `apiKey`, which is named `default`).
    public var apiKeys: [ServerConfig.APIKey] = []
    /// The chat history policy (`truncate_history`).
    public var history = ServerConfig.HistoryPolicy()
    /// Answers the response cache holds (0: no cache).
    public var responseCacheEntries = 0
    /// Levels measured against others on live traffic.
    public var shadows: [ServerConfig.Shadow] = []
    /// A saved `quantserve bench --json` result, served to the page's cost explorer.
    public var benchResults: JSONValue?
    public init() {}
}

/// The OpenAI-compatible API over the table of served models: routing, authentication, errors, the access log,
/// and the live generations (so that shutdown can end them). The HTTP transport is `HTTPServer`'s.
public final class APIServer: HTTPHandler {
    public let models: ModelTable
    public let options: APIServerOptions
    public let metrics: ServerMetrics
    /// `"model": "auto"` when the server holds more than one model or level, or the config's routers.
    public let routers: [ModelRouter]
    /// The API keys, what each used, and their budgets.
    public let keys: APIKeyLedger
    let responseCache: ResponseCache?
    public let shadows: [ShadowPair]
    /// Per model and minute, for `/v1/quantserve/report`.
    public let report: UsageReport
    /// Compiled `json_schema` grammars by the schema's text (at most `maxSchemas`, oldest out).
    let schemas = Mutex<[(key: String, grammar: JSONSchemaGrammar)]>([])
    static let maxSchemas = 64
    /// Live generations by a number of their own, so that shutdown can end them.
    private let sessions = Mutex<(next: Int, live: [Int: GenerationSession])>((0, [:]))
    private let shuttingDown = Atomic<Bool>(false)

    public init(models: ModelTable, options: APIServerOptions) {
        self.models = models
        self.options = options
        metrics = ServerMetrics(usdPerHour: options.usdPerHour)
        let served = models.all
        let declared = options.routers ?? (served.count > 1
            ? [ServerConfig.Router(name: ModelRouter.name, ladder: served.map(\.name), rules: RouterRule.defaults)] : [])
        routers = declared.compactMap { r in
            let ladder = r.ladder.compactMap { n in served.first { $0.name == n } }
            guard !ladder.isEmpty, ladder.count == r.ladder.count else { return nil }
            return ModelRouter(name: r.name, ladder: ladder, rules: r.rules,
                               maxWaitSeconds: r.maxWaitSeconds ?? options.routerMaxWaitSeconds)
        }
        var keyList = options.apiKeys
        if let key = options.apiKey {
            let name = keyList.contains { $0.name == "default" } ? "cli" : "default"
            keyList.append(ServerConfig.APIKey(name: name, key: key, tokenBudget: nil, windowSeconds: 86_400))
        }
        keys = APIKeyLedger(keys: keyList)
        responseCache = options.responseCacheEntries > 0 ? ResponseCache(capacity: options.responseCacheEntries) : nil
        let report = UsageReport(usdPerHour: options.usdPerHour)
        self.report = report
        shadows = options.shadows.compactMap { s in
            guard let from = served.first(where: { $0.name == s.from }), let to = served.first(where: { $0.name == s.to }) else {
                return nil
            }
            return ShadowPair(from: from, to: to, rate: s.rate, tokens: s.tokens) { tokens, same, sameServed, kl in
                report.record(s.from) {
                    $0.shadow[s.to, default: UsageReport.ShadowSums()].add(
                        UsageReport.ShadowSums(tokens: tokens, sameTop1: same, sameServed: sameServed, kl: kl))
                }
            }
        }
    }

    /// The grammar of a `json_schema` response format, compiled once per distinct schema; a keyword it cannot enforce
    /// is a 400 naming it.
    func schemaGrammar(_ schema: JSONValue) throws(APIError) -> JSONSchemaGrammar {
        let key = schema.serialized
        if let hit = schemas.withLock({ $0.first { $0.key == key }?.grammar }) { return hit }
        let grammar: JSONSchemaGrammar
        do { grammar = try JSONSchemaGrammar(schema: schema) } catch {
            throw .unsupported("response_format.json_schema.schema", "\(error)")
        }
        schemas.withLock { list in
            list.append((key, grammar))
            if list.count > Self.maxSchemas { list.removeFirst() }
        }
        return grammar
    }

    /// The router a request's `model` names (never when a model is served under that name).
    func router(named name: String?) -> ModelRouter? {
        guard let name, let r = routers.first(where: { $0.name == name }), models.model(named: name)?.name != name else {
            return nil
        }
        return r
    }

    struct Route {
        let methods: [String]
        let open: Bool
        let handler: @Sendable (APIServer, HTTPRequest, HTTPConnection, RequestLog) throws(APIError) -> HTTPResponse
    }

    static let routes: [String: Route] = apiRoutes.merging(WebPage.files.map { f in
        (f.path, Route(methods: ["GET", "HEAD"], open: true) { _, r, _, _ in WebPage.response(f.path, ifNoneMatch: r.header("if-none-match")) })
    }) { a, _ in a }

    static let apiRoutes: [String: Route] = [
        "/v1/completions": Route(methods: ["POST"], open: false) { s, r, c, l throws(APIError) in try s.generate(.completion, r, c, l) },
        "/v1/chat/completions": Route(methods: ["POST"], open: false) { s, r, c, l throws(APIError) in try s.generate(.chat, r, c, l) },
        "/v1/responses": Route(methods: ["POST"], open: false) { s, r, c, l throws(APIError) in try s.respond(r, c, l) },
        "/v1/models": Route(methods: ["GET"], open: false) { s, _, _, _ in s.listModels() },
        "/health": Route(methods: ["GET"], open: true) { s, _, _, _ in s.health() },
        "/metrics": Route(methods: ["GET"], open: true) { s, _, _, _ in
            .text(200, s.renderMetrics(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        },
        "/v1/quantserve/report": Route(methods: ["GET"], open: false) { s, r, _, _ throws(APIError) in try s.usageReport(r) },
        "/v1/quantserve/bench-results": Route(methods: ["GET"], open: false) { s, _, _, _ throws(APIError) in
            guard let results = s.options.benchResults else {
                throw APIError(status: 404, message: "this server has no saved benchmark: run `quantserve bench --model PATH --quality "
                               + "--save-result bench.json` and start the server with `--bench-results bench.json`",
                               type: "not_found_error", code: "no_bench_results")
            }
            return .json(200, results)
        },
        "/tokenize": Route(methods: ["POST"], open: false) { s, r, _, l throws(APIError) in try s.tokenize(r, l) },
        "/detokenize": Route(methods: ["POST"], open: false) { s, r, _, l throws(APIError) in try s.detokenize(r, l) },
    ]

    public func handle(_ request: HTTPRequest, connection: HTTPConnection) -> HTTPResponse {
        let log = RequestLog(id: Self.requestID(request.header("x-request-id")), method: request.method, path: request.path)
        var response: HTTPResponse
        let origin = allowedOrigin(request.header("origin"))
        if request.method == "OPTIONS", origin != nil, Self.routes[request.path] != nil {
            // A CORS preflight from an allowed origin.
            response = HTTPResponse(status: 204, headers: [
                ("Access-Control-Allow-Methods", Self.routes[request.path]!.methods.joined(separator: ", ")),
                ("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id"),
                ("Access-Control-Max-Age", "600")])
        } else {
            do {
                response = try route(request, connection, log)
            } catch {
                response = error.response
                metrics.failed(log.modelName ?? models.model(named: nil)?.name ?? "", reason: error.code ?? error.type)
                // A request refused once its model was known counts in the report too.
                if let model = log.modelName { report.record(model) { $0.failed += 1 } }
            }
        }
        if let origin {
            response.headers.append((name: "Access-Control-Allow-Origin", value: origin))
            response.headers.append((name: "Vary", value: "Origin"))
        }
        response.headers.append((name: "X-Request-Id", value: log.id))
        log.update { $0.status = response.status }
        if case .stream = response.body {
            log.finishWhenStreamEnds(options.accessLog)
        } else {
            log.finish(options.accessLog)
        }
        return response
    }

    private func route(_ request: HTTPRequest, _ connection: HTTPConnection, _ log: RequestLog) throws(APIError) -> HTTPResponse {
        guard let route = Self.routes[request.path] else { throw .notFound(request.path) }
        guard route.methods.contains(request.method) else {
            throw .methodNotAllowed(request.method, request.path, allowed: route.methods)
        }
        if request.bodyTooLarge { throw .bodyTooLarge(limit: options.maxBodyBytes) }
        if !route.open, keys.required {
            guard let name = keys.identify(request.header("authorization")) else { throw .unauthorized }
            log.update { $0.apiKey = name }
        }
        return try route.handler(self, request, connection, log)
    }

    /// The value of `Access-Control-Allow-Origin` for a request from `origin`, or nil (no CORS header).
    func allowedOrigin(_ origin: String?) -> String? {
        guard let origin, !options.allowedOrigins.isEmpty else { return nil }
        if options.allowedOrigins.contains("*") { return "*" }
        return options.allowedOrigins.contains(origin) ? origin : nil
    }

    /// `Bearer KEY`, compared in time that depends only on the lengths.
    static func authorized(_ header: String?, key: String) -> Bool {
        guard let header, header.hasPrefix("Bearer ") else { return false }
        let given = Array(header.utf8.dropFirst(7)), wanted = Array(key.utf8)
        var difference = UInt8(given.count == wanted.count ? 0 : 1)
        for i in 0..<max(given.count, wanted.count) {
            difference |= (i < given.count ? given[i] : 0) ^ (i < wanted.count ? wanted[i] : 0xFF)
        }
        return difference == 0
    }

    /// The client's `X-Request-Id` when it is short printable ASCII, otherwise a new one.
    static func requestID(_ given: String?) -> String {
        if let given, !given.isEmpty, given.utf8.count <= 128, given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            return given
        }
        return "req-" + randomHex(16)
    }

    static func randomHex(_ bytes: Int) -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }

    // MARK: sessions and shutdown

    /// A number for a session about to start.
    func sessionNumber() -> Int { sessions.withLock { $0.next += 1; return $0.next } }
    func register(_ session: GenerationSession, number: Int) { sessions.withLock { $0.live[number] = session } }
    func unregister(_ number: Int) { _ = sessions.withLock { $0.live.removeValue(forKey: number) } }

    public var isShuttingDown: Bool { shuttingDown.load(ordering: .relaxed) }

    /// Refuses new generations and ends every live one at once (streams get `finish_reason: "abort"` and `[DONE]`),
    /// then waits up to `drainSeconds` for their connections to send what they were given.
    public func shutdown(drainSeconds: Double = 2) {
        shuttingDown.store(true, ordering: .relaxed)
        let live = sessions.withLock { Array($0.live.values) }
        for s in live {
            s.abort()
            for id in s.snapshot.engineIDs { s.engine.cancel(id) }
        }
        let deadline = DispatchTime.now() + drainSeconds
        while DispatchTime.now() < deadline, !live.allSatisfy({ $0.channel.isClosed || $0.channel.isHungUp }) {
            usleep(5_000)
        }
    }

    // MARK: routes

    /// The served model a request names (the default one when it names none), ready to use.
    func readyModel(_ name: String?, log: RequestLog) throws(APIError) -> (ServedModel, Engine) {
        // A router outside generation (tokenize, detokenize): its ladder's first target.
        let name = router(named: name)?.ladder[0].name ?? name
        guard let model = models.model(named: name) else {
            throw .modelNotFound(name ?? "", served: models.all.map(\.name))
        }
        log.update { $0.model = model.name }
        switch model.current {
        case .ready(let engine): return (model, engine)
        case .loading: throw .loading
        case .failed(let message):
            throw APIError(status: 503, message: "the model failed to load: \(message)", type: "service_unavailable_error",
                           code: "model_load_failed")
        }
    }

    func listModels() -> HTTPResponse {
        let data: [JSONValue] = models.all.compactMap { m in
            guard let engine = m.engine else { return nil }
            return ["id": .string(m.name), "object": "model", "created": JSONValue(m.created), "owned_by": "quantserve",
                    "root": .string(m.path), "parent": nil, "max_model_len": JSONValue(engine.description.contextSize)]
        }
        var listed: [JSONValue] = []
        for router in routers where self.router(named: router.name) != nil {
            let lengths = router.ladder.compactMap { $0.engine?.description.contextSize }
            if lengths.count == router.ladder.count {
                listed.append(["id": .string(router.name), "object": "model", "created": JSONValue(router.ladder[0].created),
                               "owned_by": "quantserve", "root": "router", "parent": nil,
                               "max_model_len": JSONValue(lengths.min() ?? 0)])
            }
        }
        return .json(200, ["object": "list", "data": .array(data + listed)])
    }

    /// The Prometheus page: the models' metrics, routers, API keys, the response cache and shadows.
    func renderMetrics() -> String {
        var out = metrics.render(models.all)
        if !routers.isEmpty {
            out += "# HELP quantserve:router_decisions_total Requests to a router, by the target it chose and why.\n"
            out += "# TYPE quantserve:router_decisions_total counter\n"
            for r in routers { out += r.renderDecisions() }
        }
        out += keys.render()
        out += responseCache?.render() ?? ""
        if !shadows.isEmpty {
            out += ShadowPair.help
            for s in shadows { out += s.render() }
        }
        return out
    }

    /// `GET /v1/quantserve/report?window=SECONDS&format=json|text|markdown` (default: the last hour, JSON).
    func usageReport(_ request: HTTPRequest) throws(APIError) -> HTTPResponse {
        var window = 3600.0
        if let w = request.query["window"] {
            guard let v = Double(w), v.isFinite, v > 0 else {
                throw .invalid("'window' must be a positive number of seconds, got '\(w)'", param: "window")
            }
            window = v
        }
        switch request.query["format"] ?? "json" {
        case "json": return .json(200, report.json(window: window))
        case "text": return .text(200, report.render(window: window, markdown: false))
        case "markdown", "md": return .text(200, report.render(window: window, markdown: true), contentType: "text/markdown; charset=utf-8")
        case let f: throw .invalid("'format' must be json, text or markdown, got '\(f)'", param: "format")
        }
    }

    func health() -> HTTPResponse {
        for m in models.all {
            switch m.current {
            case .loading: return .json(503, ["status": "loading"])
            case .failed(let message): return .json(503, ["status": "failed", "message": .string(message)])
            case .ready(let engine):
                if engine.metrics.isStalled(after: options.stallSeconds) { return .json(503, ["status": "stalled"]) }
            }
        }
        if isShuttingDown { return .json(503, ["status": "shutting_down"]) }
        return .json(200, ["status": "ok"])
    }

    func tokenize(_ request: HTTPRequest, _ log: RequestLog) throws(APIError) -> HTTPResponse {
        let f = try RequestFields(body: request.body)
        let (model, engine) = try readyModel(try f.string("model"), log: log)
        let tokens: [Int32]
        if f["messages"] != nil {
            let messages = try ChatMessages.read(f)
            let addGenerationPrompt = try f.bool("add_generation_prompt") ?? true
            tokens = try chatTokens(model, engine, messages, addGenerationPrompt: addGenerationPrompt)
        } else {
            guard let prompt = try f.string("prompt") else {
                throw .invalid("'prompt' (a string) or 'messages' is required", param: "prompt", code: "missing_required_parameter")
            }
            tokens = engine.tokenizer.encode(prompt, addSpecial: try f.bool("add_special_tokens") ?? true, parseSpecial: true)
        }
        return .json(200, ["count": JSONValue(tokens.count), "max_model_len": JSONValue(engine.description.contextSize),
                           "tokens": .array(tokens.map { JSONValue(Int($0)) })])
    }

    func detokenize(_ request: HTTPRequest, _ log: RequestLog) throws(APIError) -> HTTPResponse {
        let f = try RequestFields(body: request.body)
        let (_, engine) = try readyModel(try f.string("model"), log: log)
        guard let v = f["tokens"] else { throw .invalid("'tokens' is required", param: "tokens", code: "missing_required_parameter") }
        guard let list = v.array else { throw .wrongType("tokens", expected: "an array of token ids", got: v) }
        var ids: [Int32] = []
        let vocabulary = engine.tokenizer.vocabularySize
        for item in list {
            guard let n = item.number, let id = Int32(exactly: n), id >= 0, Int(id) < vocabulary else {
                throw .invalid("'tokens' must hold token ids in 0..<\(vocabulary)", param: "tokens", code: "invalid_value")
            }
            ids.append(id)
        }
        return .json(200, ["prompt": .string(engine.tokenizer.decode(ids))])
    }

    func chatTokens(_ model: ServedModel, _ engine: Engine, _ messages: [ChatMessage],
                    addGenerationPrompt: Bool = true) throws(APIError) -> [Int32] {
        do {
            let template = try model.chatTemplate()
            return try engine.tokenizer.encodeChat(messages: messages, template: template,
                                                   addGenerationPrompt: addGenerationPrompt)
        } catch {
            throw .invalid("the chat template cannot render these messages: \(error)", param: "messages")
        }
    }
}
