import Dispatch

/// What the engine keeps for one request besides its tokens (which the scheduler holds): how to sample, how to
/// print, when to stop, and where the events go.
struct SequenceState {
    let request: GenerationRequest
    let handler: @Sendable (TokenEvent) -> Void
    let submitted: DispatchTime
    var sampler: Sampler
    var penalties: PenaltyState
    var detokenizer: StreamingDetokenizer
    var stopMatcher: StopStringMatcher
    var generated = 0
    /// Its first chunk was scheduled (which tells how much of its prompt the prefix cache held).
    var admitted = false
    var cachedPromptTokens = 0
    var firstToken: DispatchTime?

    init(request: GenerationRequest, tokenizer: any Tokenizer, handler: @escaping @Sendable (TokenEvent) -> Void) {
        self.request = request
        self.handler = handler
        submitted = DispatchTime.now()
        sampler = Sampler(request.sampling)
        penalties = PenaltyState(request.sampling, prompt: request.prompt)
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        stopMatcher = StopStringMatcher(stops: request.stop)
    }

    /// Picks the next token from this sequence's logits (penalties are applied to them in place), with the
    /// log-probabilities the request asked for, taken from the model's own logits.
    mutating func sample(_ logits: UnsafeMutableBufferPointer<Float>) -> (Int32, Float?, [TokenLogprob]) {
        let penalised = request.sampling.hasPenalties
        // The raw logits are copied only when both penalties and log-probabilities are asked for.
        let raw = penalised && request.logprobs != nil ? Array(logits) : nil
        if penalised { penalties.apply(to: logits) }
        let token = sampler.sample(UnsafeBufferPointer(logits))
        guard let top = request.logprobs else { return (token, nil, []) }
        let (logprob, best) = raw.map { r in r.withUnsafeBufferPointer { Logprobs.of(token, in: $0, top: top) } }
            ?? Logprobs.of(token, in: UnsafeBufferPointer(logits), top: top)
        return (token, logprob, best)
    }

    /// Records a sampled token; returns its event, and the reason to finish if it ends the generation.
    mutating func accept(_ token: Int32, logprob: Float?, top: [TokenLogprob], tokenizer: any Tokenizer,
                         sequenceLength: Int, contextSize: Int) -> (GeneratedToken?, FinishReason?) {
        if firstToken == nil { firstToken = DispatchTime.now() }
        if !request.ignoreEndOfGeneration && tokenizer.isEndOfGeneration(token) { return (nil, .stop) }
        generated += 1
        penalties.record(token)
        let (text, stopped) = stopMatcher.append(detokenizer.append(token))
        let event = GeneratedToken(id: token, text: text, logprob: logprob, topLogprobs: top)
        if stopped { return (event, .stop) }
        if generated >= request.maxTokens || sequenceLength >= contextSize { return (event, .length) }
        return (event, nil)
    }

    /// The summary that ends the stream; releases whatever text was held back unless a stop string ended it.
    mutating func summary(_ reason: FinishReason, releaseHeldText: Bool) -> GenerationSummary {
        let now = DispatchTime.now()
        var finalText = ""
        if releaseHeldText {
            let tail = detokenizer.flush()
            let (text, stopped) = stopMatcher.append(tail)
            finalText = stopped ? text : text + stopMatcher.flush()
        }
        let decodeSeconds = firstToken.map { now.seconds(since: $0) } ?? 0
        return GenerationSummary(
            finishReason: reason, finalText: finalText, promptTokens: request.prompt.count,
            cachedPromptTokens: cachedPromptTokens, completionTokens: generated,
            timeToFirstToken: firstToken.map { $0.seconds(since: submitted) } ?? 0,
            totalSeconds: now.seconds(since: submitted),
            decodeTokensPerSecond: decodeSeconds > 0 && generated > 1 ? Double(generated - 1) / decodeSeconds : 0)
    }
}
