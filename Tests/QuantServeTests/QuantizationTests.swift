import CKernels
import Foundation
import XCTest
@testable import QuantServe

/// Quantization levels end to end: memory, quality against references, perplexity against llama.cpp, AWQ.
final class QuantizationTests: XCTestCase {
    var heldOutText: String {
        get throws { try String(contentsOf: Fixtures.repositoryRoot.appendingPathComponent("Benchmarks/data/heldout.txt"), encoding: .utf8) }
    }

    struct PerplexityReference: Decodable {
        struct Case: Decodable { let model: String; let ctx_size: Int; let chunks: Int; let ppl: Double }
        let cases: [Case]
    }

    /// Our perplexity, by llama.cpp's method, within 1% of llama-perplexity's on held-out text.
    func testTinyModelPerplexityMatchesLlamaCpp() throws {
        let reference: PerplexityReference = try Fixtures.json("perplexity-references.json")
        let context = ComputeContext(threads: 2)
        for c in reference.cases {
            for level in [QuantLevel.f32, .fp16] {
                let loaded = try ModelLoader.load(path: try Fixtures.path(c.model), level: level, context: context)
                let tokens = loaded.tokenizer.encode(try heldOutText, addSpecial: true, parseSpecial: false)
                let bos = loaded.tokenizer.addsBOS ? loaded.tokenizer.bosTokenID : nil
                let r = try Perplexity.evaluate(model: loaded.model, tokens: tokens, bos: bos, contextSize: c.ctx_size,
                                                maxChunks: c.chunks)
                XCTAssertEqual(r.chunks, c.chunks)
                XCTAssertEqual(r.perplexity, c.ppl, accuracy: c.ppl * 0.01, "\(c.model) at \(level.rawValue)")
            }
        }
    }

    func testPerplexityRejectsTooShortTextsAndBadContext() throws {
        let context = ComputeContext(threads: 1)
        let loaded = try ModelLoader.load(path: try Fixtures.path("tiny-llama.gguf"), level: .f32, context: context)
        XCTAssertThrowsError(try Perplexity.evaluate(model: loaded.model, tokens: [1, 2, 3], bos: nil, contextSize: 128)) {
            XCTAssertEqual($0 as? PerplexityError, .tooFewTokens(have: 3, need: 128))
        }
        XCTAssertThrowsError(try Perplexity.evaluate(model: loaded.model, tokens: [1, 2, 3], bos: nil, contextSize: 4)) {
            XCTAssertEqual($0 as? PerplexityError, .invalidContextSize(4))
        }
    }

    /// Resident weights against fp16: the ceilings, on the real model's shapes.
    func testResidentWeightRatios() throws {
        let c = try GGUFFile(path: try Fixtures.defaultModelPath()).configuration()
        let fp16 = Double(c.weightBytes(at: .fp16)!)
        XCTAssertLessThanOrEqual(Double(c.weightBytes(at: .int8)!) / fp16, 0.56)
        XCTAssertLessThanOrEqual(Double(c.weightBytes(at: .int4)!) / fp16, 0.36)
        XCTAssertLessThanOrEqual(Double(c.weightBytes(at: .int4RTN)!) / fp16, 0.36)
        XCTAssertLessThanOrEqual(Double(c.weightBytes(at: .nf4)!) / fp16, 0.38)
    }

    /// Every level loads and runs the tiny models; logits stay close to llama.cpp's FP32 ones, and the resident
    /// bytes are what `weightBytes(at:)` predicts.
    func testEveryLevelTracksTheReferenceLogits() throws {
        let cacheDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("qs-awq-\(UUID())")
        setenv("QUANTSERVE_CACHE", cacheDirectory.path, 1)
        defer { unsetenv("QUANTSERVE_CACHE"); try? FileManager.default.removeItem(at: cacheDirectory) }
        let context = ComputeContext(threads: 2)
        for name in ["tiny-llama", "tiny-qwen2"] {
            let reference: ModelReference = try Fixtures.json("\(name).json")
            let g = reference.generate[0]
            let expected = try XCTUnwrap(g.logits?.last)
            for level in QuantLevel.allCases {
                let loaded = try ModelLoader.load(path: try Fixtures.path("\(name).gguf"), level: level, context: context)
                let expectedBytes = level == .native ? try GGUFFile(path: try Fixtures.path("\(name).gguf")).nativeWeightBytes
                                                     : loaded.model.configuration.weightBytes(at: level)
                XCTAssertEqual(loaded.model.weightBytes, expectedBytes, "\(name) \(level)")
                let logits = try loaded.model.forward(g.prompt_ids, cache: loaded.model.makeCache(capacity: 64))
                let dot = zip(logits, expected).reduce(0) { $0 + Double($1.0 * $1.1) }
                let norms = sqrt(logits.reduce(0) { $0 + Double($1 * $1) } * expected.reduce(0) { $0 + Double($1 * $1) })
                // 4-bit levels on random Gaussian weights (no outlier structure for AWQ to use) stay near 0.92-0.97;
                // a broken kernel or layout lands near 0. Quality proper is measured on the real model.
                // native keeps these float files' F32 / F16 matrices as they are.
                let bound = level == .f32 || level == .fp16 || level == .native ? 0.9999 : level == .int8 ? 0.999 : 0.9
                XCTAssertGreaterThan(dot / norms, bound, "\(name) at \(level.rawValue): logits cosine")
            }
        }
    }

