import Foundation
import QuantServe

struct PerplexityCommand: Command {
    static let name = "perplexity"
    static let summary = "perplexity of a text by llama.cpp's method, optionally against another level"
    static let options: [OptionSpec] = [
        .model,
        OptionSpec(name: "quant", valueName: "LEVEL", help: "quantization level (default: native for a quantized GGUF file, a pre-quantized folder's own level, else \(QuantLevel.default.rawValue))"),
        OptionSpec(name: "file", valueName: "TEXT", help: "text file to score"),
        OptionSpec(name: "ctx-size", valueName: "N", help: "tokens per chunk (default 512)"),
        OptionSpec(name: "chunks", valueName: "N", help: "score at most N chunks (default: all)"),
        OptionSpec(name: "compare", valueName: "LEVEL", help: "also run LEVEL and report ppl_base, kld_mean, same_top1"),
        .kvCacheType,
        .calibration,
        .threads,
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let path = try arguments.required("model")
        let level = try arguments.string("quant").map(parseLevel)
        let textPath = try arguments.required("file")
        let contextSize = try arguments.int("ctx-size", range: 8...(1 << 20)) ?? 512
        let maxChunks = try arguments.int("chunks", range: 1...1_000_000)
        let compare = try arguments.string("compare").map { try parseLevel($0) }
        let threads = try arguments.int("threads", range: 1...1024) ?? ComputeContext.defaultThreadCount
        let cacheType = try arguments.kvCacheType()
        guard let data = FileManager.default.contents(atPath: textPath) else {
            throw UsageError("cannot read '\(textPath)'")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw UsageError("'\(textPath)' is not UTF-8 text") }

        let context = ComputeContext(threads: threads)
        let loaded = try ModelLoader.load(path: path, level: level, context: context, calibrationText: try calibrationText(arguments), log: logToStderr)
        let base = try compare.map {
            try TransformerModel(source: loaded.source, level: $0, context: context,
                                 calibrationText: try calibrationText(arguments), log: logToStderr)
        }
        let tokenizer = loaded.tokenizer
        // As llama.cpp: the whole text tokenized with BOS (where the model adds one), then cut into chunks.
        let tokens = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        let start = DispatchTime.now().uptimeNanoseconds
        let r = try Perplexity.evaluate(model: loaded.model, base: base, tokens: tokens,
                                        bos: tokenizer.addsBOS ? tokenizer.bosTokenID : nil,
                                        contextSize: contextSize, maxChunks: maxChunks, cacheType: cacheType,
                                        progress: { ChildProgress.report("quality", $0, $1) })
        var object: [String: Any] = [
            "ppl": r.perplexity, "quant": loaded.model.level.rawValue, "ctx_size": contextSize, "chunks": r.chunks,
            "scored_tokens": r.scoredTokens, "kv_cache_dtype": cacheType.rawValue,
            "seconds": Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9,
        ]
        if let compare {
            object["compare"] = compare.rawValue
            object["ppl_base"] = r.basePerplexity
            object["kld_mean"] = r.klDivergenceMean
            object["same_top1"] = r.sameTop1
        }
        let json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }
}
