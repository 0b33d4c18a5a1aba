import CKernels
import Foundation
import Synchronization

/// One row of `quantserve bench`: a level's memory, load time and single-stream speed.
public struct SpeedResult: Sendable, Codable {
    public var quant: String
    public var weights_bytes: Int
    public var load_s: Double
    public var prefill_tok_s: Double
    public var decode_tok_s: Double
    /// Decode tokens per second across `--concurrency` sequences (nil when not measured).
    public var aggregate_tok_s: Double?
    /// The limit decode runs against: the memory read rate of the threads in use (bytes/s), the bytes one decoded
    /// token reads (weights and, at the mean decode context, the KV cache), and decode's share of that limit.
    public var read_bandwidth_bytes_s: Double
    public var bytes_per_token: Int
    public var decode_bandwidth_pct: Double
}

/// Single-stream speed as llama-bench measures it: a prompt of `promptTokens` prefilled in one pass, then
/// `decodeTokens` generated one at a time (greedy, end-of-generation ignored), each timed separately; after one
/// untimed warm-up round, `repetitions` rounds from an empty cache, each rate the mean over rounds (llama-bench's
/// `-r 5` and `avg_ts`).
public enum SpeedBenchmark {
    /// Measures a model already loaded with `context` (on the thread that owns it).
    /// - Parameter progress: called with (rounds done, rounds in all) as the rounds finish, the warm-up included.
    public static func measure(_ loaded: LoadedModel, context: ComputeContext, promptTokens: Int = 128,
                               decodeTokens: Int = 64, repetitions: Int = 5, cacheType: KVCacheType = .fp16,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> SpeedResult {
        precondition(repetitions > 0, "at least one repetition")
        let model = loaded.model
        // A fixed, deterministic prompt: token ids cycling through the ordinary vocabulary.
        let vocab = min(loaded.tokenizer.vocabularySize, model.configuration.vocabularySize)
        let prompt = (0..<promptTokens).map { Int32(1000 + ($0 * 7919) % max(vocab - 1000, 1)) }
        let cache = model.makeCache(capacity: promptTokens + decodeTokens + 1, type: cacheType)
        // One logits buffer for every step, as the engine has.
        var logits = [Float](repeating: 0, count: model.configuration.vocabularySize)
        func round() throws -> (prefill: Double, decode: Double) {
            cache.reset()
            let prefillStart = DispatchTime.now()
            try logits.withUnsafeMutableBufferPointer { try model.forward(prompt, cache: cache, into: $0.baseAddress!) }
            let prefill = DispatchTime.now().seconds(since: prefillStart)
            let decodeStart = DispatchTime.now()
            for _ in 0..<decodeTokens {
                let next = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
                try logits.withUnsafeMutableBufferPointer { try model.forward([next], cache: cache, into: $0.baseAddress!) }
            }
            return (Double(promptTokens) / prefill, Double(decodeTokens) / DispatchTime.now().seconds(since: decodeStart))
        }
        // Warm-up: page faults and first-call costs stay out of the timings.
        progress(0, repetitions + 1)
        _ = try round()
        progress(1, repetitions + 1)
        var rates: [(prefill: Double, decode: Double)] = []
        for r in 0..<repetitions {
            rates.append(try round())
            progress(r + 2, repetitions + 1)
        }
        let n = Double(repetitions)
        let decode = rates.reduce(0) { $0 + $1.decode } / n
        // Read rate over 256 MiB, well past any cache, with the same threads; the best of five passes.
        let bandwidth = qs_read_bandwidth(context.pool, 256 << 20, 5)
        let bytes = model.decodeBytesPerToken(positions: promptTokens + decodeTokens / 2, cacheType: cacheType)
        return SpeedResult(quant: model.level.rawValue, weights_bytes: model.weightBytes, load_s: loaded.loadSeconds,
                           prefill_tok_s: rates.reduce(0) { $0 + $1.prefill } / n, decode_tok_s: decode,
                           read_bandwidth_bytes_s: bandwidth, bytes_per_token: bytes,
                           decode_bandwidth_pct: bandwidth > 0 ? 100 * decode * Double(bytes) / bandwidth : 0)
    }
}

/// What one burst of concurrent sequences measured at the engine boundary (`Engine.submit` to its events).
public struct BatchedRun: Sendable {
    /// Decode tokens per second across the sequences (llama-batched-bench's S_TG).
    public var aggregateTokensPerSecond: Double
    /// Per sequence: submit to first token, and the mean time between its later tokens (seconds).
    public var timesToFirstToken: [Double]
    public var timesPerOutputToken: [Double]
}

/// Decode throughput across concurrent sequences, as llama-batched-bench reports it (S_TG): `concurrency` sequences
/// with prompts of `promptTokens` are submitted at once and prefilled together in one step (when the engine's batch
/// allows), then decode `decodeTokens` each, together; the rate counts the tokens after the first of each sequence
/// over the time from the first to the last. `salt` varies the prompts, so that runs share no cached prefix.
public enum BatchedDecodeBenchmark {
    public static func measure(engine: Engine, concurrency: Int, promptTokens: Int = 128, decodeTokens: Int = 64,
                               salt: Int = 0) throws -> BatchedRun {
        precondition(concurrency > 0 && decodeTokens > 1)
        let vocab = min(engine.tokenizer.vocabularySize, engine.description.configuration.vocabularySize)
        let span = max(vocab - 1000, 1)
        let requests = (0..<concurrency).map { s in
            GenerationRequest(prompt: (0..<promptTokens).map { Int32(1000 + ($0 * 7919 + (s + salt * 4099) * 104_729) % span) },
                              maxTokens: decodeTokens, sampling: .greedy, ignoreEndOfGeneration: true)
        }
        struct Clock { var times: [[DispatchTime]]; var end: DispatchTime }
        let clock = Mutex(Clock(times: .init(repeating: [], count: concurrency), end: DispatchTime.now()))
        let group = DispatchGroup()
        let start = DispatchTime.now()
        for (i, r) in requests.enumerated() {
            group.enter()
            try engine.submit(r) { event in
                switch event {
                case .token:
                    let now = DispatchTime.now()
                    clock.withLock { c in
                        c.times[i].append(now)
                        c.end = now
                    }
                case .finished, .failed: group.leave()
                }
            }
        }
        group.wait()
        return clock.withLock { c in
            // Decode at `concurrency` sequences: the tokens generated while every sequence was decoding (from the
            // last one's first token to the first one's last), as llama-batched-bench times generation apart from
            // prompts. Sequences that never overlap: from the first token to the last.
            let firsts = c.times.compactMap(\.first), lasts = c.times.compactMap(\.last)
            var begin = firsts.max() ?? c.end, finish = lasts.min() ?? c.end
            var decoded = c.times.reduce(0) { n, t in n + t.filter { $0.uptimeNanoseconds > begin.uptimeNanoseconds && $0.uptimeNanoseconds <= finish.uptimeNanoseconds }.count }
            if finish.uptimeNanoseconds <= begin.uptimeNanoseconds || decoded == 0 {
                begin = firsts.min() ?? c.end
                finish = c.end
                decoded = c.times.reduce(0) { $0 + max($1.count - 1, 0) }
            }
            let seconds = finish.seconds(since: begin)
            var ttft: [Double] = [], tpot: [Double] = []
            for t in c.times {
                guard let first = t.first, let last = t.last else { continue }
                ttft.append(first.seconds(since: start))
                if t.count > 1 { tpot.append(last.seconds(since: first) / Double(t.count - 1)) }
            }
            return BatchedRun(aggregateTokensPerSecond: seconds > 0 ? Double(decoded) / seconds : 0,
                              timesToFirstToken: ttft, timesPerOutputToken: tpot)
        }
    }
}
