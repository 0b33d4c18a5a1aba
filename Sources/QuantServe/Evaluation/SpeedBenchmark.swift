import Foundation

/// One row of `quantserve bench`: a level's memory, load time and single-stream speed.
public struct SpeedResult: Sendable, Codable {
    public var quant: String
    public var weights_bytes: Int
    public var load_s: Double
    public var prefill_tok_s: Double
    public var decode_tok_s: Double
}

/// Single-stream speed as llama-bench measures it: a prompt of `promptTokens` prefilled in one pass, then
/// `decodeTokens` generated one at a time (greedy, end-of-generation ignored), each timed separately.
public enum SpeedBenchmark {
    public static func run(path: String, level: QuantLevel, context: ComputeContext, promptTokens: Int = 128,
                           decodeTokens: Int = 64, log: (String) -> Void = { _ in }) throws -> SpeedResult {
        let loaded = try ModelLoader.load(path: path, level: level, context: context, log: log)
        let model = loaded.model
        // A fixed, deterministic prompt: token ids cycling through the ordinary vocabulary.
        let vocab = min(loaded.tokenizer.vocabularySize, model.configuration.vocabularySize)
        let prompt = (0..<promptTokens).map { Int32(1000 + ($0 * 7919) % max(vocab - 1000, 1)) }
        let cache = model.makeCache(capacity: promptTokens + decodeTokens + 1)
        // Warm-up: one small pass so page faults and first-call costs stay out of the timings.
        _ = try model.forward(Array(prompt.prefix(8)), cache: cache)
        cache.reset()

        let prefillStart = DispatchTime.now()
        var logits = try model.forward(prompt, cache: cache)
        let prefill = DispatchTime.now().seconds(since: prefillStart)
        let decodeStart = DispatchTime.now()
        for _ in 0..<decodeTokens {
            let next = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
            logits = try model.forward([next], cache: cache)
        }
        let decode = DispatchTime.now().seconds(since: decodeStart)
        return SpeedResult(quant: level.rawValue, weights_bytes: model.weightBytes, load_s: loaded.loadSeconds,
                           prefill_tok_s: Double(promptTokens) / prefill, decode_tok_s: Double(decodeTokens) / decode)
    }
}
