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
        .threads,
        OptionSpec(name: "json", valueName: nil, help: "print a JSON list instead of a table"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let path = try arguments.required("model")
        let levels = try (arguments.string("quant") ?? "fp16,int8,int4,nf4").split(separator: ",")
            .map { try parseLevel(String($0)) }
        let promptTokens = try arguments.int("prompt-tokens", range: 1...32768) ?? 128
        let decodeTokens = try arguments.int("decode-tokens", range: 1...32768) ?? 64
        let threads = try arguments.int("threads", range: 1...1024) ?? ComputeContext.defaultThreadCount
        let context = ComputeContext(threads: threads)
        var rows: [SpeedResult] = []
        for level in levels {
            rows.append(try SpeedBenchmark.run(path: path, level: level, context: context, promptTokens: promptTokens,
                                               decodeTokens: decodeTokens, log: logToStderr))
        }
        if arguments.flag("json") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
            return
        }
        print("| quant | weights MiB | load s | prefill tok/s (pp\(promptTokens)) | decode tok/s (tg\(decodeTokens)) |")
        print("|---|---|---|---|---|")
        for r in rows {
            print(String(format: "| %@ | %.1f | %.2f | %.1f | %.1f |", r.quant, Double(r.weights_bytes) / 1_048_576,
                         r.load_s, r.prefill_tok_s, r.decode_tok_s))
        }
    }
}

func logToStderr(_ message: String) {
    FileHandle.standardError.write(Data("quantserve: \(message)\n".utf8))
}
