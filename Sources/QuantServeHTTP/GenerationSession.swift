import Dispatch
import QuantServe
import QuantServeJSON
import Synchronization

/// One completion or chat request on its way through the engine: it turns every choice's token events into SSE
/// chunks (streaming) or gathers them into one answer, and knows how to end early (client gone, shutdown).
/// Its handlers run on the engine's thread and only format and hand over bytes.
final class GenerationSession: Sendable {
    struct Choice: Sendable {
        var promptTokens = 0
        /// Whether this choice's prompt tokens count in `usage` (the first copy of each prompt).
        var countsPrompt = false
        /// Prompt tokens dropped by `truncate_prompt_tokens`.
        var truncatedTokens = 0
        /// The answer so far (kept for a whole answer; a stream sends it as it comes).
        var text = ""
        /// Unicode scalars generated so far: where the next token's text starts (`text_offset`).
        var textOffset = 0
        var logprobTokens: [GeneratedToken] = []
        /// Every token with its text, kept when the answer may go into the response cache.
        var tokens: [GeneratedToken] = []
        /// The text released at the end, and why it ended (for the response cache).
        var finalText = ""
        var finish: FinishReason?
        var completionTokens = 0
        var cachedTokens = 0
        var finishReason: String?
        var lastToken: DispatchTime?
        var queueSeconds: Double?
        var engineSeconds = 0.0
    }

    struct State: Sendable {
        var choices: [Choice]
        var engineIDs: [Int] = []
        var open = true
        var firstToken: DispatchTime?
        var failure: APIError?
        /// The Responses stream's event count.
        var sequence = 0
    }

    let header: ResponseHeader
    let engine: Engine
    let stream: Bool
    let includeUsage: Bool
    let wantsLogprobs: Bool
    /// Whether `usage` says how many prompt tokens were dropped (the request asked for truncation).
    let reportsTruncation: Bool
    /// Keep every token (the answer may go into the response cache).
    let recordsTokens: Bool
    /// The answer is a replay from the response cache: it cost nothing, and `usage.cost` says so.
    let fromCache: Bool
    /// A `/v1/responses` request (its original fields): the answer in the Responses API's shapes.
    let responses: JSONValue?
    let formatter: LogprobsFormatter
    let channel: ResponseChannel
    let arrival: DispatchTime
    let metrics: ServerMetrics
    private let state: Mutex<State>
    /// Runs once when the session ends, with its final state.
    private let onEnd: @Sendable (State) -> Void

    /// nil when the process has no file descriptor left for the response's channel.
    init?(header: ResponseHeader, engine: Engine, choices: [Choice], stream: Bool, includeUsage: Bool, wantsLogprobs: Bool,
          reportsTruncation: Bool = false, recordsTokens: Bool = false, fromCache: Bool = false, responses: JSONValue? = nil,
          tokenizer: any Tokenizer,
          arrival: DispatchTime, metrics: ServerMetrics, onEnd: @escaping @Sendable (State) -> Void) {
        guard let channel = ResponseChannel() else { return nil }
        self.channel = channel
        self.header = header
        self.engine = engine
        self.stream = stream
        self.includeUsage = includeUsage
        self.wantsLogprobs = wantsLogprobs
        self.reportsTruncation = reportsTruncation
        self.recordsTokens = recordsTokens
        self.fromCache = fromCache
        self.responses = responses
        formatter = LogprobsFormatter(kind: header.kind, tokenizer: tokenizer)
        self.arrival = arrival
        self.metrics = metrics
        self.onEnd = onEnd
        state = Mutex(State(choices: choices))
    }

    var snapshot: State { state.withLock { $0 } }

    func started(engineIDs: [Int]) {
        state.withLock { $0.engineIDs += engineIDs }
    }

    /// The chunks a chat stream opens with: each choice's role (a Responses stream: the response and its message).
    func openStream() {
        if let request = responses {
            guard stream else { return }
            let created = ResponsesAPI.response(id: header.id, created: header.created, model: header.model, text: nil,
                                                finishReason: nil, usage: nil, request: request)
            let message = ResponsesAPI.message(id: header.id, text: "", done: false)
            writeEvent("response.created", [("response", created)])
            writeEvent("response.in_progress", [("response", created)])
            writeEvent("response.output_item.added", [("output_index", 0), ("item", message)])
            writeEvent("response.content_part.added", [("item_id", message["id"]!), ("output_index", 0), ("content_index", 0),
                                                       ("part", ResponsesAPI.part(""))])
            return
        }
        guard stream, header.kind == .chat else { return }
        let count = state.withLock { $0.choices.count }
        for i in 0..<count {
            channel.write(SSE.event(header.object([header.chunkChoice(i, text: "", role: true)], chunk: true)))
        }
    }

