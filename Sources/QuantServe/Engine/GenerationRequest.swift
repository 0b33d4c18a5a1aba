import Foundation

/// One generation: a prompt already tokenized, and how to continue it.
public struct GenerationRequest: Sendable {
    public var prompt: [Int32]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Generation stops before any of these strings; they are never part of the output.
    public var stop: [String]
    /// nil: no log-probabilities; N: each token's own log-probability and those of the N most likely tokens.
    public var logprobs: Int?
    /// Keep generating after an end-of-generation token (benchmarks).
    public var ignoreEndOfGeneration: Bool
    /// Teacher forcing: the first tokens are these, whatever the sampler would choose (the log-probabilities and
    /// captured distributions are the model's own). Shadow measurement replays an answer this way.
    public var forcedTokens: [Int32] = []
    /// The first N tokens come with the model's whole distribution (`GeneratedToken.distribution`).
    public var captureDistributions = 0
    /// Only tokens that keep the output inside this grammar can be chosen (structured output).
    public var constraint: (any TokenConstraint)?

    public init(prompt: [Int32], maxTokens: Int = 128, sampling: SamplingParameters = SamplingParameters(),
                stop: [String] = [], logprobs: Int? = nil, ignoreEndOfGeneration: Bool = false,
                forcedTokens: [Int32] = [], captureDistributions: Int = 0) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
        self.logprobs = logprobs
        self.ignoreEndOfGeneration = ignoreEndOfGeneration
        self.forcedTokens = forcedTokens
        self.captureDistributions = captureDistributions
    }
}

/// Why a generation ended.
public enum FinishReason: String, Sendable {
    /// An end-of-generation token or a stop string.
    case stop
    /// `maxTokens` were produced or the context is full.
    case length
    /// The consumer cancelled.
    case cancelled
}

/// One generated token, with the text it completes (held back text comes later: a UTF-8 sequence split over
/// tokens, or text that may still become a stop string).
public struct GeneratedToken: Sendable {
    public var id: Int32
    public var text: String
    /// Set when the request asked for log-probabilities.
    public var logprob: Float?
    public var topLogprobs: [TokenLogprob]
    /// The log-softmax of the raw logits over the whole vocabulary, for the first `captureDistributions` tokens.
    public var distribution: [Float]?

    public init(id: Int32, text: String, logprob: Float? = nil, topLogprobs: [TokenLogprob] = [], distribution: [Float]? = nil) {
        self.id = id
        self.text = text
        self.logprob = logprob
        self.topLogprobs = topLogprobs
        self.distribution = distribution
    }
}

/// How a generation went, sent last.
public struct GenerationSummary: Sendable {
    public var finishReason: FinishReason
    /// Text released at the end (held back until then); usually empty.
    public var finalText: String
    public var promptTokens: Int
    /// Prompt tokens whose keys and values came from the prefix cache.
    public var cachedPromptTokens: Int
    public var completionTokens: Int
    /// From submission to the first token.
    public var timeToFirstToken: Double
    public var totalSeconds: Double
    /// From submission to its first scheduled chunk.
    public var queueSeconds: Double
    /// Times it was pushed back to the queue to free KV blocks.
    public var preemptions: Int
    /// Generated tokens after the first, over the time they took.
    public var decodeTokensPerSecond: Double
    /// The engine's compute time charged to this request: of each step it was in, the share its tokens were of the
    /// step's (prompt chunks and decoded tokens alike). Over a run the charges add up to the engine's busy time.
    public var engineSeconds: Double = 0

    public init(finishReason: FinishReason, finalText: String = "", promptTokens: Int, cachedPromptTokens: Int = 0,
                completionTokens: Int, timeToFirstToken: Double = 0, totalSeconds: Double = 0, queueSeconds: Double = 0,
                preemptions: Int = 0, decodeTokensPerSecond: Double = 0, engineSeconds: Double = 0) {
        self.finishReason = finishReason
        self.finalText = finalText
        self.promptTokens = promptTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.completionTokens = completionTokens
        self.timeToFirstToken = timeToFirstToken
        self.totalSeconds = totalSeconds
        self.queueSeconds = queueSeconds
        self.preemptions = preemptions
        self.decodeTokensPerSecond = decodeTokensPerSecond
        self.engineSeconds = engineSeconds
    }
}

/// What a request's consumer receives: tokens as they come, then one summary, or a failure.
public enum TokenEvent: Sendable {
    case token(GeneratedToken)
    case finished(GenerationSummary)
    case failed(EngineError)
}

public enum EngineError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidRequest(String)
    case promptTooLong(tokens: Int, contextSize: Int)
    case exceedsCache(blocksNeeded: Int, blocksInPool: Int)
    /// `limit` requests are already waiting (`EngineOptions.maxWaiting`).
    case queueFull(limit: Int)
    case shutDown
    case internalError(String)

    public var description: String {
        switch self {
        case .invalidRequest(let m): m
        case .promptTooLong(let t, let c): "the prompt has \(t) tokens but the context holds \(c)"
        case .exceedsCache(let n, let pool):
            "the request needs \(n) KV-cache blocks but the pool has \(pool) (raise --kv-cache-mb or --kv-blocks, or lower --ctx-size or max tokens)"
        case .queueFull(let limit): "the server is busy: \(limit) requests are already waiting; retry later"
        case .shutDown: "the engine has shut down"
        case .internalError(let m): "internal error: \(m)"
        }
    }
}

extension DispatchTime {
    /// Seconds from `start` to this time.
    public func seconds(since start: DispatchTime) -> Double {
        Double(uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}
