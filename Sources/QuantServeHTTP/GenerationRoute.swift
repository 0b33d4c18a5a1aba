import Foundation
import Dispatch
import QuantServe
import QuantServeJSON
import Synchronization

extension APIServer {
    /// `POST /v1/completions` and `POST /v1/chat/completions`: checks the request, tokenizes it, submits every
    /// choice to the engine and answers with a stream of chunks or, once all are done, one object.
    func generate(_ kind: APIKind, _ request: HTTPRequest, _ connection: HTTPConnection,
                  _ log: RequestLog, responses: JSONValue? = nil) throws(APIError) -> HTTPResponse {
        if isShuttingDown { throw .shuttingDown }
        let f = try RequestFields(body: request.body)
        var name = try f.string("model")
        var routed: (router: String, reason: String)?
        if let router = router(named: name) {
            let decision = router.route(f.object, expectedWait: { [metrics] target in
                ModelRouter.expectedWait(target, meanSeconds: metrics.meanRequestSeconds(target.name))
            })
            name = decision.target.name
            routed = (router.name, decision.reason)
        }
        let (model, engine) = try readyModel(name, log: log)
        if let routed { report.record(model.name) { $0.routed["\(routed.router)\u{0}\(routed.reason)", default: 0] += 1 } }
        let keyName = log.apiKeyName
        if let keyName { try keys.admit(keyName) }
        // The queue is checked before any templating or tokenizing.
        do { try engine.checkQueue() } catch { throw APIError.from(error, param: "model") }
        let params = try GenerationParameters(f)
        if responses != nil, params.n != 1 { throw .unsupported("n", "a response has one output") }
        let topLogprobs = try logprobs(kind, f)
        let schema = try params.jsonSchema.map { schema throws(APIError) in try schemaGrammar(schema) }

        let promptParam = kind == .completion ? "prompt" : "messages"
        let contextSize = engine.description.contextSize
        // Context cost: the history policy keeps a chat's system prompt and newest turns that fit; truncation keeps
        // only the newest tokens of each prompt. The answer says how many prompt tokens were dropped.
        let historyLimit = try historyLimit(kind, f, params, contextSize: contextSize)
        var prompts: [[Int32]]
        var dropped: [Int]
        if kind == .chat, let historyLimit {
            let (tokens, d) = try fitHistory(try ChatMessages.read(f), limit: historyLimit, model, engine)
            (prompts, dropped) = ([tokens], [d])
        } else {
            prompts = try promptTokens(kind, f, model, engine)
            dropped = Array(repeating: 0, count: prompts.count)
        }
        if let k = params.truncatePromptTokens {
            let keep = k > 0 ? k : max(1, contextSize - max(1, params.maxTokens ?? 1))
            for i in prompts.indices where prompts[i].count > keep {
                dropped[i] += prompts[i].count - keep
                prompts[i] = Array(prompts[i].suffix(keep))
            }
        }
        for p in prompts {
            if p.count >= contextSize || (params.maxTokens.map { p.count + $0 > contextSize } ?? false) {
                var e = APIError.contextLengthExceeded(promptTokens: p.count, requested: params.maxTokens, contextSize: contextSize)
                e.param = promptParam
                throw e
            }
        }

        // The response cache: a deterministic request answered before is replayed; one not yet is kept when done.
        let cacheKey = try responseCacheKey(kind, f, request, params, topLogprobs: topLogprobs, model: model, prompts: prompts)
        let cached = cacheKey.flatMap { responseCache?.lookup($0) }
        // Shadow measurement: a sample of this target's requests captures its first tokens' distributions.
        let shadow = cached == nil ? shadows.first { $0.from === model }.flatMap { $0.sample() ? $0 : nil } : nil

        var choices: [GenerationSession.Choice] = []
        for (p, d) in zip(prompts, dropped) {
            for copy in 0..<params.n {
                choices.append(GenerationSession.Choice(promptTokens: p.count, countsPrompt: copy == 0, truncatedTokens: d))
            }
        }
        let header = ResponseHeader(kind: kind, id: (responses != nil ? "resp_" : kind.idPrefix) + Self.randomHex(12),
                                    created: Int(Date().timeIntervalSince1970), model: model.name)
        let accessLog = options.accessLog
        let number = sessionNumber()
        // When the session ends: the access-log line, the key's and the report's counts, the response cache, and
        // out of the table of live sessions.
        let ended: @Sendable (GenerationSession.State) -> Void = { [weak self] final in
            log.update { e in
                for c in final.choices where c.countsPrompt { e.promptTokens += c.promptTokens; e.cachedTokens += c.cachedTokens }
                e.completionTokens = final.choices.reduce(0) { $0 + $1.completionTokens }
                e.timeToFirstToken = final.firstToken.map { $0.seconds(since: log.arrival) }
                if cached != nil { e.cache = "hit" }
            }
            log.streamEnded(accessLog)
            self?.accountFor(final, model: model, engine: engine, keyName: keyName, cacheKey: cacheKey, cached: cached)
            self?.unregister(number)
        }
        guard let session = GenerationSession(
            header: header, engine: engine, choices: choices, stream: params.stream, includeUsage: params.includeUsage,
            wantsLogprobs: topLogprobs != nil, reportsTruncation: params.truncatePromptTokens != nil || historyLimit != nil,
            recordsTokens: cacheKey != nil && cached == nil, fromCache: cached != nil, responses: responses,
            tokenizer: engine.tokenizer, arrival: log.arrival, metrics: metrics,
            onEnd: ended) else {
            shadow?.abandon()
            throw APIError(status: 503, message: "the server has no file descriptors left; retry later",
                           type: "service_unavailable_error", code: "overloaded")
        }
        register(session, number: number)

        // A chat stream opens with each choice's role, written before any token can arrive.
        session.openStream()
        if let cached {
            // Replayed through the same formatting as a live answer, at no engine time.
            for (i, c) in cached.choices.enumerated() {
                for t in c.tokens { session.handle(i, .token(t)) }
                session.handle(i, .finished(GenerationSummary(finishReason: c.finishReason, finalText: c.finalText,
                                                              promptTokens: c.promptTokens, cachedPromptTokens: c.promptTokens,
                                                              completionTokens: c.tokens.count)))
            }
        } else {
            session.channel.onHangUp { [weak session] in
                guard let session else { return }
                for id in session.snapshot.engineIDs { engine.cancel(id) }
            }
            try submit(session, prompts: prompts, params: params, schema: schema, topLogprobs: topLogprobs, shadow: shadow,
                       model: model, engine: engine, promptParam: promptParam, number: number)
        }

        // The target that answered (the router's pick for `auto`), and whether the response cache did.
        var extra = [(name: "X-QuantServe-Model", value: model.name)]
        if cacheKey != nil { extra.append(("X-QuantServe-Cache", cached != nil ? "hit" : "miss")) }
        if params.stream {
            var response = HTTPResponse.eventStream(session.channel)
            response.headers += extra
            return response
        }
        guard session.channel.waitUntilFinished(socket: connection.socket) else {
            // The client has gone; its sequences were cancelled by the hang-up.
            return APIError(status: 499, message: "the client closed the connection", type: "client_closed_request").response
        }
        var response = session.body()
        response.headers += extra
        return response
    }

