import Foundation
import QuantServe

struct BenchCommand: Command {
    static let name = "bench"
    static let summary = "memory, load time, prefill and decode speed per quantization level"
    static let options: [OptionSpec] = [
        .model,
        OptionSpec(name: "quant", valueName: "LIST", help: "comma-separated levels (default fp16,int8,int4,nf4)"),
        OptionSpec(name: "prompt-tokens", valueName: "N", help: "prompt length for prefill (default 128)"),
        OptionSpec(name: "decode-tokens", valueName: "N", help: "tokens generated for decode (default 64)"),
        OptionSpec(name: "repetitions", valueName: "N",
                   help: "timed rounds after a warm-up, rates averaged (default 5, as llama-bench -r)"),
        OptionSpec(name: "concurrency", valueName: "N",
                   help: "also measure aggregate_tok_s: decode tok/s across N concurrent sequences (prefill excluded)"),
        OptionSpec(name: "json", valueName: nil, help: "print a JSON list instead of a table"),
    ] + OptionSpec.engine

    static func run(_ arguments: ParsedArguments) throws {
        let path = try arguments.required("model")
        let levels = try (arguments.string("quant") ?? "fp16,int8,int4,nf4").split(separator: ",")
            .map { try parseLevel(String($0)) }
        let promptTokens = try arguments.int("prompt-tokens", range: 1...32768) ?? 128
        let decodeTokens = try arguments.int("decode-tokens", range: 1...32768) ?? 64
        let repetitions = try arguments.int("repetitions", range: 1...1000) ?? 5
        let concurrency = try arguments.int("concurrency", range: 1...4096)
        var options = try arguments.engineOptions()
        if let concurrency {
            // Every prompt is prefilled in the first step, then all decode together (llama-batched-bench's S_TG).
            if arguments.string("max-seqs") == nil { options.scheduler.maxSequences = max(concurrency, 16) }
            if arguments.string("max-batch-tokens") == nil {
                options.scheduler.maxBatchTokens = max(options.scheduler.maxBatchTokens, concurrency * promptTokens)
            }
            guard options.scheduler.maxSequences >= concurrency else {
                throw UsageError("'--max-seqs' (\(options.scheduler.maxSequences)) is below '--concurrency' (\(concurrency))")
            }
        }
        var rows: [SpeedResult] = []
        for level in levels {
            var row = try withExtendedLifetime(ComputeContext(threads: options.threads)) { context in
                try SpeedBenchmark.run(path: path, level: level, context: context, promptTokens: promptTokens,
                                       decodeTokens: decodeTokens, repetitions: repetitions,
                                       cacheType: options.kvCacheType, log: logToStderr)
            }
            if let concurrency {
                let engine = try startEngine(path: path, level: level, options: options, calibration: nil)
                row.aggregate_tok_s = try BatchedDecodeBenchmark.run(engine: engine, concurrency: concurrency,
                                                                     promptTokens: promptTokens, decodeTokens: decodeTokens)
            }
            rows.append(row)
        }
        if arguments.flag("json") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
            return
        }
        let aggregate = concurrency.map { " aggregate tok/s (\($0) seqs) |" } ?? ""
        print("| quant | weights MiB | load s | prefill tok/s (pp\(promptTokens)) | decode tok/s (tg\(decodeTokens)) |"
              + " MiB read per token | read GB/s | decode % of read limit |" + aggregate)
        print("|---|---|---|---|---|---|---|---|" + (concurrency == nil ? "" : "---|"))
        for r in rows {
            let extra = r.aggregate_tok_s.map { String(format: " %.1f |", $0) } ?? ""
            print(String(format: "| %@ | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f | %.0f%% |", r.quant,
                         Double(r.weights_bytes) / 1_048_576, r.load_s, r.prefill_tok_s, r.decode_tok_s,
                         Double(r.bytes_per_token) / 1_048_576, r.read_bandwidth_bytes_s / 1e9, r.decode_bandwidth_pct)
                  + extra)
        }
    }
}

func logToStderr(_ message: String) {
    FileHandle.standardError.write(Data("quantserve: \(message)\n".utf8))
}
