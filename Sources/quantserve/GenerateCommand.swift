import Foundation
import QuantServe

struct GenerateCommand: Command {
    static let name = "generate"
    static let summary = "continue a prompt, streaming the text to stdout and speed to stderr"
    static let options: [OptionSpec] = [
        .model,
        OptionSpec(name: "prompt", valueName: "TEXT", help: "the prompt"),
        OptionSpec(name: "max-tokens", valueName: "N", help: "most tokens to generate (default 128)"),
        OptionSpec(name: "temperature", valueName: "T", help: "0 for greedy (default 0.8)"),
        OptionSpec(name: "top-k", valueName: "K", help: "keep the K most likely tokens, 0 for all (default 40)"),
        OptionSpec(name: "top-p", valueName: "P", help: "keep the smallest set with mass P (default 0.95)"),
        OptionSpec(name: "seed", valueName: "S", help: "random seed for reproducible sampling"),
        OptionSpec(name: "quant", valueName: "LEVEL", help: "weights in memory: \(QuantLevel.allCases.map(\.rawValue).joined(separator: ", ")) (default: a pre-quantized folder's own, else \(QuantLevel.default.rawValue))"),
        .threads,
        OptionSpec(name: "ctx-size", valueName: "N", help: "context size in tokens (default: the model's, at most 4096)"),
        .calibration,
        OptionSpec(name: "chat", valueName: nil, help: "wrap the prompt as a user message in the model's chat template"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let path = try arguments.required("model")
        let prompt = try arguments.required("prompt")
        let maxTokens = try arguments.int("max-tokens", range: 0...1_000_000) ?? 128
        var sampling = SamplingParameters()
        if let t = try arguments.float("temperature", range: 0...100) { sampling.temperature = t }
        if let k = try arguments.int("top-k", range: 0...10_000_000) { sampling.topK = k }
        if let p = try arguments.float("top-p", range: 0...1) { sampling.topP = p }
        if let s = arguments.string("seed") {
            guard let seed = UInt64(s) else { throw UsageError("'--seed' must be a non-negative integer, got '\(s)'") }
            sampling.seed = seed
        }
        try sampling.validate()
        let level = try arguments.string("quant").map(parseLevel)
        let threads = try arguments.int("threads", range: 1...1024) ?? ComputeContext.defaultThreadCount
        let contextSize = try arguments.int("ctx-size", range: 1...(1 << 24)) ?? 4096

        let context = ComputeContext(threads: threads)
        let loaded = try ModelLoader.load(path: path, level: level, context: context, calibrationText: try calibrationText(arguments), log: logToStderr)
        let tokenizer = loaded.tokenizer
        let promptTokens: [Int32]
        if arguments.flag("chat") {
            let template = try tokenizer.makeChatTemplate()
            promptTokens = try tokenizer.encodeChat(messages: [ChatMessage(role: "user", content: prompt)],
                                                template: template, addGenerationPrompt: true)
        } else {
            promptTokens = tokenizer.encode(prompt, addSpecial: true, parseSpecial: false)
        }

        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        let stdout = FileHandle.standardOutput
        let result = try Generator(model: loaded.model, tokenizer: tokenizer).generate(
            prompt: promptTokens, maxTokens: maxTokens, sampling: sampling, contextSize: contextSize
        ) { token in
            let text = detokenizer.append(token)
            if !text.isEmpty { stdout.write(Data(text.utf8)) }
            return true
        }
        let rest = detokenizer.flush()
        stdout.write(Data((rest + "\n").utf8))
        let s = result.stats
        let report = String(
            format: "load: %.2f s (%@, %d threads, %@ kernels)\nprefill: %d tokens, %.1f tok/s\ndecode: %d tokens, %.1f tok/s (%@)\n",
            loaded.loadSeconds, loaded.model.level.rawValue, context.threads, context.variantName,
            s.promptTokens, s.prefillTokensPerSecond, s.generatedTokens, s.decodeTokensPerSecond,
            result.finishReason.rawValue)
        FileHandle.standardError.write(Data(report.utf8))
    }
}

func parseLevel(_ raw: String) throws -> QuantLevel {
    do {
        return try QuantLevel.parse(raw)
    } catch {
        throw UsageError("'--quant': \(error)")
    }
}

/// The text of `--calibration FILE`, if given.
func calibrationText(_ arguments: ParsedArguments) throws -> String? {
    guard let path = arguments.string("calibration") else { return nil }
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        throw UsageError("cannot read calibration text '\(path)'")
    }
    return text
}
