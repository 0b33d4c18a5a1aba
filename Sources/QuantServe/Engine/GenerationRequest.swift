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

    public init(prompt: [Int32], maxTokens: Int = 128, sampling: SamplingParameters = SamplingParameters(),
                stop: [String] = [], logprobs: Int? = nil, ignoreEndOfGeneration: Bool = false) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
        self.logprobs = logprobs
        self.ignoreEndOfGeneration = ignoreEndOfGeneration
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
