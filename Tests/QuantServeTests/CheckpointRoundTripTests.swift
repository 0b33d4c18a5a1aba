import Foundation
import XCTest
@testable import QuantServe

/// `quantize` → load: the folder gives the model quantize-on-load gives at the same level.
final class CheckpointRoundTripTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qs-checkpoint-\(UUID())")
        setenv("QUANTSERVE_CACHE", scratch.appendingPathComponent("cache").path, 1)
    }

    override func tearDownWithError() throws {
        unsetenv("QUANTSERVE_CACHE")
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Largest |a - b| relative to the largest |b| over the logits of `prompts`.
    func difference(_ a: TransformerModel, _ b: TransformerModel, prompts: [[Int32]]) throws -> Float {
        var worst: Float = 0
        for ids in prompts {
            let x = try a.forward(ids, cache: a.makeCache(capacity: 64), logits: .all)
            let y = try b.forward(ids, cache: b.makeCache(capacity: 64), logits: .all)
            let scale = y.map(abs).max()!
            for (u, v) in zip(x, y) { worst = max(worst, abs(u - v) / scale) }
        }
        return worst
    }

    func testTinyModelsAtEveryLevel() throws {
        let context = ComputeContext(threads: 2)
        for name in ["tiny-qwen2", "tiny-llama"] {
            let reference: ModelReference = try Fixtures.json("\(name).json")
            let prompts = reference.generate.map(\.prompt_ids)
            let gguf = try GGUFFile(path: try Fixtures.path("\(name).gguf"))
            for level in [QuantLevel.f32, .fp16, .int8, .int4, .nf4] {
                let out = scratch.appendingPathComponent("\(name)-\(level.rawValue)").path
                try CheckpointWriter.write(source: gguf, level: level, to: out, overwrite: false, context: context)
                let onLoad = try TransformerModel(file: gguf, level: level, context: context)
                var logged: [String] = []
                let folder = try ModelLoader.load(path: out, level: nil, context: context) { logged.append($0) }
                XCTAssertEqual(folder.model.level, level.storesPacked ? level : .int8, "\(name) \(level): default level")
                let reloaded = level.storesPacked ? folder.model
                    : try TransformerModel(source: folder.source, level: level, context: context)
                XCTAssertEqual(logged, [], "\(name) \(level): no AWQ search on reload")
                XCTAssertEqual(reloaded.configuration.with { $0.ropePairing = .neox },
                               onLoad.configuration.with { $0.ropePairing = .neox })
                XCTAssertEqual(reloaded.weightBytes, onLoad.weightBytes, "\(name) \(level)")
                let worst = try difference(reloaded, onLoad, prompts: prompts)
                // Bitwise at f32, fp16 and int8 for qwen2. llama's folder holds Q/K un-permuted and runs NEOX RoPE, so
                // attention sums the same products in another order (about 1e-7 apart). The 4-bit folders hold their
                // unquantized tensors in F16 as AutoAWQ and bitsandbytes do (norms, biases, embeddings), so the F32
                // source's values are rounded to F16 first, which moves logits slightly and flips a few 4-bit codes
                // of an untied embedding that the level quantizes on load.
                if level == .int4 || level == .nf4 {
                    XCTAssertLessThan(worst, 0.1, "\(name) \(level)")
                    XCTAssertGreaterThan(worst, 0, "\(name) \(level)")
                } else if name == "tiny-qwen2" {
                    XCTAssertEqual(worst, 0, "\(name) \(level): logits differ")
                } else if level == .int8 {
                    // The 1e-7 differences can move an activation across an int8 rounding boundary: one step of
                    // 1/127 in one value (measured: 1.1e-2 at one position of 34, about 1e-7 elsewhere).
                    XCTAssertLessThan(worst, 0.05, "\(name) \(level)")
                } else {
                    // The reordered sums move logits by about 1e-6 with the AVX2 kernels; with the AVX-512 ones
                    // (other lane counts, another rounding path) 1.2e-5 at f32 and 6.7e-5 at fp16 (measured
                    // 2026-11-27). A wrong permutation or RoPE moves them by whole units.
                    XCTAssertLessThan(worst, 1e-4, "\(name) \(level)")
                }
                // The same tokenizer as the GGUF's, on llama.cpp's references.
                for c in reference.tokenize {
                    XCTAssertEqual(folder.tokenizer.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special),
                                   c.ids, "\(name) \(level) tokenize \(c.text.debugDescription)")
                }
            }
        }
    }

    /// A peer AWQ folder written again at int8 by `quantize`: the new folder gives the model the AWQ folder gives
    /// at int8 (dequantized, then quantized on load), bit for bit.
    func testPeerAWQFolderRequantizedToInt8() throws {
        let context = ComputeContext(threads: 2)
        let awq = try HFModelFolder(path: try Fixtures.path("hf/tiny-qwen2-awq"))
        let out = scratch.appendingPathComponent("awq-to-int8").path
        try CheckpointWriter.write(source: awq, level: .int8, to: out, overwrite: false, context: context)
        let folder = try ModelLoader.load(path: out, level: nil, context: context)
        XCTAssertEqual(folder.model.level, .int8)
        let direct = try TransformerModel(source: awq, level: .int8, context: context)
        let reference: ModelReference = try Fixtures.json("tiny-qwen2.json")
        XCTAssertEqual(try difference(folder.model, direct, prompts: reference.generate.map(\.prompt_ids)), 0)
    }

    /// The folder's llama Q/K are un-permuted: the safetensors hold what transformers' own conversion holds.
    func testLlamaQKMatchTransformersConversion() throws {
        let out = scratch.appendingPathComponent("llama-f32").path
        try CheckpointWriter.write(source: try GGUFFile(path: Fixtures.path("tiny-llama.gguf")), level: .f32, to: out,
                                   overwrite: false, context: ComputeContext(threads: 1))
        let ours = try SafetensorsFile(path: out + "/model.safetensors")
        let peer = try SafetensorsFile(path: try Fixtures.path("hf/tiny-llama/model.safetensors"))
        for name in ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
                     "model.layers.0.self_attn.v_proj.weight", "lm_head.weight", "model.embed_tokens.weight"] {
            XCTAssertEqual(try ours.floats(name), try peer.floats(name), name)
        }
    }

    /// The default model at int8: written, read back without re-quantizing, same logits, llama.cpp's tokenization.
    func testDefaultModelInt8Folder() throws {
        let context = ComputeContext()
        let gguf = try GGUFFile(path: try Fixtures.defaultModelPath())
        let out = scratch.appendingPathComponent("qwen-int8").path
        try CheckpointWriter.write(source: gguf, level: .int8, to: out, overwrite: false, context: context)
        let folder = try ModelLoader.load(path: out, level: nil, context: context)
        XCTAssertEqual(folder.model.level, .int8)
        print("default model int8 folder: loaded in \(folder.loadSeconds) s")
        let onLoad = try TransformerModel(file: gguf, level: .int8, context: context)
        let reference: ModelReference = try Fixtures.json("qwen2.5-coder-0.5b.json")
        XCTAssertEqual(try difference(folder.model, onLoad, prompts: [Array(reference.generate[0].prompt_ids.prefix(24))]), 0)
        for c in reference.tokenize {
            XCTAssertEqual(folder.tokenizer.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special), c.ids,
                           c.text.debugDescription)
        }
        let chat = try folder.tokenizer.makeChatTemplate()
        XCTAssertEqual(chat.family, try onLoadTokenizer(gguf).makeChatTemplate().family)
    }

    private func onLoadTokenizer(_ gguf: GGUFFile) throws -> any Tokenizer {
        try makeTokenizer(vocabulary: try gguf.tokenizerVocabulary())
    }
}

