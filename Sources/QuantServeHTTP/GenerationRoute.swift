import Foundation
import Dispatch
import QuantServe
import QuantServeJSON

extension APIServer {
    /// `POST /v1/completions` and `POST /v1/chat/completions`: checks the request, tokenizes it, submits every
    /// choice to the engine and answers with a stream of chunks or, once all are done, one object.
    func generate(_ kind: APIKind, _ request: HTTPRequest, _ connection: HTTPConnection,
                  _ log: RequestLog) throws(APIError) -> HTTPResponse {
        if isShuttingDown { throw .shuttingDown }
        let f = try RequestFields(body: request.body)
        var name = try f.string("model")
        if name == ModelRouter.name, let router, models.model(named: name)?.name != ModelRouter.name {
            name = router.route(f.object, expectedWait: { [metrics] target in
                ModelRouter.expectedWait(target, meanSeconds: metrics.meanRequestSeconds(target.name))
            }).target.name
        }
        let (model, engine) = try readyModel(name, log: log)
        // The queue is checked before any templating or tokenizing.
        do { try engine.checkQueue() } catch { throw APIError.from(error, param: "model") }
        let params = try GenerationParameters(f)
        let topLogprobs = try logprobs(kind, f)

        let promptParam = kind == .completion ? "prompt" : "messages"
        var prompts = try promptTokens(kind, f, model, engine)
        let contextSize = engine.description.contextSize
        // Context cost: keep only the newest tokens of each prompt when asked to, and say how many were dropped.
        var dropped = Array(repeating: 0, count: prompts.count)
        if let k = params.truncatePromptTokens {
            let keep = k > 0 ? k : max(1, contextSize - max(1, params.maxTokens ?? 1))
            for i in prompts.indices where prompts[i].count > keep {
                dropped[i] = prompts[i].count - keep
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

        var choices: [GenerationSession.Choice] = []
        for (p, d) in zip(prompts, dropped) {
            for copy in 0..<params.n {
                choices.append(GenerationSession.Choice(promptTokens: p.count, countsPrompt: copy == 0, truncatedTokens: d))
            }
        }
        let header = ResponseHeader(kind: kind, id: kind.idPrefix + Self.randomHex(12),
                                    created: Int(Date().timeIntervalSince1970), model: model.name)
        let accessLog = options.accessLog
        let number = sessionNumber()
        // When the session ends: the access-log line, and out of the table of live sessions.
        let ended: @Sendable (GenerationSession.State) -> Void = { [weak self] final in
            log.update { e in
                for c in final.choices where c.countsPrompt { e.promptTokens += c.promptTokens; e.cachedTokens += c.cachedTokens }
                e.completionTokens = final.choices.reduce(0) { $0 + $1.completionTokens }
                e.timeToFirstToken = final.firstToken.map { $0.seconds(since: log.arrival) }
            }
            log.streamEnded(accessLog)
            self?.unregister(number)
        }
        guard let session = GenerationSession(
            header: header, engine: engine, choices: choices, stream: params.stream, includeUsage: params.includeUsage,
            wantsLogprobs: topLogprobs != nil, reportsTruncation: params.truncatePromptTokens != nil,
            tokenizer: engine.tokenizer, arrival: log.arrival, metrics: metrics,
            onEnd: ended) else {
            throw APIError(status: 503, message: "the server has no file descriptors left; retry later",
                           type: "service_unavailable_error", code: "overloaded")
        }
        register(session, number: number)
        session.channel.onHangUp { [weak session] in
            guard let session else { return }
            for id in session.snapshot.engineIDs { engine.cancel(id) }
        }

        // A chat stream opens with each choice's role, written before any token can arrive.
        session.openStream()
        // Submit each prompt's copies together: the copies start once the first has computed the prompt.
        var index = 0
        for p in prompts {
            let first = index
            let requests = (0..<params.n).map { copy in
                var sampling = params.sampling
                if let seed = sampling.seed { sampling.seed = seed &+ UInt64(copy) }
                return GenerationRequest(prompt: p, maxTokens: params.maxTokens ?? (contextSize - p.count),
                                         sampling: sampling, stop: params.stop, logprobs: topLogprobs,
                                         ignoreEndOfGeneration: params.ignoreEOS)
            }
            let handlers: [@Sendable (TokenEvent) -> Void] = (0..<params.n).map { copy in
                { [session] event in session.handle(first + copy, event) }
            }
            do {
                session.started(engineIDs: try engine.submit(copies: requests, handlers: handlers))
            } catch {
                for id in session.snapshot.engineIDs { engine.cancel(id) }
                unregister(number)
                throw (error as? EngineError).map { APIError.from($0, param: promptParam) } ?? .internalError("\(error)")
            }
            index += params.n
        }
        if session.channel.isHungUp { for id in session.snapshot.engineIDs { engine.cancel(id) } }

        // The target that answered (the router's pick for `auto`).
        let servedBy = ("X-QuantServe-Model", model.name)
        if params.stream {
            var response = HTTPResponse.eventStream(session.channel)
            response.headers.append(servedBy)
            return response
        }
        guard session.channel.waitUntilFinished(socket: connection.socket) else {
            // The client has gone; its sequences were cancelled by the hang-up.
            return APIError(status: 499, message: "the client closed the connection", type: "client_closed_request").response
        }
        var response = session.body()
        response.headers.append(servedBy)
        return response
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
