import Foundation
import XCTest

/// The `quantserve` command line, run as a user would: output, exit codes and error messages.
final class CLITests: XCTestCase {
    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    var binary: URL {
        get throws {
            let candidates = [
                Bundle.main.bundleURL.appendingPathComponent("quantserve"),
                Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("quantserve"),
                Fixtures.repositoryRoot.appendingPathComponent(".build/release/quantserve"),
            ]
            guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
                XCTFail("quantserve binary not found in \(candidates.map(\.path))")
                throw XCTSkip("no binary")
            }
            return found
        }
    }

    func run(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = try binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                   stderr: String(decoding: stderr, as: UTF8.self))
    }

    func assertFails(_ arguments: [String], _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try run(arguments)
        XCTAssertEqual(r.status, 1, "exit status of \(arguments)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(message), "expected '\(message)' in stderr: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", "nothing on stdout on error", file: file, line: line)
    }

    /// The native level: refused where it cannot apply, with a message naming what to do instead; `inspect` shows a
    /// quantized file's type mixture and its native size.
    func testNativeLevelErrorsAndInspect() throws {
        let folder = try Fixtures.path("hf/tiny-llama")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("native-\(UUID().uuidString)").path
        try assertFails(["quantize", "--model", Fixtures.path("tiny-llama.gguf"), "--quant", "native", "--out", out],
                        "'--quant native' has nothing to convert")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing written")
        try assertFails(["generate", "--model", folder, "--quant", "native", "--prompt", "hi", "--max-tokens", "1"],
                        "the native level keeps a GGUF file's own tensor types, and this is not a GGUF file")
        // A float GGUF has nothing quantized: native keeps its F32 matrices as they are, and its default stays int8.
        let tiny = try run(["generate", "--model", Fixtures.path("tiny-llama.gguf"), "--quant", "native", "--prompt", "hi",
                            "--max-tokens", "2", "--temperature", "0"])
        XCTAssertEqual(tiny.status, 0, tiny.stderr)
        XCTAssertTrue(tiny.stderr.contains("(native,"), tiny.stderr)
        let inspectTiny = try run(["inspect", "--model", Fixtures.path("tiny-llama.gguf")])
        XCTAssertTrue(inspectTiny.stdout.contains("default level: int8"), inspectTiny.stdout)
        let inspect = try run(["inspect", "--model", Fixtures.defaultModelPath()])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        for line in ["default level: native", "tensor types: Q5_0 133 (254.4 MiB), Q8_0 13 (139.3 MiB), Q6_K 12",
                     "memory at native: weights 463.0 MiB", "stored level: the file's own types (native)"] {
            XCTAssertTrue(inspect.stdout.contains(line), "\(line) in:\n\(inspect.stdout)")
        }
    }

    /// `serve --model PATH:LEVEL,...` (repeatable): the forms that cannot be served are refused before anything loads.
    func testServeModelListErrors() throws {
        let tiny = try Fixtures.path("tiny-llama.gguf"), qwen = try Fixtures.path("tiny-qwen2.gguf")
        try assertFails(["serve", "--model", "\(tiny):int8,int8"], "lists a level twice")
        try assertFails(["serve", "--model", "\(tiny):int8,int3"], "unknown quantization level 'int3'")
        try assertFails(["serve", "--model", "\(tiny):"], "unknown quantization level ''")
        try assertFails(["serve", "--model", "/nonexistent.gguf:int8"], "no model at '/nonexistent.gguf'")
        try assertFails(["serve", "--model", tiny, "--model", tiny], "two served models are named 'tiny-llama'")
        try assertFails(["serve", "--model", tiny, "--model", "\(qwen):int8", "--served-model-name", "x"],
                        "'--served-model-name' names one model")
        // A config file instead of --model: not both; its mistakes name the file and where they are.
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("quantserve-config-\(getpid()).json")
        defer { try? FileManager.default.removeItem(at: config) }
        try Data(#"{"models": [{"path": "\#(tiny)", "levels": ["int8", "int9"]}]}"#.utf8).write(to: config)
        try assertFails(["serve", "--config", config.path, "--model", tiny], "give '--config FILE' or '--model PATH', not both")
        try assertFails(["serve", "--config", config.path], "\(config.path): models[0].levels[1]: not a level")
        try assertFails(["serve", "--config", "/nonexistent.json"], "cannot read the config file '/nonexistent.json'")
        try Data(#"{"models": [{"path": "\#(tiny)", "engine": {"max-seqs": "many"}}]}"#.utf8).write(to: config)
        try assertFails(["serve", "--config", config.path], "'--max-seqs' must be an integer")
        try assertFails(["report", "--url", "http://127.0.0.1:1"], "cannot reach the server at http://127.0.0.1:1")
        try assertFails(["report", "--format", "xml"], "'--format' must be text, json or markdown")
        try Data("[1, 2]".utf8).write(to: config)
        try assertFails(["serve", "--model", tiny, "--bench-results", config.path], "is not a saved bench result")
        try assertFails(["serve", "--model", tiny, "--bench-results", "/nonexistent.json"], "cannot read '--bench-results'")
    }

    /// `quantserve plan` on the repository's saved bench: a row per level, JSON and an SVG; and its errors.
    func testPlan() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let bench = root.appendingPathComponent("Benchmarks/results/latest.json").path
        let traffic = root.appendingPathComponent("examples/traffic-day.csv").path
        let svg = FileManager.default.temporaryDirectory.appendingPathComponent("plan-\(getpid()).svg")
        defer { try? FileManager.default.removeItem(at: svg) }
        let r = try run(["plan", "--bench", bench, "--rps", "0.5", "--p99-ttft-ms", "10000", "--duration", "900",
                         "--json", "--svg", svg.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let plan = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let levels = try XCTUnwrap(plan["levels"] as? [[String: Any]])
        XCTAssertEqual(levels.compactMap { $0["level"] as? String }, ["fp16", "int8", "int4", "nf4"])
        for level in levels {
            XCTAssertGreaterThanOrEqual(level["replicas_min"] as? Int ?? 0, 1)
            XCTAssertGreaterThan(level["usd_per_million_tokens"] as? Double ?? 0, 0)
            XCTAssertEqual((level["replicas_per_minute"] as? [Int])?.count, 15)
        }
        XCTAssertTrue((try String(contentsOf: svg, encoding: .utf8)).contains("<polyline"))
        let table = try run(["plan", "--bench", bench, "--traffic", traffic, "--p99-ttft-ms", "20000", "--duration", "3600"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("| int4 |"), table.stdout)
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("traffic-\(getpid()).csv")
        defer { try? FileManager.default.removeItem(at: bad) }
        try Data("seconds,rps,prompt_tokens,output_tokens\n0,1,500\n".utf8).write(to: bad)
        try assertFails(["plan", "--bench", bench, "--traffic", bad.path, "--p99-ttft-ms", "1000"], "line 2: expected 'seconds,rps,prompt_tokens,output_tokens'")
        try assertFails(["plan", "--bench", bench, "--p99-ttft-ms", "1000"], "give one of '--traffic FILE' and '--rps R'")
        try assertFails(["plan", "--bench", bench, "--rps", "1"], "missing required option '--p99-ttft-ms'")
        try assertFails(["plan", "--bench", traffic, "--rps", "1", "--p99-ttft-ms", "1000"], "is not a saved bench result")
        try assertFails(["plan", "--rps", "1", "--p99-ttft-ms", "1000"], "missing required option '--bench'")
    }

    func testHelpOnEveryCommand() throws {
        for command in ["serve", "generate", "tokenize", "inspect", "perplexity", "bench", "quantize", "report", "plan"] {
            let r = try run([command, "--help"])
            XCTAssertEqual(r.status, 0)
            XCTAssertTrue(r.stdout.contains("usage: quantserve \(command)"), r.stdout)
            XCTAssertTrue(r.stdout.contains(command == "report" ? "--url" : command == "plan" ? "--bench" : "--model"), r.stdout)
        }
        let top = try run(["--help"])
        XCTAssertEqual(top.status, 0)
        XCTAssertTrue(top.stdout.contains("generate") && top.stdout.contains("tokenize") && top.stdout.contains("inspect"))
    }

    func testUsageErrors() throws {
        let model = try Fixtures.path("tiny-qwen2.gguf")
        try assertFails(["frobnicate"], "unknown command 'frobnicate'")
        try assertFails(["tokenize", "--text", "hi"], "missing required option '--model'")
        try assertFails(["tokenize", "--model", model, "--text", "hi", "--bogus"], "unknown option '--bogus'")
        try assertFails(["tokenize", "--model", model, "--text"], "'--text' needs a value")
        try assertFails(["tokenize", "--model", model, "stray"], "unexpected argument 'stray'")
        try assertFails(["generate", "--model", model, "--prompt", "a", "--max-tokens", "-3"], "'--max-tokens' must be an integer")
        try assertFails(["generate", "--model", model, "--prompt", "a", "--temperature", "nan"], "'--temperature' must be a number")
        try assertFails(["generate", "--model", model, "--prompt", "a", "--top-p", "0"], "top-p must be in (0, 1]")
        try assertFails(["generate", "--model", model, "--prompt", "a", "--quant", "int3"],
                        "unknown quantization level 'int3' (known: f32, fp16, int8, int4, int4-rtn, nf4, native)")
        try assertFails(["generate", "--model", model, "--prompt", "a", "--quant", "int4", "--calibration", "/nonexistent.txt"],
                        "cannot read calibration text '/nonexistent.txt'")
        try assertFails(["perplexity", "--model", model, "--file", "/nonexistent.txt"], "cannot read '/nonexistent.txt'")
        try assertFails(["perplexity", "--model", model, "--file", try Fixtures.path("tiny-qwen2.json"), "--ctx-size", "4"],
                        "'--ctx-size' must be an integer in 8...")
        try assertFails(["bench", "--model", model, "--quant", "fp16,bogus"], "unknown quantization level 'bogus'")
        try assertFails(["bench", "--model", model, "--repetitions", "0"], "'--repetitions' must be an integer in 1...1000, got '0'")
        try assertFails(["bench", "--model", model, "--concurrency", "0,4"], "'--concurrency' must be a comma-separated list of integers in 1...4096, got '0,4'")
        try assertFails(["bench", "--model", model, "--concurrency", "4,4"], "'--concurrency' lists a value twice")
        try assertFails(["bench", "--model", model, "--quant", "int8,int8"], "'--quant' lists a level twice")
        try assertFails(["bench", "--model", model, "--usd-per-hour", "-1"], "'--usd-per-hour' must be a number")
        try assertFails(["bench", "--model", model, "--plot", "/nonexistent/dir/p.svg"], "cannot write the plot to '/nonexistent/dir/p.svg'")
        try assertFails(["bench", "--model", model, "--quality", "--quality-text", "/nonexistent.txt"], "cannot read '/nonexistent.txt'")
        try assertFails(["bench", "--model", model, "--concurrency", "32", "--max-seqs", "8"], "'--max-seqs' (8) is below the highest '--concurrency' (32)")
        try assertFails(["bench", "serve"], "missing required option '--url'")
        try assertFails(["bench", "serve", "--url", "https://127.0.0.1:1"], "only http:// is supported")
        try assertFails(["bench", "serve", "--url", "http://127.0.0.1:1", "--endpoint", "embeddings"], "'--endpoint' must be completions or chat")
        try assertFails(["bench", "serve", "--url", "http://127.0.0.1:1", "--concurrency", "4", "--request-rate", "2"],
                        "'--concurrency' and '--request-rate' exclude each other")
        try assertFails(["bench", "serve", "--url", "http://127.0.0.1:1", "--goodput", "ttft=5"], "'--goodput' takes NAME:MS pairs")
        try assertFails(["bench", "serve", "--url", "http://127.0.0.1:1", "--dataset", "/x.jsonl", "--input-len", "8"],
                        "'--input-len' and '--dataset' exclude each other")
        // Nothing listens on port 1: a clear error, not a report of zero requests.
        try assertFails(["bench", "serve", "--url", "http://127.0.0.1:1", "--model", "m"], "cannot connect: 127.0.0.1:1: Connection refused")
        let badDataset = try writeTemporary("{\"prompt\": \"ok\"}\n{\"text\": 3}\n")
        try assertFails(["bench", "serve", "--url", "http://127.0.0.1:1", "--model", "m", "--dataset", badDataset.path],
                        "dataset line 2: needs \"prompt\" (a string) or \"messages\" (a list)")
        try assertFails(["generate", "--model", model, "--prompt", "a", "--kv-cache-dtype", "int4"],
                        "unknown KV cache type 'int4' (known: fp16, int8)")
        try assertFails(["generate", "--model", model, "--prompt", "a", "--seed", "x"], "'--seed' must be a non-negative integer")
        try assertFails(["generate", "--model", model, "--prompt", "", "--temperature", "0"], "the prompt is empty")
    }

    func testGenerationErrors() throws {
        let llama = try Fixtures.path("tiny-llama.gguf")
        try assertFails(["generate", "--model", llama, "--prompt", "hi", "--chat", "--quant", "f32"],
                        "the model has no chat template")
        try assertFails(["generate", "--model", llama, "--prompt", "hello there my friend", "--ctx-size", "3", "--quant", "f32"],
                        "the prompt has 12 tokens but the context holds 3")
    }

    func testModelFileErrors() throws {
        try assertFails(["inspect", "--model", "/nonexistent/m.gguf"], "/nonexistent/m.gguf: cannot open")
        let corrupt = FileManager.default.temporaryDirectory.appendingPathComponent("qs-corrupt-\(UUID()).gguf")
        // A real model's first 100 KB: header and part of the metadata, cut mid-way.
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: Fixtures.path("tiny-qwen2.gguf"))).readData(ofLength: 100_000)
        try head.write(to: corrupt)
        defer { try? FileManager.default.removeItem(at: corrupt) }
        try assertFails(["generate", "--model", corrupt.path, "--prompt", "a"], corrupt.path)
        try assertFails(["inspect", "--model", Fixtures.path("tiny-qwen2.json")], "not a GGUF file")
        // `serve` listens first, then fails the load: it says why and exits 1 (port 0: any free one).
        let serve = try run(["serve", "--model", corrupt.path, "--port", "0"])
        XCTAssertEqual(serve.status, 1)
        XCTAssertTrue(serve.stderr.contains(corrupt.path), serve.stderr)
    }

    func testServeUsageErrors() throws {
        try assertFails(["serve", "--model", "/nonexistent/m.gguf", "--port", "0"], "no model at '/nonexistent/m.gguf'")
        let model = try Fixtures.path("tiny-qwen2.gguf")
        try assertFails(["serve", "--model", model, "--api-key", ""], "'--api-key' is empty")
        try assertFails(["serve", "--model", model, "--api-key", "a", "--api-key-file", "/etc/hostname"], "at most one of")
        try assertFails(["serve", "--model", model, "--port", "70000"], "'--port' must be an integer in 0...65535")
        try assertFails(["serve", "--model", model, "--max-waiting", "0"], "'--max-waiting' must be an integer")
        try assertFails(["serve", "--model", model, "--host", "no.such.host.invalid", "--port", "0"], "cannot resolve host")
    }

    func testTokenizePrintsJSONIds() throws {
        let model = try Fixtures.path("tiny-qwen2.gguf")
        let reference: ModelReference = try Fixtures.json("tiny-qwen2.json")
        for c in reference.tokenize.prefix(6) {
            var args = ["tokenize", "--model", model, "--text", c.text]
            if c.parse_special { args.append("--special") }
            if c.add_special { args.append("--add-special") }
            let r = try run(args)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(try JSONDecoder().decode([Int32].self, from: Data(r.stdout.utf8)), c.ids, c.text)
        }
    }

    func testGenerateStreamsOnlyTheContinuation() throws {
        let model = try Fixtures.path("tiny-llama.gguf")
        let reference: ModelReference = try Fixtures.json("tiny-llama.json")
        let g = reference.generate[0]
        let r = try run(["generate", "--model", model, "--prompt", g.prompt, "--temperature", "0", "--max-tokens", "3",
                         "--quant", "f32"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stdout.contains(g.prompt), "the prompt is not echoed")
        XCTAssertFalse(r.stdout.isEmpty)
        for field in ["load:", "prefill:", "tok/s", "decode: 3 tokens"] {
            XCTAssertTrue(r.stderr.contains(field), "stderr lacks \(field): \(r.stderr)")
        }
    }

    /// The int8 KV cache is wired through: against the same level with the fp16 cache its logits differ a little
    /// (a KL divergence above zero, so the flag took effect, and small), and the engine generates with it.
    func testInt8KVCacheChangesLittleEndToEnd() throws {
        let heldOut = Fixtures.repositoryRoot.appendingPathComponent("Benchmarks/data/heldout.txt").path
        let model = try Fixtures.path("tiny-llama.gguf")
        let r = try run(["perplexity", "--model", model, "--quant", "f32", "--compare", "f32", "--kv-cache-dtype", "int8",
                         "--file", heldOut, "--ctx-size", "64", "--chunks", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["kv_cache_dtype"] as? String, "int8")
        let kld = try XCTUnwrap(object["kld_mean"] as? Double)
        XCTAssertGreaterThan(kld, 0)
        XCTAssertLessThan(kld, 0.01)
        let g = try run(["generate", "--model", model, "--prompt", "hello", "--temperature", "0", "--max-tokens", "4",
                         "--quant", "f32", "--kv-cache-dtype", "int8"])
        XCTAssertEqual(g.status, 0, g.stderr)
        XCTAssertFalse(g.stdout.isEmpty)
    }

    func testPerplexityPrintsOneJSONObject() throws {
        let heldOut = Fixtures.repositoryRoot.appendingPathComponent("Benchmarks/data/heldout.txt").path
        let r = try run(["perplexity", "--model", Fixtures.path("tiny-llama.gguf"), "--quant", "int8", "--compare", "f32",
                         "--file", heldOut, "--ctx-size", "64", "--chunks", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for key in ["ppl", "ppl_base", "kld_mean", "same_top1"] { XCTAssertNotNil(object[key] as? Double, key) }
        XCTAssertEqual(object["chunks"] as? Int, 2)
        let same = try XCTUnwrap(object["same_top1"] as? Double)
        XCTAssertTrue((0...1).contains(same))
    }

    func testBenchPrintsARowPerLevel() throws {
        let r = try run(["bench", "--model", Fixtures.path("tiny-qwen2.gguf"), "--quant", "fp16,int8,nf4", "--json",
                         "--prompt-tokens", "16", "--decode-tokens", "4", "--repetitions", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["quant"] as? String }, ["fp16", "int8", "nf4"])
        for row in rows {
            for key in ["weights_bytes", "load_s", "prefill_tok_s", "decode_tok_s", "read_bandwidth_bytes_s",
                        "bytes_per_token", "decode_bandwidth_pct"] {
                XCTAssertNotNil(row[key] as? Double ?? (row[key] as? Int).map(Double.init), key)
            }
            // The limit hangs together: a token reads at least the weights but the embedding table (tied here, so
            // all of them) and some KV; decode's share is the rate times those bytes over the read rate.
            let weights = try XCTUnwrap(row["weights_bytes"] as? Int), bytes = try XCTUnwrap(row["bytes_per_token"] as? Int)
            XCTAssertGreaterThan(bytes, weights)
            let bandwidth = try XCTUnwrap(row["read_bandwidth_bytes_s"] as? Double)
            XCTAssertGreaterThan(bandwidth, 1e8)
            let decode = try XCTUnwrap(row["decode_tok_s"] as? Double), share = try XCTUnwrap(row["decode_bandwidth_pct"] as? Double)
            XCTAssertEqual(share, 100 * decode * Double(bytes) / bandwidth, accuracy: 1e-6 * share)
        }
        // The economics fields: every one a number, the cost from the aggregate rate at the default price.
        for row in rows {
            for key in ["peak_rss_bytes", "aggregate_tok_s", "ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p99_ms",
                        "throughput_vs_fp16", "usd_per_million_tokens"] {
                XCTAssertNotNil(row[key] as? Double ?? (row[key] as? Int).map(Double.init), key)
            }
            let aggregate = try XCTUnwrap(row["aggregate"] as? [String: Double])
            XCTAssertEqual(Set(aggregate.keys), ["1", "16"])
            XCTAssertEqual(aggregate["16"], row["aggregate_tok_s"] as? Double)
            let usd = try XCTUnwrap(row["usd_per_million_tokens"] as? Double)
            XCTAssertEqual(usd, 0.10 / (aggregate["16"]! * 3600) * 1e6, accuracy: 1e-9 * usd)
            XCTAssertNil(row["ppl_ratio"], "quality only with --quality")
        }
        XCTAssertEqual(rows[0]["throughput_vs_fp16"] as? Double, 1)
        let table = try run(["bench", "--model", Fixtures.path("tiny-qwen2.gguf"), "--quant", "int8",
                             "--prompt-tokens", "16", "--decode-tokens", "4", "--concurrency", "2", "--markdown"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("| level | weights | peak RSS | memory vs fp16 |"), table.stdout)
        XCTAssertTrue(table.stdout.contains("| int8 |"), table.stdout)
        XCTAssertTrue(table.stdout.contains("aggregate tok/s (2 seqs)"), table.stdout)
        XCTAssertTrue(table.stdout.contains("cost at 0.100 USD/hour"), table.stdout)
        // Without a terminal, the progress display is a plain line per phase on stderr.
        XCTAssertTrue(table.stderr.contains("bench [1/1] int8: loading"), table.stderr)
        XCTAssertTrue(table.stderr.contains("bench: done in"), table.stderr)
    }

    func testInspectDescribesTheModel() throws {
        let r = try run(["inspect", "--model", Fixtures.path("tiny-qwen2.gguf")])
        XCTAssertEqual(r.status, 0, r.stderr)
        for field in ["architecture: qwen2", "layers: 2", "heads: 4 (kv 2)", "tied to embeddings", "byte-level BPE", "memory at fp16"] {
            XCTAssertTrue(r.stdout.contains(field), "inspect lacks \(field): \(r.stdout)")
        }
    }

    func writeTemporary(_ text: String, suffix: String = ".jsonl") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qs-\(UUID())\(suffix)")
        try Data(text.utf8).write(to: url)
        return url
    }

    /// Every line runs through the engine at once; each result is one JSON line with the line's index, and greedy
    /// lines give what they give alone.
    func testGeneratePromptsFileRunsEveryLine() throws {
        let model = try Fixtures.path("tiny-llama.gguf")
        let reference: ModelReference = try Fixtures.json("tiny-llama.json")
        let prompts = reference.generate.prefix(3).map(\.prompt)
        var lines = prompts.map { p in
            String(decoding: try! JSONSerialization.data(withJSONObject: ["prompt": p, "max_tokens": 5, "temperature": 0]), as: UTF8.self)
        }
        lines.append(#"{"prompt": "sampled", "max_tokens": 4, "temperature": 0.9, "top_p": 0.8, "seed": 7, "stop": ["zz"]}"#)
        let file = try writeTemporary(lines.joined(separator: "\n") + "\n")
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try run(["generate", "--model", model, "--quant", "f32", "--prompts-file", file.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        struct Line: Decodable { let index: Int; let text: String; let finish_reason: String; let completion_tokens: Int }
        let out = try r.stdout.split(separator: "\n").map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
        XCTAssertEqual(Set(out.map(\.index)), [0, 1, 2, 3])
        for (i, p) in prompts.enumerated() {
            let alone = try run(["generate", "--model", model, "--quant", "f32", "--prompt", p, "--temperature", "0",
                                 "--max-tokens", "5"])
            let batched = try XCTUnwrap(out.first { $0.index == i })
            XCTAssertEqual(batched.text + "\n", alone.stdout, "line \(i)")
            XCTAssertEqual(batched.completion_tokens, 5)
        }
    }

    func testPromptsFileErrorsNameTheLine() throws {
        let model = try Fixtures.path("tiny-llama.gguf")
        let cases: [(String, String)] = [
            (#"{"prompt": "a"}"# + "\n" + "not json", ":2: not a valid JSON object"),
            (#"{"max_tokens": 3}"#, ":1: missing field 'prompt'"),
            (#"{"prompt": "a", "temperature": "hot"}"#, ":1: field 'temperature' has the wrong type"),
            (#"{"prompt": "a", "top_p": 0}"#, ":1: top-p must be in (0, 1], got 0.0"),
            (#"{"prompt": "a", "max_tokens": -1}"#, ":1: 'max_tokens' must be >= 0, got -1"),
            (#"{"prompt": "a", "stop": 5}"#, ":1: field 'stop' has the wrong type"),
            ("\n\n", "has no prompts"),
        ]
        for (text, message) in cases {
            let file = try writeTemporary(text)
            defer { try? FileManager.default.removeItem(at: file) }
            try assertFails(["generate", "--model", model, "--quant", "f32", "--prompts-file", file.path], message)
        }
        try assertFails(["generate", "--model", model, "--prompts-file", "/nonexistent.jsonl"], "cannot read prompts file")
        try assertFails(["generate", "--model", model], "give exactly one of '--prompt' and '--prompts-file'")
        try assertFails(["generate", "--model", model, "--prompt", "a", "--max-seqs", "0"], "'--max-seqs' must be an integer in 1...4096")
        try assertFails(["generate", "--model", model, "--prompt", "a b c d e f", "--kv-blocks", "1", "--max-tokens", "100",
                         "--quant", "f32"], "KV-cache blocks but the pool has 1")
    }

    func testBenchConcurrencyAddsAggregateThroughput() throws {
        let r = try run(["bench", "--model", Fixtures.path("tiny-qwen2.gguf"), "--quant", "int8", "--json",
                         "--prompt-tokens", "16", "--decode-tokens", "4", "--concurrency", "4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        let aggregate = try XCTUnwrap(rows.first?["aggregate_tok_s"] as? Double)
        XCTAssertGreaterThan(aggregate, 0)
    }

    func testInspectDescribesGemma3Features() throws {
        let r = try run(["inspect", "--model", Fixtures.path("tiny-gemma3.gguf")])
        XCTAssertEqual(r.status, 0, r.stderr)
        for field in ["architecture: gemma3", "head dim: 32", "embeddings x 8, q/k norms, post norms, GeGLU (tanh)",
                      "query scale 0.1768", "5 layers with a 8-token sliding window (rope base 20000.0), 1 global (rope base 1000000.0)",
                      "SentencePiece BPE, 763 tokens"] {
            XCTAssertTrue(r.stdout.contains(field), "inspect lacks \(field): \(r.stdout)")
        }
    }

    /// `--chat` on a gemma3 file without a chat template uses the architecture's (Gemma 3's) template.
    func testGemmaChatUsesTheArchitecturesTemplate() throws {
        let r = try run(["generate", "--model", Fixtures.path("tiny-gemma3.gguf"), "--chat", "--prompt", "hi",
                         "--temperature", "0", "--max-tokens", "4", "--quant", "f32"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("prefill: 14 tokens"), r.stderr)  // tiny-gemma3.json: llama.cpp's 14 ids
    }

    func testQuantizeWritesALoadableFolder() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("qs-quantize-\(UUID())")
        defer { try? FileManager.default.removeItem(at: out) }
        let model = try Fixtures.path("tiny-qwen2.gguf")
        let r = try run(["quantize", "--model", model, "--quant", "nf4", "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("wrote \(out.path) at nf4"), r.stderr)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: out.path)),
                       ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any])
        XCTAssertEqual((config["quantization_config"] as? [String: Any])?["quant_method"] as? String, "bitsandbytes")

        // The folder runs at its own level by default, greedily as the GGUF does at nf4.
        let fromFolder = try run(["generate", "--model", out.path, "--prompt", "def add(a, b):", "--temperature", "0", "--max-tokens", "6"])
        XCTAssertEqual(fromFolder.status, 0, fromFolder.stderr)
        XCTAssertTrue(fromFolder.stderr.contains("(nf4,"), fromFolder.stderr)
        let fromGGUF = try run(["generate", "--model", model, "--quant", "nf4", "--prompt", "def add(a, b):", "--temperature", "0", "--max-tokens", "6"])
        XCTAssertEqual(fromFolder.stdout, fromGGUF.stdout)
        let inspect = try run(["inspect", "--model", out.path])
        XCTAssertTrue(inspect.stdout.contains("bitsandbytes NF4") && inspect.stdout.contains("stored level: nf4"), inspect.stdout)

        try assertFails(["quantize", "--model", model, "--quant", "int8", "--out", out.path], "exists and is not empty (use --force")
        let forced = try run(["quantize", "--model", model, "--quant", "int8", "--out", out.path, "--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        try assertFails(["quantize", "--model", model, "--out", out.path], "missing required option '--quant'")
        try assertFails(["quantize", "--model", model, "--quant", "int3", "--out", out.path], "unknown quantization level 'int3'")
        try assertFails(["generate", "--model", FileManager.default.temporaryDirectory.path, "--prompt", "a"], "config.json: missing")
        try assertFails(["quantize", "--model", Fixtures.path("tiny-gemma3.gguf"), "--quant", "int8", "--out", out.path + "-gemma"],
                        "quantize writes Hugging Face folders for llama and qwen2 only, not gemma3")
    }
}
