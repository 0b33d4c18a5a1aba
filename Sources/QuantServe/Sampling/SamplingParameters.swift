/// How the next token is chosen from logits.
public struct SamplingParameters: Sendable, Equatable {
    /// 0 means greedy (argmax).
    public var temperature: Float = 0.8
    /// 0 disables top-k.
    public var topK: Int = 40
    /// 1 disables top-p.
    public var topP: Float = 0.95
    /// Drops tokens less likely than `minP` times the most likely one; 0 disables.
    public var minP: Float = 0
    /// Divides positive logits and multiplies negative ones of every token already in the prompt or the output
    /// (as in vLLM and Hugging Face); 1 disables.
    public var repetitionPenalty: Float = 1
    /// Subtracted once from the logit of every token already generated (OpenAI); 0 disables.
    public var presencePenalty: Float = 0
    /// Subtracted from a token's logit once per time it was generated (OpenAI); 0 disables.
    public var frequencyPenalty: Float = 0
    /// nil draws a seed from the system's random source.
    public var seed: UInt64?

    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0,
                repetitionPenalty: Float = 1, presencePenalty: Float = 0, frequencyPenalty: Float = 0,
                seed: UInt64? = nil) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.seed = seed
    }

    public static let greedy = SamplingParameters(temperature: 0, topK: 0, topP: 1)

    public var hasPenalties: Bool { repetitionPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0 }

    /// Rejects values no sampler can honour.
    public func validate() throws {
        guard temperature.isFinite, temperature >= 0 else { throw SamplingError.invalid("temperature must be >= 0, got \(temperature)") }
        guard topK >= 0 else { throw SamplingError.invalid("top-k must be >= 0, got \(topK)") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw SamplingError.invalid("top-p must be in (0, 1], got \(topP)") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw SamplingError.invalid("min-p must be in [0, 1], got \(minP)") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw SamplingError.invalid("repetition penalty must be > 0, got \(repetitionPenalty)")
        }
        guard presencePenalty.isFinite, abs(presencePenalty) <= 2 else {
            throw SamplingError.invalid("presence penalty must be in [-2, 2], got \(presencePenalty)")
        }
        guard frequencyPenalty.isFinite, abs(frequencyPenalty) <= 2 else {
            throw SamplingError.invalid("frequency penalty must be in [-2, 2], got \(frequencyPenalty)")
        }
    }
}

public enum SamplingError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let m): m }
    }
}