    /// The AWQ search runs once; a second load reads the same result from the cache.
    func testAWQResultIsCachedByFileAndSettings() throws {
        let cacheDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("qs-awq-\(UUID())")
        setenv("QUANTSERVE_CACHE", cacheDirectory.path, 1)
        defer { unsetenv("QUANTSERVE_CACHE"); try? FileManager.default.removeItem(at: cacheDirectory) }
        let context = ComputeContext(threads: 2)
        let file = try GGUFFile(path: try Fixtures.path("tiny-qwen2.gguf"))
        let tokenizer = try makeTokenizer(vocabulary: try file.tokenizerVocabulary())
        var searches = 0
        let first = try AWQCalibration.result(source: file, tokenizer: tokenizer, calibrationText: nil, context: context) { _ in searches += 1 }
        let second = try AWQCalibration.result(source: file, tokenizer: tokenizer, calibrationText: nil, context: context) { _ in searches += 1 }
        XCTAssertEqual(first, second, "scales, clips and any GPTQ-rounded matrix, byte for byte")
        XCTAssertEqual(searches, 2, "two log lines from the one search, none from the cached read")
        let files = try FileManager.default.contentsOfDirectory(atPath: cacheDirectory.path)
        XCTAssertEqual(Set(files.map { ($0 as NSString).pathExtension }), ["json", "safetensors"])
        // GPTQ-rounded matrices only where GPTQ is on (QS_INT4_GPTQ=1; off by default).
        XCTAssertEqual(Set(first.layers[0].rounded.keys), AWQSearch.usesGPTQ ? ["q", "k", "v", "o", "gate", "up", "down"] : [])
        // A damaged matrix file is not trusted: the search runs again and rewrites it.
        let matrices = cacheDirectory.appendingPathComponent(files.first { $0.hasSuffix(".safetensors") }!)
        try Data("not safetensors".utf8).write(to: matrices)
        let third = try AWQCalibration.result(source: file, tokenizer: tokenizer, calibrationText: nil, context: context) { _ in searches += 1 }
        XCTAssertEqual(searches, 4)
        XCTAssertEqual(third, first)
        // Other calibration text: another key, another search.
        let other = try AWQCalibration.result(source: file, tokenizer: tokenizer,
                                              calibrationText: String(repeating: "other calibration words ", count: 100),
                                              context: context) { _ in }
        XCTAssertNotEqual(other.key, first.key)
        let layer = first.layers[0]
        XCTAssertEqual(layer.attentionScales.count, 64)
        XCTAssertEqual(layer.downScales.count, 160)
        XCTAssertTrue(layer.attentionScales.allSatisfy { $0.isFinite && $0 > 0 })
        XCTAssertEqual(Set(layer.clips.keys), ["v", "o", "gate", "up", "down"])
        XCTAssertThrowsError(try AWQCalibration.result(source: file, tokenizer: tokenizer, calibrationText: "too short",
                                                       context: context) { _ in })
    }

    /// int8 against fp16 on the real model and held-out text.
    func testInt8QualityOnTheDefaultModel() throws {
        let context = ComputeContext()
        let path = try Fixtures.defaultModelPath()
        let loaded = try ModelLoader.load(path: path, level: .int8, context: context)
        let fp16 = try TransformerModel(source: loaded.source, level: .fp16, context: context)
        let tokens = loaded.tokenizer.encode(try heldOutText, addSpecial: true, parseSpecial: false)
        let r = try Perplexity.evaluate(model: loaded.model, base: fp16, tokens: tokens, bos: nil, contextSize: 512, maxChunks: 2)
        XCTAssertLessThanOrEqual(r.perplexity / r.basePerplexity!, 1.01)
        XCTAssertGreaterThanOrEqual(r.sameTop1!, 0.97)
        XCTAssertLessThan(r.klDivergenceMean!, 0.01)
    }

    /// int4 (the AWQ search on the bundled calibration text; GPTQ rounding off by default) against plain
    /// round-to-nearest in the same format, on the real model and held-out text: closer to fp16's distribution (KLD,
    /// same top-1). Its perplexity on this (licence) text is higher than RTN's: on 16 chunks 1.268 against 1.206,
    /// KLD 0.147 against 0.177, and HumanEval 73/164 each (docs/quantization.md), so perplexity is not asserted.
    func testInt4SearchBeatsRoundToNearestOnTheDefaultModel() throws {
        let context = ComputeContext()
        let path = try Fixtures.defaultModelPath()
        let searched = try ModelLoader.load(path: path, level: .int4, context: context)
        let nearest = try TransformerModel(source: searched.source, level: .int4RTN, context: context)
        let fp16 = try TransformerModel(source: searched.source, level: .fp16, context: context)
        let tokens = searched.tokenizer.encode(try heldOutText, addSpecial: true, parseSpecial: false)
        let a = try Perplexity.evaluate(model: searched.model, base: fp16, tokens: tokens, bos: nil, contextSize: 512, maxChunks: 3)
        let b = try Perplexity.evaluate(model: nearest, base: fp16, tokens: tokens, bos: nil, contextSize: 512, maxChunks: 3)
        XCTAssertLessThan(a.klDivergenceMean!, 0.92 * b.klDivergenceMean!, "KLD \(a.klDivergenceMean!) against \(b.klDivergenceMean!)")
        XCTAssertGreaterThan(a.sameTop1!, b.sameTop1!)
    }
}
