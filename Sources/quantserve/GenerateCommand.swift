import Foundation
import QuantServe
import Synchronization

struct GenerateCommand: Command {
    static let name = "generate"
    static let summary = "continue a prompt (streamed to stdout), or every prompt of a JSONL file at once through the engine"
    static let options: [OptionSpec] = [
        .model,
        OptionSpec(name: "prompt", valueName: "TEXT", help: "the prompt"),
        OptionSpec(name: "prompts-file", valueName: "FILE",
                   help: "JSONL, one {\"prompt\": ...} per line (optional max_tokens, temperature, top_p, top_k, min_p, seed, stop, ...); prints {\"index\": i, \"text\": ...} per line"),
        OptionSpec(name: "quant", valueName: "LEVEL", help: "weights in memory: \(QuantLevel.allCases.map(\.rawValue).joined(separator: ", ")) (default: native for a quantized GGUF file, a pre-quantized folder's own level, else \(QuantLevel.default.rawValue))"),
        .calibration,
        OptionSpec(name: "chat", valueName: nil, help: "wrap each prompt as a user message in the model's chat template"),
    ] + OptionSpec.sampling + OptionSpec.engine

    static func run(_ arguments: ParsedArguments) throws {
        let path = try arguments.required("model")
        let prompt = arguments.string("prompt")
        let promptsFile = arguments.string("prompts-file")
        guard (prompt == nil) != (promptsFile == nil) else {
            throw UsageError("give exactly one of '--prompt' and '--prompts-file'")
        }
        let maxTokens = try arguments.int("max-tokens", range: 0...1_000_000) ?? 128
        let sampling = try arguments.samplingParameters()
        let stop = arguments.string("stop").map { [$0] } ?? []
        let level = try parseLevel(arguments.string("quant"))
        let options = try arguments.engineOptions()
        let lines = try promptsFile.map { try PromptLine.read($0, defaults: sampling) }
            ?? [PromptLine(prompt: prompt!, maxTokens: maxTokens, sampling: sampling, stop: stop)]

        let engine = try startEngine(path: path, level: level, options: options, calibration: try calibrationText(arguments))
        let requests = try lines.map { line in
            GenerationRequest(prompt: try encode(line.prompt, chat: arguments.flag("chat"), tokenizer: engine.tokenizer),
                              maxTokens: line.maxTokens ?? maxTokens, sampling: line.sampling,
                              stop: line.stop.isEmpty ? stop : line.stop)
        }
        if promptsFile == nil {
            try streamOne(requests[0], engine: engine)
        } else {
            try runAll(requests, engine: engine)
        }
    }

    static func encode(_ text: String, chat: Bool, tokenizer: any Tokenizer) throws -> [Int32] {
        guard chat else { return tokenizer.encode(text, addSpecial: true, parseSpecial: false) }
        let template = try tokenizer.makeChatTemplate()
        return try tokenizer.encodeChat(messages: [ChatMessage(role: "user", content: text)], template: template,
                                        addGenerationPrompt: true)
    }

    /// One prompt: its text streams to stdout as it is generated, timings go to stderr.
    static func streamOne(_ request: GenerationRequest, engine: Engine) throws {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<GenerationSummary, EngineError>?>(nil)
        try engine.submit(request) { event in
            switch event {
            case .token(let token):
                if !token.text.isEmpty { FileHandle.standardOutput.write(Data(token.text.utf8)) }
            case .finished(let summary):
                FileHandle.standardOutput.write(Data((summary.finalText + "\n").utf8))
                outcome.withLock { $0 = .success(summary) }
                done.signal()
            case .failed(let error):
                outcome.withLock { $0 = .failure(error) }
                done.signal()
            }
        }
        done.wait()
        let s = try outcome.withLock { $0! }.get()
        let d = engine.description
        let report = String(
            format: "load: %.2f s (%@, %d threads, %@ kernels)\nprefill: %d tokens, %.1f tok/s\ndecode: %d tokens, %.1f tok/s (%@)\n",
            d.loadSeconds, d.level.rawValue, d.threads, d.kernelVariant,
            s.promptTokens, s.timeToFirstToken > 0 ? Double(s.promptTokens) / s.timeToFirstToken : 0,
            s.completionTokens, s.decodeTokensPerSecond, s.finishReason.rawValue)
        FileHandle.standardError.write(Data(report.utf8))
    }

    struct Output: Encodable {
        let index: Int
        let text: String
        let finish_reason: String
        let prompt_tokens: Int
        let completion_tokens: Int
    }

    /// Every prompt at once; one JSON line per prompt as it finishes.
    static func runAll(_ requests: [GenerationRequest], engine: Engine) throws {
        let group = DispatchGroup()
        let failure = Mutex<EngineError?>(nil)
        let started = DispatchTime.now()
        for (index, request) in requests.enumerated() {
            group.enter()
            let text = Mutex("")
            try engine.submit(request) { event in
                switch event {
                case .token(let token):
                    text.withLock { $0 += token.text }
                case .finished(let summary):
                    let line = Output(index: index, text: text.withLock { $0 } + summary.finalText,
                                      finish_reason: summary.finishReason.rawValue, prompt_tokens: summary.promptTokens,
                                      completion_tokens: summary.completionTokens)
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    if let data = try? encoder.encode(line) {
                        FileHandle.standardOutput.write(data + Data("\n".utf8))
                    }
                    group.leave()
                case .failed(let error):
                    failure.withLock { $0 = $0 ?? error }
                    group.leave()
                }
            }
        }
        group.wait()
        if let error = failure.withLock({ $0 }) { throw error }
        let m = engine.metrics
        let seconds = DispatchTime.now().seconds(since: started)
        logToStderr(String(format: "%d prompts, %d prompt tokens (%d from the prefix cache), %d generated in %.2f s (%.1f tok/s), %d preemptions",
                           requests.count, m.promptTokens, m.prefixCacheHitTokens, m.generatedTokens, seconds,
                           Double(m.generatedTokens) / seconds, m.preemptions))
    }
}

/// `--quant` when given; nil lets the model choose (a pre-quantized folder's own level, else the default).
func parseLevel(_ raw: String?) throws -> QuantLevel? {
    try raw.map { try parseLevel($0) }
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
