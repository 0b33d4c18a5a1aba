import CKernels
import Foundation
import XCTest
@testable import QuantServe

/// Hugging Face folders made by peers: transformers' own GGUF → HF conversion of the tiny models (config, tokenizer,
/// weights with llama's Q/K un-permuted), and AWQ / NF4 folders packed by models/make_hf_fixtures.py from the
/// published layouts. Logits are checked against llama.cpp (tiny-*.json) and transformers (hf/references.json).
final class HFFolderTests: XCTestCase {
    struct PeerLogits: Decodable {
        let prompt_ids: [Int32]
        let logits: [[Float]]
    }

    static func folder(_ name: String) throws -> String { try Fixtures.path("hf/\(name)") }

    /// Our f32 level against transformers' float32 on the same weights: the KV cache holds keys and values in F16,
    /// about 1e-3 relative (measured 0.7-1.1e-3); a wrong weight or layout gives errors near 1.
    static let f32Tolerance: Float = 3e-3

    static func transformersLogits(_ folder: String) throws -> [PeerLogits] {
        let all: [String: [PeerLogits]] = try Fixtures.json("hf/references.json")
        return try XCTUnwrap(all[folder], "no references for \(folder)")
    }

    /// Largest |ours - theirs| over all positions, relative to each row's largest |logit|.
    static func worstRelativeError(_ model: TransformerModel, _ cases: [(ids: [Int32], logits: [[Float]])]) throws -> Float {
        let vocab = model.configuration.vocabularySize
        var worst: Float = 0
        for c in cases {
            let cache = model.makeCache(capacity: 256)
            let logits = try model.forward(c.ids, cache: cache, logits: .all)
            XCTAssertEqual(logits.count, c.logits.count * vocab)
            for (p, row) in c.logits.enumerated() {
                let scale = row.map(abs).max() ?? 1
                for (t, e) in row.enumerated() { worst = max(worst, abs(logits[p * vocab + t] - e) / scale) }
            }
        }
        return worst
    }

    static func llamaCppCases(_ model: String) throws -> [(ids: [Int32], logits: [[Float]])] {
        let reference: ModelReference = try Fixtures.json("\(model).json")
        return try reference.generate.map { ($0.prompt_ids, try XCTUnwrap($0.logits)) }
    }

    static func transformersCases(_ folder: String) throws -> [(ids: [Int32], logits: [[Float]])] {
        try transformersLogits(folder).map { ($0.prompt_ids, $0.logits) }
    }

