/// The token history the penalties of one sequence look at: which tokens the prompt holds and how often each was
/// generated. Applied to the logits in place before sampling.
public struct PenaltyState: Sendable {
    public let parameters: SamplingParameters
    private var seen: Set<Int32> = []
    private var generatedCounts: [Int32: Int] = [:]

    public init(_ parameters: SamplingParameters, prompt: [Int32]) {
        self.parameters = parameters
        if parameters.repetitionPenalty != 1 { seen = Set(prompt) }
    }

    public mutating func record(_ token: Int32) {
        guard parameters.hasPenalties else { return }
        if parameters.repetitionPenalty != 1 { seen.insert(token) }
        generatedCounts[token, default: 0] += 1
    }

    public func apply(to logits: UnsafeMutableBufferPointer<Float>) {
        let p = parameters
        if p.repetitionPenalty != 1 {
            for t in seen {
                let i = Int(t)
                logits[i] = logits[i] > 0 ? logits[i] / p.repetitionPenalty : logits[i] * p.repetitionPenalty
            }
        }
        if p.presencePenalty != 0 || p.frequencyPenalty != 0 {
            for (t, count) in generatedCounts {
                logits[Int(t)] -= p.presencePenalty + p.frequencyPenalty * Float(count)
            }
        }
    }
}