    /// An engine event of choice `index`.
    func handle(_ index: Int, _ event: TokenEvent) {
        switch event {
        case .token(let token): received(index, token)
        case .finished(let summary): finished(index, summary)
        case .failed(let error): failed(APIError.from(error, param: "prompt"))
        }
    }

    private func received(_ index: Int, _ token: GeneratedToken) {
        let now = DispatchTime.now()
        let (open, offset, gap) = state.withLock { s -> (Bool, Int, Double?) in
            guard s.open, s.choices[index].finishReason == nil else { return (false, 0, nil) }
            if s.firstToken == nil { s.firstToken = now }
            let gap = s.choices[index].lastToken.map { now.seconds(since: $0) }
            s.choices[index].lastToken = now
            let offset = s.choices[index].textOffset
            s.choices[index].textOffset += token.text.unicodeScalars.count
            s.choices[index].completionTokens += 1
            if !stream || responses != nil {
                s.choices[index].text += token.text
                if wantsLogprobs { s.choices[index].logprobTokens.append(token) }
            }
            if recordsTokens { s.choices[index].tokens.append(token) }
            return (true, offset, gap)
        }
        guard open else { return }
        if let gap { metrics.record(header.model) { $0.interToken.observe(gap) } }
        if stream, responses != nil {
            if !token.text.isEmpty {
                writeEvent("response.output_text.delta", [("item_id", .string("msg_" + header.id.dropFirst(5))),
                                                          ("output_index", 0), ("content_index", 0),
                                                          ("delta", .string(token.text)), ("logprobs", [])])
            }
        } else if stream {
            let lp = wantsLogprobs ? formatter.format([token], textOffset: offset) : .null
            channel.write(SSE.event(header.object([header.chunkChoice(index, text: token.text, logprobs: lp)], chunk: true)))
        }
    }

    private func finished(_ index: Int, _ summary: GenerationSummary) {
        let reason = summary.finishReason.apiName
        let ended = state.withLock { s -> State? in
            guard s.open, s.choices[index].finishReason == nil else { return nil }
            s.choices[index].text += summary.finalText
            s.choices[index].finalText = summary.finalText
            s.choices[index].finish = summary.finishReason
            s.choices[index].finishReason = reason
            s.choices[index].cachedTokens = summary.cachedPromptTokens
            s.choices[index].queueSeconds = summary.queueSeconds
            s.choices[index].engineSeconds = summary.engineSeconds
            return s
        }
        guard let ended else { return }
        metrics.finished(header.model, reason: reason)
        metrics.record(header.model) {
            $0.engineSeconds += summary.engineSeconds
            $0.costUSD += metrics.cost(engineSeconds: summary.engineSeconds)
        }
        metrics.record(header.model) { $0.queueTime.observe(summary.queueSeconds) }
        if stream, responses != nil, !summary.finalText.isEmpty {
            writeEvent("response.output_text.delta", [("item_id", .string("msg_" + header.id.dropFirst(5))),
                                                      ("output_index", 0), ("content_index", 0),
                                                      ("delta", .string(summary.finalText)), ("logprobs", [])])
        } else if stream, responses == nil {
            channel.write(SSE.event(header.object([header.chunkChoice(index, text: summary.finalText, finishReason: reason)],
                                                  chunk: true)))
        }
        if ended.choices.allSatisfy({ $0.finishReason != nil }) { end() }
    }

    /// A choice failed in the engine: the whole request ends with the error.
    private func failed(_ error: APIError) {
        let ok = state.withLock { s -> Bool in
            guard s.open, s.failure == nil else { return false }
            s.failure = error
            return true
        }
        guard ok else { return }
        if stream, responses != nil {
            writeEvent("error", [("code", error.code.map { .string($0) } ?? nil), ("message", .string(error.message)),
                                 ("param", error.param.map { .string($0) } ?? nil)])
        } else if stream {
            channel.write(SSE.event(error.json))
        }
        end()
    }