    /// Submits each prompt's copies together (the copies start once the first has computed the prompt). A shadowed
    /// request's first choice captures its first tokens' distributions and hands them to the shadow when it ends.
    private func submit(_ session: GenerationSession, prompts: [[Int32]], params: GenerationParameters,
                        schema: JSONSchemaGrammar?, topLogprobs: Int?,
                        shadow: ShadowPair?, model: ServedModel, engine: Engine, promptParam: String,
                        number: Int) throws(APIError) {
        let trie = params.jsonObject || schema != nil ? model.vocabularyTrie(engine.tokenizer) : nil
        var index = 0
        for p in prompts {
            let first = index
            let requests = (0..<params.n).map { copy in
                var sampling = params.sampling
                if let seed = sampling.seed { sampling.seed = seed &+ UInt64(copy) }
                var request = GenerationRequest(prompt: p, maxTokens: params.maxTokens ?? (engine.description.contextSize - p.count),
                                                sampling: sampling, stop: params.stop, logprobs: topLogprobs,
                                                ignoreEndOfGeneration: params.ignoreEOS,
                                                captureDistributions: first == 0 && copy == 0 ? shadow?.tokens ?? 0 : 0)
                if let trie, let schema {
                    request.constraint = GrammarConstraint(trie: trie, automaton: SchemaAutomaton(schema))
                } else if let trie {
                    request.constraint = JSONObjectConstraint(trie: trie, automaton: JSONAutomaton())
                }
                return request
            }
            var handlers: [@Sendable (TokenEvent) -> Void] = (0..<params.n).map { copy in
                { [session] event in session.handle(first + copy, event) }
            }
            if first == 0, let shadow {
                let served = Mutex<[GeneratedToken]>([])
                handlers[0] = { [session] event in
                    switch event {
                    case .token(var t) where t.distribution != nil:
                        served.withLock { $0.append(t) }
                        t.distribution = nil
                        session.handle(0, .token(t))
                    case .finished(let summary):
                        session.handle(0, event)
                        if summary.finishReason == .cancelled { shadow.abandon() } else {
                            shadow.replay(prompt: p, served: served.withLock { $0 })
                        }
                    case .failed:
                        session.handle(0, event)
                        shadow.abandon()
                    default:
                        session.handle(0, event)
                    }
                }
            }
            do {
                session.started(engineIDs: try engine.submit(copies: requests, handlers: handlers))
            } catch {
                if first == 0 { shadow?.abandon() }
                for id in session.snapshot.engineIDs { engine.cancel(id) }
                unregister(number)
                throw (error as? EngineError).map { APIError.from($0, param: promptParam) } ?? .internalError("\(error)")
            }
            index += params.n
        }
        if session.channel.isHungUp { for id in session.snapshot.engineIDs { engine.cancel(id) } }
    }

