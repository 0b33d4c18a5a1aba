import QuantServe

extension OptionSpec {
    /// The engine's sizing flags: the same in `generate`, `serve` and `bench`.
    static let engine: [OptionSpec] = [
        .threads,
        OptionSpec(name: "ctx-size", valueName: "N", help: "longest sequence in tokens (default: the model's, at most 4096)"),
        OptionSpec(name: "max-seqs", valueName: "N", help: "sequences running at once (default 16; serve: 64)"),
        OptionSpec(name: "max-batch-tokens", valueName: "N", help: "tokens per engine step, decode plus prefill chunks (default 256)"),
        OptionSpec(name: "kv-blocks", valueName: "N", help: "KV cache size in blocks of 16 tokens"),
        OptionSpec(name: "kv-cache-mb", valueName: "MB", help: "KV cache size in MiB (default: max-seqs full contexts, at most 1/4 of RAM)"),
        .kvCacheType,
    ]

    static let kvCacheType = OptionSpec(name: "kv-cache-dtype", valueName: "TYPE",
                                        help: "KV cache element type: fp16 or int8 (half the memory; default fp16)")

    /// Sampling flags, named after the HTTP API's fields.
    static let sampling: [OptionSpec] = [
        OptionSpec(name: "max-tokens", valueName: "N", help: "most tokens to generate (default 128)"),
        OptionSpec(name: "temperature", valueName: "T", help: "0 for greedy (default 0.8)"),
        OptionSpec(name: "top-k", valueName: "K", help: "keep the K most likely tokens, 0 for all (default 40)"),
        OptionSpec(name: "top-p", valueName: "P", help: "keep the smallest set with mass P (default 0.95)"),
        OptionSpec(name: "min-p", valueName: "P", help: "drop tokens below P times the best one's probability (default 0)"),
        OptionSpec(name: "repetition-penalty", valueName: "R", help: "penalise tokens of the prompt and output, 1 for none (default 1)"),
        OptionSpec(name: "presence-penalty", valueName: "X", help: "subtract X from tokens already generated (default 0)"),
        OptionSpec(name: "frequency-penalty", valueName: "X", help: "subtract X per time a token was generated (default 0)"),
        OptionSpec(name: "seed", valueName: "S", help: "random seed for reproducible sampling"),
        OptionSpec(name: "stop", valueName: "TEXT", help: "stop before this text (not printed)"),
    ]
}

extension ParsedArguments {
    /// `defaultSequences`: the sequences running at once when `--max-seqs` is absent.
    func engineOptions(defaultSequences: Int = 16) throws -> EngineOptions {
        var options = EngineOptions()
        options.threads = try int("threads", range: 1...1024) ?? ComputeContext.defaultThreadCount
        options.contextSize = try int("ctx-size", range: 1...(1 << 24)) ?? 4096
        options.scheduler.maxSequences = try int("max-seqs", range: 1...4096) ?? defaultSequences
        options.scheduler.maxBatchTokens = try int("max-batch-tokens", range: 1...65536) ?? 256
        options.kvBlocks = try int("kv-blocks", range: 1...(1 << 24))
        options.kvCacheMegabytes = try int("kv-cache-mb", range: 1...(1 << 22))
        options.kvCacheType = try kvCacheType()
        return options
    }

    /// `--kv-cache-dtype`, fp16 when absent.
    func kvCacheType() throws -> KVCacheType {
        guard let name = string("kv-cache-dtype") else { return .fp16 }
        guard let type = KVCacheType(rawValue: name) else {
            throw UsageError("unknown KV cache type '\(name)' (known: fp16, int8)")
        }
        return type
    }

    func samplingParameters() throws -> SamplingParameters {
        var sampling = SamplingParameters()
        if let t = try float("temperature", range: 0...100) { sampling.temperature = t }
        if let k = try int("top-k", range: 0...10_000_000) { sampling.topK = k }
        if let p = try float("top-p", range: 0...1) { sampling.topP = p }
        if let p = try float("min-p", range: 0...1) { sampling.minP = p }
        if let r = try float("repetition-penalty", range: 0...100) { sampling.repetitionPenalty = r }
        if let x = try float("presence-penalty", range: -2...2) { sampling.presencePenalty = x }
        if let x = try float("frequency-penalty", range: -2...2) { sampling.frequencyPenalty = x }
        if let s = string("seed") {
            guard let seed = UInt64(s) else { throw UsageError("'--seed' must be a non-negative integer, got '\(s)'") }
            sampling.seed = seed
        }
        do { try sampling.validate() } catch { throw UsageError("\(error)") }
        return sampling
    }
}

/// Starts an engine on a model file or folder at a level (nil: the model's own, see `ModelSource.defaultLevel`).
func startEngine(path: String, level: QuantLevel?, options: EngineOptions, calibration: String?) throws -> Engine {
    try Engine(options: options) { context in
        try ModelLoader.load(path: path, level: level, context: context, calibrationText: calibration, log: logToStderr)
    }
}