    /// Every tokenize case of llama.cpp's reference, through the folder's tokenizer.json.
    func checkTokenizer(_ tokenizer: any Tokenizer, model: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let reference: ModelReference = try Fixtures.json("\(model).json")
        XCTAssertFalse(reference.tokenize.isEmpty)
        for c in reference.tokenize {
            XCTAssertEqual(tokenizer.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special), c.ids,
                           "\(model) tokenize \(c.text.debugDescription) special=\(c.parse_special)", file: file, line: line)
        }
        for g in reference.generate {
            XCTAssertEqual(tokenizer.encode(g.prompt, addSpecial: true, parseSpecial: g.parse_special ?? false), g.prompt_ids,
                           file: file, line: line)
        }
    }

    // MARK: folders converted by transformers

    /// transformers un-permutes a llama GGUF's Q/K; read with NEOX pairing the folder gives llama.cpp's logits.
    func testTransformersLlamaFolderMatchesLlamaCpp() throws {
        let loaded = try ModelLoader.load(path: try Self.folder("tiny-llama"), level: .f32, context: ComputeContext(threads: 2))
        XCTAssertEqual(loaded.model.configuration.ropePairing, .neox)
        XCTAssertEqual(loaded.model.configuration, try GGUFFile(path: Fixtures.path("tiny-llama.gguf")).configuration()
            .with { $0.ropePairing = .neox })
        XCTAssertLessThan(try Self.worstRelativeError(loaded.model, Self.llamaCppCases("tiny-llama")), 5e-3)
        XCTAssertLessThan(try Self.worstRelativeError(loaded.model, Self.transformersCases("tiny-llama")), Self.f32Tolerance)
        try checkTokenizer(loaded.tokenizer, model: "tiny-llama")
    }

    /// BF16 weights in three shards with an index; qwen2's biases and tied embeddings; tokenizer and chat template.
    func testTransformersShardedBF16Qwen2Folder() throws {
        let path = try Self.folder("tiny-qwen2-bf16")
        let loaded = try ModelLoader.load(path: path, level: .f32, context: ComputeContext(threads: 2))
        let folder = try XCTUnwrap(loaded.source as? HFModelFolder)
        XCTAssertEqual(folder.files.count, 3)
        XCTAssertLessThan(try Self.worstRelativeError(loaded.model, Self.transformersCases("tiny-qwen2-bf16")), Self.f32Tolerance)
        // llama.cpp ran the F16 original: BF16 rounding of the weights moves logits by about 1%.
        XCTAssertLessThan(try Self.worstRelativeError(loaded.model, Self.llamaCppCases("tiny-qwen2")), 3e-2)
        try checkTokenizer(loaded.tokenizer, model: "tiny-qwen2")
        XCTAssertNotNil(try? loaded.tokenizer.makeChatTemplate())
        XCTAssertEqual(loaded.model.level, .f32)
    }

    /// A float folder at int4 runs the AWQ search once, cached by the folder's files, like a GGUF.
    func testFloatFolderAtInt4RunsTheAWQSearchOnce() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("qs-awq-\(UUID())")
        setenv("QUANTSERVE_CACHE", cache.path, 1)
        defer { unsetenv("QUANTSERVE_CACHE"); try? FileManager.default.removeItem(at: cache) }
        var logged: [String] = []
        let path = try Self.folder("tiny-qwen2-bf16")
        let first = try ModelLoader.load(path: path, level: .int4, context: ComputeContext(threads: 2)) { logged.append($0) }
        XCTAssertEqual(first.model.level, .int4)
        XCTAssertEqual(logged.filter { $0.contains("awq: searching") }.count, 1, "\(logged)")
        logged = []
        _ = try ModelLoader.load(path: path, level: .int4, context: ComputeContext(threads: 2)) { logged.append($0) }
        XCTAssertEqual(logged, [], "the second load reads the cached result")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.path).count, 2, "the JSON and the rounded matrices")
    }

    /// The vocabulary read from transformers' tokenizer.json is the GGUF's: tokens, types, merges, special tokens.
    func testTokenizerJSONGivesTheGGUFVocabulary() throws {
        for (gguf, folder) in [("tiny-qwen2.gguf", "tiny-qwen2-bf16"), ("tiny-llama.gguf", "tiny-llama")] {
            let a = try GGUFFile(path: Fixtures.path(gguf)).tokenizerVocabulary()
            let b = try HFModelFolder(path: try Self.folder(folder)).tokenizerVocabulary()
            XCTAssertEqual(a.tokens, b.tokens, gguf)
            XCTAssertEqual(a.tokenTypes, b.tokenTypes, gguf)
            XCTAssertEqual(a.model, b.model, gguf)
            XCTAssertEqual(a.bosTokenID, b.bosTokenID, gguf)
            XCTAssertEqual(a.eosTokenID, b.eosTokenID, gguf)
            if a.model == .bytePairGPT2 {
                XCTAssertEqual(a.merges, b.merges, gguf)
                XCTAssertEqual(a.preTokenizer, b.preTokenizer, gguf)
                XCTAssertEqual(a.chatTemplate, b.chatTemplate, gguf)
            }
            let ta = try makeTokenizer(vocabulary: a), tb = try makeTokenizer(vocabulary: b)
            XCTAssertEqual(ta.addsBOS, tb.addsBOS, gguf)
            XCTAssertEqual(ta.endOfGenerationIDs, tb.endOfGenerationIDs, gguf)
        }
    }

    // MARK: AWQ and NF4 folders packed by the independent numpy script

    /// Loads a packed folder at its own level (the default) and checks each linear against the script's dequantization.
    func checkPackedFolder(_ name: String, level: QuantLevel, expectedFormat: qs_format, exactLinears: Int,
                           file: StaticString = #filePath, line: UInt = #line) throws -> TransformerModel {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("qs-awq-\(UUID())")
        setenv("QUANTSERVE_CACHE", cache.path, 1)
        defer { unsetenv("QUANTSERVE_CACHE"); try? FileManager.default.removeItem(at: cache) }
        var logged: [String] = []
        let loaded = try ModelLoader.load(path: try Self.folder(name), level: nil, context: ComputeContext(threads: 2)) { logged.append($0) }
        XCTAssertEqual(loaded.model.level, level, "a pre-quantized folder loads at its own level", file: file, line: line)
        XCTAssertEqual(logged, [], "no AWQ search for a pre-quantized folder", file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache.path), file: file, line: line)

        let reference = try SafetensorsFile(path: try Fixtures.path("hf/\(name).dequantized.safetensors"))
        let c = loaded.model.configuration
        var exact = 0
        for (l, layer) in loaded.model.weights.layers.enumerated() {
            let linears = [("self_attn.q_proj", layer.wq), ("self_attn.k_proj", layer.wk), ("self_attn.v_proj", layer.wv),
                           ("self_attn.o_proj", layer.wo), ("mlp.gate_proj", layer.gate), ("mlp.up_proj", layer.up),
                           ("mlp.down_proj", layer.down)]
            for (module, w) in linears {
                let expected = try reference.floats("model.layers.\(l).\(module).weight")
                var ours = [Float](repeating: 0, count: w.rows * w.cols)
                ours.withUnsafeMutableBufferPointer { w.dequantizeRows(0..<w.rows, into: $0.baseAddress!) }
                if w.format.kind == expectedFormat {
                    // Taken as stored: exactly the script's values.
                    XCTAssertEqual(ours, expected, "\(name) layer \(l) \(module)", file: file, line: line)
                    exact += 1
                } else {
                    // A shape the packing cannot tile in memory: dequantized, then int8 per 32 values.
                    XCTAssertEqual(w.format.kind, QS_FORMAT_Q8, file: file, line: line)
                    let scale = expected.map(abs).max()!
                    for (a, b) in zip(ours, expected) { XCTAssertEqual(a, b, accuracy: scale / 100, file: file, line: line) }
                }
            }
        }
        XCTAssertEqual(exact, exactLinears, "\(name): linears taken as stored", file: file, line: line)
        XCTAssertEqual(c.layerCount, 2)
        return loaded.model
    }

    /// Logits of a packed folder: at f32 (dequantized by our reader) they are transformers' on the script's
    /// dequantized weights. At the folder's own level the embeddings (F16 in the folder) are quantized on load too
    /// and activations go to int8, so there they are compared by cosine and top-1 (measured: qwen2 0.996-0.998 and
    /// 31/31; llama, whose untied embedding the 4-bit levels hold in 4 bits, 0.93 and 22-27 of 34). A wrong layout
    /// gives a cosine near 0.
    func checkPackedLogits(_ name: String, quantized: TransformerModel, minimumCosine: Double, minimumSameTop: Double,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let cases = try Self.transformersCases(name)
        let f32 = try ModelLoader.load(path: try Self.folder(name), level: .f32, context: ComputeContext(threads: 2))
        XCTAssertLessThan(try Self.worstRelativeError(f32.model, cases), Self.f32Tolerance, "\(name) at f32", file: file, line: line)
        let vocab = quantized.configuration.vocabularySize
        var worst = 1.0, sameTop = 0, positions = 0
        for c in cases {
            let logits = try quantized.forward(c.ids, cache: quantized.makeCache(capacity: 256), logits: .all)
            for (p, row) in c.logits.enumerated() {
                let ours = Array(logits[(p * vocab)..<((p + 1) * vocab)])
                var dot = 0.0, a = 0.0, b = 0.0
                for (x, y) in zip(ours, row) { dot += Double(x * y); a += Double(x * x); b += Double(y * y) }
                worst = min(worst, dot / (a * b).squareRoot())
                sameTop += ours.indices.max { ours[$0] < ours[$1] } == row.indices.max { row[$0] < row[$1] } ? 1 : 0
                positions += 1
            }
        }
        XCTAssertGreaterThan(worst, minimumCosine, "\(name) as stored: logits cosine", file: file, line: line)
        XCTAssertGreaterThanOrEqual(Double(sameTop), minimumSameTop * Double(positions), "\(name) as stored: top-1", file: file, line: line)
    }

    func testAWQFoldersFromTheNumpyPacker() throws {
        for name in ["tiny-qwen2-awq", "tiny-llama-awq"] {
            let model = try checkPackedFolder(name, level: .int4, expectedFormat: QS_FORMAT_Q4, exactLinears: 14)
            XCTAssertEqual(model.weights.layers[0].wq.format.group, 32, "group from the tensors' shapes")
            try checkPackedLogits(name, quantized: model, minimumCosine: name.contains("llama") ? 0.9 : 0.99,
                                  minimumSameTop: name.contains("llama") ? 0.6 : 0.9)
        }
    }

    func testNF4FoldersFromTheNumpyPacker() throws {
        // down_proj has 160 inputs: NF4 blocks of 64 straddle its rows, so it is dequantized and held at int8.
        for name in ["tiny-qwen2-nf4", "tiny-llama-nf4"] {
            let model = try checkPackedFolder(name, level: .nf4, expectedFormat: QS_FORMAT_NF4, exactLinears: 12)
            try checkPackedLogits(name, quantized: model, minimumCosine: name.contains("llama") ? 0.9 : 0.99,
                                  minimumSameTop: name.contains("llama") ? 0.6 : 0.9)
        }
    }
}

extension ModelConfiguration {
    func with(_ change: (inout ModelConfiguration) -> Void) -> ModelConfiguration {
        var copy = self
        change(&copy)
        return copy
    }
}