    /// `POST /v1/responses`: the request translated to a chat request and answered in the Responses API's shapes.
    func respond(_ request: HTTPRequest, _ connection: HTTPConnection, _ log: RequestLog) throws(APIError) -> HTTPResponse {
        let f = try RequestFields(body: request.body)
        var chat = request
        chat.body = try ResponsesAPI.chatRequest(f).bytes
        return try generate(.chat, chat, connection, log, responses: f.object)
    }

    /// The token ids of each prompt: completions' text (control-token text parsed, as vLLM and llama-server do) or
    /// ids as given; a chat's messages through the model's template (message text never parsed for control tokens).
    private func promptTokens(_ kind: APIKind, _ f: RequestFields, _ model: ServedModel,
                              _ engine: Engine) throws(APIError) -> [[Int32]] {
        switch kind {
        case .completion:
            switch try PromptInput(f) {
            case .texts(let texts): return texts.map { engine.tokenizer.encode($0, addSpecial: true, parseSpecial: true) }
            case .tokens(let lists): return lists
            }
        case .chat:
            return [try chatTokens(model, engine, try ChatMessages.read(f))]
        }
    }

    /// `logprobs` / `top_logprobs` as the number of top tokens per position the engine reports (nil: none).
    private func logprobs(_ kind: APIKind, _ f: RequestFields) throws(APIError) -> Int? {
        switch kind {
        case .completion:
            if let v = f["logprobs"], v.bool != nil {
                throw .wrongType("logprobs", expected: "an integer (top log-probabilities per token)", got: v)
            }
            return try f.int("logprobs", in: 0...20)
        case .chat:
            let wanted = try f.bool("logprobs") ?? false
            let top = try f.int("top_logprobs", in: 0...20)
            if top != nil, !wanted { throw .invalid("'top_logprobs' needs 'logprobs': true", param: "top_logprobs") }
            return wanted ? (top ?? 0) : nil
        }
    }
}