    /// Ends every unfinished choice with `abort` (shutdown): streams get their last chunks and `[DONE]` at once.
    func abort() {
        let unfinished = state.withLock { s -> [Int] in
            guard s.open else { return [] }
            let ids = s.choices.indices.filter { s.choices[$0].finishReason == nil }
            for i in ids { s.choices[i].finishReason = "abort" }
            return ids
        }
        for i in unfinished {
            metrics.finished(header.model, reason: "abort")
            if stream { channel.write(SSE.event(header.object([header.chunkChoice(i, text: "", finishReason: "abort")], chunk: true))) }
        }
        end()
    }

    var usage: Usage {
        state.withLock { s in
            var u = Usage()
            for c in s.choices {
                if c.countsPrompt {
                    u.promptTokens += c.promptTokens
                    u.cachedTokens += c.cachedTokens
                    if reportsTruncation { u.truncatedTokens = (u.truncatedTokens ?? 0) + c.truncatedTokens }
                }
                u.completionTokens += c.completionTokens
                u.engineSeconds += c.engineSeconds
            }
            u.usd = metrics.cost(engineSeconds: u.engineSeconds)
            u.fromCache = fromCache
            return u
        }
    }

    /// Closes the session once: the usage chunk and `[DONE]` for a stream, then the channel.
    private func end() {
        guard let final = state.withLock({ s -> State? in
            guard s.open else { return nil }
            s.open = false
            return s
        }) else { return }
        let now = DispatchTime.now()
        if let first = final.firstToken { metrics.record(header.model) { $0.timeToFirstToken.observe(first.seconds(since: arrival)) } }
        metrics.record(header.model) { $0.endToEnd.observe(now.seconds(since: arrival)) }
        // Before the channel ends: a waiting handler logs the request as soon as it does.
        onEnd(final)
        if stream, let request = responses {
            if final.failure == nil, let choice = final.choices.first {
                let reason = choice.finishReason ?? "abort"
                let message = ResponsesAPI.message(id: header.id, text: choice.text, done: true)
                let itemID = message["id"]!
                writeEvent("response.output_text.done", [("item_id", itemID), ("output_index", 0), ("content_index", 0),
                                                         ("text", .string(choice.text)), ("logprobs", [])])
                writeEvent("response.content_part.done", [("item_id", itemID), ("output_index", 0), ("content_index", 0),
                                                          ("part", ResponsesAPI.part(choice.text))])
                writeEvent("response.output_item.done", [("output_index", 0), ("item", message)])
                let whole = ResponsesAPI.response(id: header.id, created: header.created, model: header.model, text: choice.text,
                                                  finishReason: reason, usage: usage, request: request)
                writeEvent(reason == "length" ? "response.incomplete" : "response.completed", [("response", whole)])
            }
            channel.finish()
        } else if stream {
            if includeUsage, final.failure == nil { channel.write(SSE.event(header.object([], chunk: true, usage: usage.json))) }
            channel.finish(with: SSE.done)
        } else {
            channel.finish()
        }
    }

    /// One Responses stream event, numbered.
    private func writeEvent(_ type: String, _ fields: [(key: String, value: JSONValue)]) {
        let n = state.withLock { s -> Int in s.sequence += 1; return s.sequence - 1 }
        channel.write(ResponsesAPI.event(type, n, fields))
    }

    /// The whole answer of a non-streaming request, once ended.
    func body() -> HTTPResponse {
        let s = snapshot
        if let failure = s.failure { return failure.response }
        if let request = responses, let choice = s.choices.first {
            return .json(200, ResponsesAPI.response(id: header.id, created: header.created, model: header.model, text: choice.text,
                                                    finishReason: choice.finishReason ?? "abort", usage: usage, request: request))
        }
        let choices = s.choices.enumerated().map { i, c in
            header.choice(i, text: c.text,
                          logprobs: wantsLogprobs ? formatter.format(c.logprobTokens, textOffset: 0) : .null,
                          finishReason: c.finishReason ?? "abort")
        }
        return .json(200, header.object(choices, chunk: false, usage: usage.json))
    }
}
