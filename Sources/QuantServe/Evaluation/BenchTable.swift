import Foundation

/// `quantserve bench --markdown`: the economics table the way people read it (level, memory, relative throughput,
/// quality loss, cost per million tokens), then the absolute speeds and latencies.
public enum BenchTable {
    public static func markdown(_ rows: [LevelReport], header: [String] = []) -> String {
        var lines = header
        if !header.isEmpty { lines.append("") }
        let fp16 = rows.first { $0.quant == QuantLevel.fp16.rawValue }
        let concurrency = rows.first?.highestConcurrency ?? 1
        let suites = Array(Set(rows.flatMap { $0.tasks?.keys.map { $0 } ?? [] })).sorted()
        lines.append("| level | weights | peak RSS | memory vs fp16 | throughput vs fp16 (\(concurrency) seqs) | quality loss (PPL) | KLD | same top-1 |"
                     + suites.map { " \($0) pass@1 (vs fp16) |" }.joined() + " USD per 1M tokens |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|" + String(repeating: "---:|", count: suites.count) + "---:|")
        for r in rows {
            let taskCells = suites.map { suite -> String in
                guard let score = r.tasks?[suite] else { return " – |" }
                let delta = fp16?.tasks?[suite].map { String(format: " (%+.1f)", (score - $0) * 100) } ?? ""
                return String(format: " %.1f%%", score * 100) + delta + " |"
            }.joined()
            let memory = fp16.map { ratio(Double(r.weights_bytes), Double($0.weights_bytes)) } ?? "–"
            let loss = r.qualityLossPercent.map { String(format: "%+.2f%%", $0) } ?? "–"
            let kld = r.kld_mean.map { String(format: "%.4f", $0) } ?? "–"
            let top1 = r.same_top1.map { String(format: "%.1f%%", $0 * 100) } ?? "–"
            let speedup = r.throughput_vs_fp16.map { String(format: "%.2fx", $0) } ?? "–"
            lines.append("| \(r.quant) | \(mib(r.weights_bytes)) | \(mib(r.peak_rss_bytes)) | \(memory) | \(speedup) | \(loss) | \(kld) | \(top1) |"
                         + taskCells + " \(String(format: "%.3f", r.usd_per_million_tokens)) |")
        }
        lines.append("")
        let levels = rows.first.map { $0.aggregate.keys.compactMap(Int.init).sorted() } ?? []
        let aggregateHeads = levels.map { "aggregate tok/s (\($0) seqs)" }
        lines.append((["level", "load s", "prefill tok/s", "decode tok/s"] + aggregateHeads
                      + ["TTFT p50 / p99 ms", "TPOT p50 / p99 ms", "decode % of read limit"])
            .joined(separator: " | ").surrounded)
        lines.append("|---|" + String(repeating: "---:|", count: 6 + levels.count))
        for r in rows {
            let aggregates = levels.map { String(format: "%.1f", r.aggregate[String($0)] ?? 0) }
            let cells = [r.quant, String(format: "%.2f", r.load_s), String(format: "%.1f", r.prefill_tok_s),
                         String(format: "%.1f", r.decode_tok_s)] + aggregates
                + [String(format: "%.0f / %.0f", r.ttft_p50_ms, r.ttft_p99_ms),
                   String(format: "%.1f / %.1f", r.tpot_p50_ms, r.tpot_p99_ms),
                   String(format: "%.0f%%", r.decode_bandwidth_pct)]
            lines.append(cells.joined(separator: " | ").surrounded)
        }
        return lines.joined(separator: "\n")
    }

    static func mib(_ bytes: Int) -> String { String(format: "%.0f MiB", Double(bytes) / 1_048_576) }

    static func ratio(_ a: Double, _ b: Double) -> String { b > 0 ? String(format: "%.2fx", a / b) : "–" }
}

private extension String {
    var surrounded: String { "| " + self + " |" }
}
