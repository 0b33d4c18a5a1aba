import Foundation

/// One row of `quantserve bench`'s economics table: what a quantization level costs and buys on this machine.
/// Field names are the JSON's. `aggregate` maps each measured concurrency to its decode tok/s; every other field is
/// a number. The comparisons with fp16 (`throughput_vs_fp16`, the quality fields) are present when fp16 was measured
/// (quality: with `--quality`).
public struct LevelReport: Sendable, Codable, Equatable {
    public var quant: String
    public var weights_bytes: Int
    /// The high-water mark of the level's own process (VmHWM): loading, single-stream rounds and every concurrency run.
    public var peak_rss_bytes: Int
    public var load_s: Double
    public var prefill_tok_s: Double
    public var decode_tok_s: Double
    public var aggregate: [String: Double]
    /// Decode tok/s across sequences at the highest concurrency measured.
    public var aggregate_tok_s: Double
    /// At the engine boundary during the highest-concurrency run (milliseconds).
    public var ttft_p50_ms: Double
    public var ttft_p99_ms: Double
    public var tpot_p50_ms: Double
    public var tpot_p99_ms: Double
    public var throughput_vs_fp16: Double?
    public var ppl: Double?
    public var ppl_ratio: Double?
    public var kld_mean: Double?
    public var same_top1: Double?
    /// With `--tasks`: each task suite's pass@1 (0...1, greedy) at this level.
    public var tasks: [String: Double]?
    public var usd_per_million_tokens: Double
    public var threads: Int
    /// The limit decode runs against (see `SpeedResult`).
    public var read_bandwidth_bytes_s: Double
    public var bytes_per_token: Int
    public var decode_bandwidth_pct: Double
    /// Structured output's cost: one JSON-mode step's mask in milliseconds, and as a share of a decode step.
    public var json_mask_ms: Double?
    public var json_mask_pct_of_decode: Double?

    public init(quant: String, weights_bytes: Int, peak_rss_bytes: Int, load_s: Double, prefill_tok_s: Double,
                decode_tok_s: Double, aggregate: [String: Double], aggregate_tok_s: Double, ttft_p50_ms: Double,
                ttft_p99_ms: Double, tpot_p50_ms: Double, tpot_p99_ms: Double, throughput_vs_fp16: Double? = nil,
                ppl: Double? = nil, ppl_ratio: Double? = nil, kld_mean: Double? = nil, same_top1: Double? = nil,
                tasks: [String: Double]? = nil, usd_per_million_tokens: Double, threads: Int, read_bandwidth_bytes_s: Double, bytes_per_token: Int,
                decode_bandwidth_pct: Double) {
        self.quant = quant
        self.weights_bytes = weights_bytes
        self.peak_rss_bytes = peak_rss_bytes
        self.load_s = load_s
        self.prefill_tok_s = prefill_tok_s
        self.decode_tok_s = decode_tok_s
        self.aggregate = aggregate
        self.aggregate_tok_s = aggregate_tok_s
        self.ttft_p50_ms = ttft_p50_ms
        self.ttft_p99_ms = ttft_p99_ms
        self.tpot_p50_ms = tpot_p50_ms
        self.tpot_p99_ms = tpot_p99_ms
        self.throughput_vs_fp16 = throughput_vs_fp16
        self.ppl = ppl
        self.ppl_ratio = ppl_ratio
        self.kld_mean = kld_mean
        self.same_top1 = same_top1
        self.tasks = tasks
        self.usd_per_million_tokens = usd_per_million_tokens
        self.threads = threads
        self.read_bandwidth_bytes_s = read_bandwidth_bytes_s
        self.bytes_per_token = bytes_per_token
        self.decode_bandwidth_pct = decode_bandwidth_pct
    }

    /// The highest concurrency measured (the key of `aggregate_tok_s` in `aggregate`).
    public var highestConcurrency: Int { aggregate.keys.compactMap { Int($0) }.max() ?? 1 }

    /// Quality loss in percent: how much higher the perplexity is than fp16's.
    public var qualityLossPercent: Double? { ppl_ratio.map { ($0 - 1) * 100 } }
}

public enum BenchEconomics {
    /// The default machine price: about the on-demand price of a 2-vCPU cloud VM (AWS c7a.large, us-east-1, 2025).
    public static let defaultUSDPerHour = 0.10

    /// What a million generated tokens cost on a machine rented at `usdPerHour` that generates `tokensPerSecond`.
    public static func usdPerMillionTokens(usdPerHour: Double, tokensPerSecond: Double) -> Double {
        tokensPerSecond > 0 ? usdPerHour / (tokensPerSecond * 3600) * 1e6 : .infinity
    }

    /// The nearest-rank percentile (`p` in 0...1) of `values`; 0 when empty.
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    /// Fills the fields that compare each row with the fp16 row (when there is one) and the cost per token.
    public static func complete(_ rows: [LevelReport], usdPerHour: Double) -> [LevelReport] {
        let fp16 = rows.first { $0.quant == QuantLevel.fp16.rawValue }
        return rows.map { row in
            var r = row
            if let fp16, fp16.aggregate_tok_s > 0 { r.throughput_vs_fp16 = r.aggregate_tok_s / fp16.aggregate_tok_s }
            r.usd_per_million_tokens = usdPerMillionTokens(usdPerHour: usdPerHour, tokensPerSecond: r.aggregate_tok_s)
            return r
        }
    }
}
