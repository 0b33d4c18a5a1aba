import Foundation

/// Why a generation ended.
public enum FinishReason: String, Sendable {
    /// An end-of-generation token was produced.
    case stop
    /// `maxTokens` were produced or the context is full.
    case length
    /// The consumer asked to stop.
    case cancelled
}

/// Timing and counts of one generation. Decode speed is timed from the first generated token on.
public struct GenerationStats: Sendable {
    public var promptTokens = 0
    public var generatedTokens = 0
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    /// Tokens after the first, over the time they took.
    public var decodeTokensPerSecond: Double {
        decodeSeconds > 0 ? Double(max(generatedTokens - 1, 0)) / decodeSeconds : 0
    }
}

public struct GenerationResult: Sendable {
    public var tokens: [Int32]
    public var finishReason: FinishReason
    public var stats: GenerationStats
}

/// Runs one sequence at a time through a model: prefill in one pass, then token-by-token decode.
public final class Generator {
    public let model: TransformerModel
    public let tokenizer: any Tokenizer

    public init(model: TransformerModel, tokenizer: any Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Generates after `prompt`. `onToken` receives each token id as it is produced and returns false to stop.
    public func generate(
        prompt: [Int32], maxTokens: Int, sampling: SamplingParameters, contextSize: Int? = nil,
        onToken: (Int32) -> Bool = { _ in true }
    ) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw GenerationError.emptyPrompt }
        guard maxTokens >= 0 else { throw GenerationError.invalid("max tokens must be >= 0, got \(maxTokens)") }
        try sampling.validate()
        let capacity = min(contextSize ?? model.configuration.contextLength, model.configuration.contextLength)
        guard prompt.count < capacity else {
            throw GenerationError.promptTooLong(tokens: prompt.count, contextSize: capacity)
        }
        let cache = model.makeCache(capacity: min(capacity, prompt.count + maxTokens))
        var sampler = Sampler(sampling)
        var stats = GenerationStats(promptTokens: prompt.count)
        var output: [Int32] = []

        let prefillStart = DispatchTime.now()
        var logits = try model.forward(prompt, cache: cache)
        stats.prefillSeconds = DispatchTime.now().seconds(since: prefillStart)
        let decodeStart = DispatchTime.now()
        var reason = FinishReason.length
        while output.count < maxTokens {
            let token = logits.withUnsafeBufferPointer { sampler.sample($0) }
            if tokenizer.isEndOfGeneration(token) { reason = .stop; break }
            output.append(token)
            if !onToken(token) { reason = .cancelled; break }
            if output.count == maxTokens || cache.count >= cache.capacity { break }
            logits = try model.forward([token], cache: cache)
        }
        if output.count > 1 { stats.decodeSeconds = DispatchTime.now().seconds(since: decodeStart) }
        stats.generatedTokens = output.count
        return GenerationResult(tokens: output, finishReason: reason, stats: stats)
    }
}

public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case emptyPrompt
    case promptTooLong(tokens: Int, contextSize: Int)
    case invalid(String)

    public var description: String {
        switch self {
        case .emptyPrompt: "the prompt is empty (no tokens)"
        case .promptTooLong(let t, let c): "the prompt has \(t) tokens but the context holds \(c)"
        case .invalid(let m): m
        }
    }
}

extension DispatchTime {
    func seconds(since start: DispatchTime) -> Double {
        Double(uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}
