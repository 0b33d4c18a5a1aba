import Dispatch

/// Where a request is in its life. Every transition is timed in `RequestTimes`.
public enum RequestPhase: Sendable, Equatable {
    /// Submitted, waiting for its first chunk to be scheduled.
    case queued
    /// Scheduled: its prompt is being computed or it is decoding.
    case running
    /// Pushed back to the queue to free KV blocks; it will be recomputed.
    case preempted
    case finished(FinishReason)
}

/// When a request entered each phase (uptime), for queue time, time to first token and latency.
public struct RequestTimes: Sendable, Equatable {
    public var submitted: DispatchTime
    /// Its first chunk was scheduled (the end of its queue time).
    public var admitted: DispatchTime?
    public var firstToken: DispatchTime?
    public var lastPreempted: DispatchTime?
    public var finished: DispatchTime?

    /// Seconds from submission to the first scheduled chunk (to now while still queued).
    public var queueSeconds: Double { (admitted ?? .now()).seconds(since: submitted) }
}

/// The one place that holds a request's state in the engine besides its tokens (which the scheduler holds): its
/// phase and the time of each transition, how to sample, how to print, when to stop, and where the events go.
struct SequenceState {
    let request: GenerationRequest
    let handler: @Sendable (TokenEvent) -> Void
    private(set) var phase = RequestPhase.queued
    private(set) var times: RequestTimes
    var sampler: Sampler
    var penalties: PenaltyState
    var detokenizer: StreamingDetokenizer
    var stopMatcher: StopStringMatcher
    /// The grammar the output must stay in, advanced by every accepted token.
    var constraint: (any TokenConstraint)?
    var generated = 0
    /// Prompt tokens the prefix cache held when it was first admitted.
    var cachedPromptTokens = 0
    /// The engine's compute time charged to this request: its tokens' share of every step it was in.
    var engineSeconds = 0.0
    var preemptions = 0

    init(request: GenerationRequest, tokenizer: any Tokenizer, handler: @escaping @Sendable (TokenEvent) -> Void) {
        self.request = request
        self.handler = handler
        times = RequestTimes(submitted: .now())
        sampler = Sampler(request.sampling)
        penalties = PenaltyState(request.sampling, prompt: request.prompt)
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        stopMatcher = StopStringMatcher(stops: request.stop)
        constraint = request.constraint
    }

    /// Whether it has ever been scheduled (it has left the waiting queue's count).
    var wasAdmitted: Bool { times.admitted != nil }

    /// Its chunk was scheduled; the first time, `cachedTokens` of its prompt came from the prefix cache.
    mutating func scheduled(cachedTokens: Int) {
        guard phase != .running else { return }
        if times.admitted == nil {
            times.admitted = .now()
            cachedPromptTokens = cachedTokens
        }
        phase = .running
    }

    mutating func preempted() {
        phase = .preempted
        preemptions += 1
        times.lastPreempted = .now()
    }

    /// Picks the next token from this sequence's logits (penalties are applied to them in place), with the
    /// log-probabilities the request asked for, taken from the model's own logits.
    mutating func sample(_ logits: UnsafeMutableBufferPointer<Float>) -> (Int32, Float?, [TokenLogprob], [Float]?) {
        let distribution = generated < request.captureDistributions ? Logprobs.logSoftmax(UnsafeBufferPointer(logits)) : nil
        let penalised = request.sampling.hasPenalties
        // The raw logits are copied only when both penalties and log-probabilities are asked for.
        let raw = penalised && request.logprobs != nil ? Array(logits) : nil
        if penalised { penalties.apply(to: logits) }
        constraint?.mask(logits)
        var token = sampler.sample(UnsafeBufferPointer(logits))
        if generated < request.forcedTokens.count { token = request.forcedTokens[generated] }
        guard let top = request.logprobs else { return (token, nil, [], distribution) }
        let (logprob, best) = raw.map { r in r.withUnsafeBufferPointer { Logprobs.of(token, in: $0, top: top) } }
            ?? Logprobs.of(token, in: UnsafeBufferPointer(logits), top: top)
        return (token, logprob, best, distribution)
    }

    /// Records a sampled token; returns its event, and the reason to finish if it ends the generation.
    mutating func accept(_ token: Int32, logprob: Float?, top: [TokenLogprob], distribution: [Float]? = nil,
                         tokenizer: any Tokenizer, sequenceLength: Int, contextSize: Int) -> (GeneratedToken?, FinishReason?) {
        if times.firstToken == nil { times.firstToken = .now() }
        if !request.ignoreEndOfGeneration && tokenizer.isEndOfGeneration(token) { return (nil, .stop) }
        generated += 1
        penalties.record(token)
        constraint?.accept(token)
        let (text, stopped) = stopMatcher.append(detokenizer.append(token))
        let event = GeneratedToken(id: token, text: text, logprob: logprob, topLogprobs: top, distribution: distribution)
        if stopped { return (event, .stop) }
        if generated >= request.maxTokens || sequenceLength >= contextSize { return (event, .length) }
        return (event, nil)
    }

    /// The summary that ends the stream; releases whatever text was held back unless a stop string ended it.
    mutating func summary(_ reason: FinishReason, releaseHeldText: Bool) -> GenerationSummary {
        let now = DispatchTime.now()
        phase = .finished(reason)
        times.finished = now
        var finalText = ""
        if releaseHeldText {
            let tail = detokenizer.flush()
            let (text, stopped) = stopMatcher.append(tail)
            finalText = stopped ? text : text + stopMatcher.flush()
        }
        let decodeSeconds = times.firstToken.map { now.seconds(since: $0) } ?? 0
        return GenerationSummary(
            finishReason: reason, finalText: finalText, promptTokens: request.prompt.count,
            cachedPromptTokens: cachedPromptTokens, completionTokens: generated,
            timeToFirstToken: times.firstToken.map { $0.seconds(since: times.submitted) } ?? 0,
            totalSeconds: now.seconds(since: times.submitted),
            queueSeconds: times.queueSeconds, preemptions: preemptions,
            decodeTokensPerSecond: decodeSeconds > 0 && generated > 1 ? Double(generated - 1) / decodeSeconds : 0,
            engineSeconds: engineSeconds)
    }
}
