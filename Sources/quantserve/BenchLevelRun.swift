import Foundation
import QuantServe
import Synchronization

/// One level of `quantserve bench`, measured in a process of its own (`bench --level-process`), so that its peak
/// resident memory is that level's alone: the model loaded once, llama-bench-style single-stream rounds on it, then
/// an engine on the same model serving a burst of sequences at each concurrency. Prints the level's JSON row.
enum BenchLevelRun {
    struct Settings {
        var path: String
        var level: QuantLevel
        var concurrencies: [Int]
        var promptTokens: Int
        var decodeTokens: Int
        var repetitions: Int
        var options: EngineOptions
    }

    static func run(_ s: Settings) throws -> LevelReport {
        ChildProgress.report("load", 0, 1)
        let single = Mutex<SpeedResult?>(nil)
        let settings = s
        let engine = try Engine(options: s.options) { context in
            let loaded = try ModelLoader.load(path: settings.path, level: settings.level, context: context, log: logToStderr)
            ChildProgress.report("load", 1, 1)
            let result = try SpeedBenchmark.measure(loaded, context: context, promptTokens: settings.promptTokens,
                                                    decodeTokens: settings.decodeTokens, repetitions: settings.repetitions,
                                                    cacheType: settings.options.kvCacheType,
                                                    progress: { ChildProgress.report("rounds", $0, $1) })
            single.withLock { $0 = result }
            return loaded
        }
        let speed = single.withLock { $0! }
        var aggregate: [String: Double] = [:]
        var busiest: BatchedRun?
        for (k, c) in s.concurrencies.enumerated() {
            ChildProgress.report("serving", k, s.concurrencies.count)
            let run = try BatchedDecodeBenchmark.measure(engine: engine, concurrency: c, promptTokens: s.promptTokens,
                                                         decodeTokens: s.decodeTokens, salt: k + 1)
            guard run.aggregateTokensPerSecond > 0 else { throw ChildFailure(description: "no tokens decoded at concurrency \(c)") }
            aggregate[String(c)] = run.aggregateTokensPerSecond
            if c == s.concurrencies.max() { busiest = run }
        }
        ChildProgress.report("serving", s.concurrencies.count, s.concurrencies.count)
        let top = busiest!
        let ms = { (values: [Double], p: Double) in BenchEconomics.percentile(values, p) * 1000 }
        let mask = ConstraintBenchmark.jsonMaskMilliseconds(tokenizer: engine.tokenizer)
        var report = LevelReport(
            quant: speed.quant, weights_bytes: speed.weights_bytes, peak_rss_bytes: peakResidentBytes(),
            load_s: speed.load_s, prefill_tok_s: speed.prefill_tok_s, decode_tok_s: speed.decode_tok_s,
            aggregate: aggregate, aggregate_tok_s: top.aggregateTokensPerSecond,
            ttft_p50_ms: ms(top.timesToFirstToken, 0.5), ttft_p99_ms: ms(top.timesToFirstToken, 0.99),
            tpot_p50_ms: ms(top.timesPerOutputToken, 0.5), tpot_p99_ms: ms(top.timesPerOutputToken, 0.99),
            usd_per_million_tokens: 0, threads: engine.description.threads,
            read_bandwidth_bytes_s: speed.read_bandwidth_bytes_s, bytes_per_token: speed.bytes_per_token,
            decode_bandwidth_pct: speed.decode_bandwidth_pct)
        report.json_mask_ms = mask
        report.json_mask_pct_of_decode = speed.decode_tok_s > 0 ? mask / (1000 / speed.decode_tok_s) * 100 : nil
        return report
    }

    /// This process's peak resident set (VmHWM in /proc/self/status), in bytes.
    static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return kib * 1024
    }
}