/// tokenizer.json written for each pre-tokenizer the writer can express reads back as the same tokenizer.
final class TokenizerJSONRoundTripTests: XCTestCase {
    func testEveryWritablePreTokenizer() throws {
        let base = try GGUFFile(path: try Fixtures.path("tiny-qwen2.gguf")).tokenizerVocabulary()
        let texts = ["Hello world 12345 and 3.14159", "I'm sure you don't know, THEY'RE here\n\n  x",
                     "<|im_start|>user\nhi<|im_end|>", "emoji 🦙 café", "<tool_call>{}</tool_call>"]
        for pre in ["qwen2", "llama-bpe", "gpt2"] {
            var vocabulary = base
            vocabulary.preTokenizer = pre
            vocabulary.addBOS = pre == "llama-bpe"
            let tokenizer = try makeTokenizer(vocabulary: vocabulary)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qs-tok-\(UUID())")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            for (name, data) in try HFTokenizerWriter.files(vocabulary: vocabulary, tokenizer: tokenizer, contextLength: 256) {
                try data.write(to: folder.appendingPathComponent(name))
            }
            try Data(#"{"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 160, "vocab_size": 1504}"#.utf8)
                .write(to: folder.appendingPathComponent("config.json"))
            let read = try HFTokenizerFiles(folder: folder.path, config: try HFConfig(path: folder.appendingPathComponent("config.json").path)).vocabulary()
            XCTAssertEqual(read.preTokenizer, pre)
            XCTAssertEqual(read.tokens, vocabulary.tokens, pre)
            XCTAssertEqual(read.tokenTypes, vocabulary.tokenTypes, pre)
            XCTAssertEqual(read.merges, vocabulary.merges, pre)
            XCTAssertEqual(read.chatTemplate, vocabulary.chatTemplate, pre)
            let again = try makeTokenizer(vocabulary: read)
            XCTAssertEqual(again.addsBOS, tokenizer.addsBOS, pre)
            XCTAssertEqual(again.eosTokenID, tokenizer.eosTokenID, pre)
            for text in texts {
                for special in [false, true] {
                    XCTAssertEqual(again.encode(text, addSpecial: true, parseSpecial: special),
                                   tokenizer.encode(text, addSpecial: true, parseSpecial: special), "\(pre): \(text)")
                }
            }
        }
    }

    /// A SentencePiece vocabulary's scores become merges; read back, the merge ranks give the same tokenization.
    func testSentencePieceMergesFromScores() throws {
        let reference: ModelReference = try Fixtures.json("tiny-llama.json")
        let gguf = try GGUFFile(path: try Fixtures.path("tiny-llama.gguf"))
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("qs-spm-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        try CheckpointWriter.write(source: gguf, level: .fp16, to: out, overwrite: false, context: ComputeContext(threads: 1))
        let (_, tokenizer) = try ModelLoader.tokenizer(path: out)
        for c in reference.tokenize {
            XCTAssertEqual(tokenizer.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special), c.ids, c.text)
        }
    }
}
