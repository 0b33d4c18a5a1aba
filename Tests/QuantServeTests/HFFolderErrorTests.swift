import Foundation
import XCTest
@testable import QuantServe

/// What a user sees for a broken folder: an error naming the file and the problem.
final class HFFolderErrorTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qs-hf-errors-\(UUID())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// A copy of a fixture folder to break.
    func copy(_ name: String) throws -> URL {
        let to = scratch.appendingPathComponent(UUID().uuidString)
        try FileManager.default.copyItem(at: URL(fileURLWithPath: try Fixtures.path("hf/\(name)")), to: to)
        return to
    }

    func editConfig(_ folder: URL, _ change: (inout [String: Any]) -> Void) throws {
        let url = folder.appendingPathComponent("config.json")
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        change(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: url)
    }

    /// Rewrites model.safetensors with `change` applied to its entries (name, dtype, shape, bytes).
    func editWeights(_ folder: URL, _ change: (inout [(String, SafetensorsDType, [Int], [UInt8])]) -> Void) throws {
        let path = folder.appendingPathComponent("model.safetensors").path
        let file = try SafetensorsFile(path: path)
        var entries = file.tensors.map { ($0.name, $0.dtype, $0.shape, [UInt8](file.data(of: $0))) }
        change(&entries)
        try SafetensorsWriter.write(entries.map { e in
            SafetensorsWriter.Entry(name: e.0, dtype: e.1, shape: e.2) { out in e.3.withUnsafeBytes { out.copyMemory(from: $0) } }
        }, metadata: ["format": "pt"], to: path)
    }

    func assertLoadFails(_ folder: URL, level: QuantLevel? = .f32, _ fragments: [String],
                         file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ModelLoader.load(path: folder.path, level: level, context: ComputeContext(threads: 1)),
                             file: file, line: line) { error in
            let message = "\(error)"
            for f in fragments { XCTAssertTrue(message.contains(f), "'\(f)' not in: \(message)", file: file, line: line) }
        }
    }

    func testMissingAndBrokenFiles() throws {
        var f = try copy("tiny-llama")
        try FileManager.default.removeItem(at: f.appendingPathComponent("config.json"))
        assertLoadFails(f, [f.appendingPathComponent("config.json").path, "missing"])

        f = try copy("tiny-llama")
        try Data("{not json".utf8).write(to: f.appendingPathComponent("config.json"))
        assertLoadFails(f, ["config.json: not valid JSON"])

        f = try copy("tiny-llama")
        try FileManager.default.removeItem(at: f.appendingPathComponent("tokenizer.json"))
        assertLoadFails(f, ["tokenizer.json: missing"])

        f = try copy("tiny-llama")
        try FileManager.default.removeItem(at: f.appendingPathComponent("model.safetensors"))
        assertLoadFails(f, [f.path, "no model.safetensors or model.safetensors.index.json"])

        f = try copy("tiny-qwen2-bf16")
        try FileManager.default.removeItem(at: f.appendingPathComponent("model-00002-of-00003.safetensors"))
        assertLoadFails(f, ["model-00002-of-00003.safetensors: cannot open"])
    }

    func testConfigProblems() throws {
        var f = try copy("tiny-llama")
        try editConfig(f) { $0["model_type"] = "gpt_neox" }
        assertLoadFails(f, ["config.json: unsupported model_type 'gpt_neox' (supported: llama, qwen2)"])

        f = try copy("tiny-llama")
        try editConfig(f) { $0["hidden_size"] = "64" }
        assertLoadFails(f, ["config.json: 'hidden_size' must be an integer, got \"64\""])

        f = try copy("tiny-llama")
        try editConfig(f) { $0.removeValue(forKey: "num_hidden_layers") }
        assertLoadFails(f, ["config.json: 'num_hidden_layers' is missing"])

        f = try copy("tiny-llama")
        try editConfig(f) { $0["rope_scaling"] = ["rope_type": "yarn", "factor": 4.0] }
        assertLoadFails(f, ["config.json: RoPE scaling 'yarn'"])
    }

    func testCorruptQuantizationConfig() throws {
        let cases: [([String: Any], String)] = [
            (["bits": 4], "'quantization_config.quant_method' is missing"),
            (["quant_method": "gptq", "bits": 4], "quant_method 'gptq' is not supported"),
            (["quant_method": "awq", "bits": 3, "group_size": 32], "quantization_config.bits = 3"),
            (["quant_method": "awq", "bits": 4, "group_size": 32, "version": "gemv"], "version 'gemv' is not supported"),
            (["quant_method": "awq", "bits": 4, "group_size": "x"], "'quantization_config.group_size' must be an integer"),
            (["quant_method": "bitsandbytes", "load_in_8bit": true], "8-bit (load_in_8bit) is not supported"),
            (["quant_method": "bitsandbytes", "load_in_4bit": true, "bnb_4bit_quant_type": "fp4"], "'fp4' is not supported"),
        ]
        for (quantization, message) in cases {
            let f = try copy("tiny-qwen2-awq")
            try editConfig(f) { $0["quantization_config"] = quantization }
            assertLoadFails(f, ["config.json:", message])
        }
        let f = try copy("tiny-qwen2-awq")
        try editConfig(f) { $0["quantization_config"] = "awq" }
        assertLoadFails(f, ["config.json: 'quantization_config' must be an object"])
    }

    func testTensorProblems() throws {
        var f = try copy("tiny-llama")
        try editWeights(f) { $0.removeAll { $0.0 == "model.layers.1.mlp.up_proj.weight" } }
        assertLoadFails(f, ["model.safetensors: missing tensor 'model.layers.1.mlp.up_proj.weight'"])

        f = try copy("tiny-llama")
        try editWeights(f) { e in
            let i = e.firstIndex { $0.0 == "model.layers.0.self_attn.q_proj.weight" }!
            e[i].2 = [32, 128]
        }
        assertLoadFails(f, ["model.safetensors: tensor 'model.layers.0.self_attn.q_proj.weight' has shape [32, 128], expected [64, 64]"])

        f = try copy("tiny-llama")
        try editWeights(f) { e in
            let i = e.firstIndex { $0.0 == "model.norm.weight" }!
            e[i].1 = .I32
        }
        assertLoadFails(f, ["tensor 'model.norm.weight' has dtype I32, expected F32 or F16 or BF16"])

        f = try copy("tiny-qwen2-awq")
        try editWeights(f) { $0.removeAll { $0.0 == "model.layers.0.mlp.down_proj.qzeros" } }
        assertLoadFails(f, level: nil, ["missing tensor 'model.layers.0.mlp.down_proj.qzeros'"])

        f = try copy("tiny-qwen2-awq")
        try editWeights(f) { e in
            let i = e.firstIndex { $0.0 == "model.layers.0.mlp.up_proj.scales" }!
            e[i].1 = .F32
            e[i].2 = [1, 160]  // the same bytes as F32 [1, 160] instead of F16 [2, 160]
        }
        assertLoadFails(f, level: nil, ["tensor 'model.layers.0.mlp.up_proj.scales' has"])

        f = try copy("tiny-llama-nf4")
        try editWeights(f) { $0.removeAll { $0.0 == "model.layers.1.self_attn.o_proj.weight.nested_absmax" } }
        assertLoadFails(f, level: nil, ["missing tensor 'model.layers.1.self_attn.o_proj.weight.nested_absmax'"])
    }

    func testOutputDirectoryRules() throws {
        let source = try GGUFFile(path: try Fixtures.path("tiny-qwen2.gguf"))
        let out = scratch.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: out.appendingPathComponent("notes.txt"))
        XCTAssertThrowsError(try CheckpointWriter.write(source: source, level: .fp16, to: out.path, overwrite: false,
                                                        context: ComputeContext(threads: 1))) { error in
            XCTAssertEqual("\(error)", "\(out.path): exists and is not empty (use --force to replace the checkpoint files in it)")
        }
        try Data("stale".utf8).write(to: out.appendingPathComponent("model-00001-of-00002.safetensors"))
        try CheckpointWriter.write(source: source, level: .fp16, to: out.path, overwrite: true, context: ComputeContext(threads: 1))
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: out.path))
        XCTAssertEqual(names, ["notes.txt", "config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"])
        let file = scratch.appendingPathComponent("a-file")
        try Data().write(to: file)
        XCTAssertThrowsError(try CheckpointWriter.write(source: source, level: .fp16, to: file.path, overwrite: true,
                                                        context: ComputeContext(threads: 1))) { error in
            XCTAssertEqual("\(error)", "\(file.path): exists and is not a directory")
        }
    }
}
