import XCTest
@testable import QuantServe

/// Tiny random-weight llama and qwen2 models against llama.cpp's logits and greedy tokens.
final class TinyModelTests: XCTestCase {
    func check(_ name: String, level: QuantLevel, file: StaticString = #filePath, line: UInt = #line) throws {
        let reference: ModelReference = try Fixtures.json("\(name).json")
        let context = ComputeContext(threads: 2)
        let loaded = try ModelLoader.load(path: try Fixtures.path("\(name).gguf"), level: level, context: context)
        let vocab = loaded.model.configuration.vocabularySize
        XCTAssertFalse(reference.generate.isEmpty)
        for g in reference.generate {
            // The same prompt ids, from our tokenizer.
            XCTAssertEqual(loaded.tokenizer.encode(g.prompt, addSpecial: true, parseSpecial: g.parse_special ?? false), g.prompt_ids,
                           "prompt ids of \(g.prompt)", file: file, line: line)
            let expected = try XCTUnwrap(g.logits)
            let cache = loaded.model.makeCache(capacity: 256)
            let logits = try loaded.model.forward(g.prompt_ids, cache: cache, logits: .all)
            XCTAssertEqual(logits.count, expected.count * vocab)
            var worst: Float = 0
            for (p, row) in expected.enumerated() {
                let scale = row.map(abs).max() ?? 1
                for (t, e) in row.enumerated() { worst = max(worst, abs(logits[p * vocab + t] - e) / scale) }
            }
            // llama.cpp rounds activations to F16 before F16 products: about 1e-3 relative. A wrong layer gives ~1.
            XCTAssertLessThan(worst, 5e-3, "\(name) logits differ from llama.cpp by \(worst) (relative)", file: file, line: line)

            // Greedy continuation token by token.
            cache.reset()
            var last = try loaded.model.forward(g.prompt_ids, cache: cache)
            var greedy: [Int32] = []
            while greedy.count < g.greedy_ids.count {
                let t = last.withUnsafeBufferPointer { Sampler.argmax($0) }
                greedy.append(t)
                last = try loaded.model.forward([t], cache: cache)
            }
            // Compared up to the first step where llama.cpp's top two logits nearly tie (a coin toss at FP rounding).
            let margins = g.greedy_margins ?? []
            let decisive = margins.firstIndex { $0 < 0.01 } ?? g.greedy_ids.count
            XCTAssertGreaterThanOrEqual(decisive, 4, "\(name): reference too close to a tie to test", file: file, line: line)
            XCTAssertEqual(Array(greedy.prefix(decisive + 1)), Array(g.greedy_ids.prefix(decisive + 1)),
                           "\(name) greedy continuation of \(g.prompt)", file: file, line: line)
        }
        for c in reference.tokenize {
            XCTAssertEqual(loaded.tokenizer.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special), c.ids,
                           "\(name) tokenize \(c.text.debugDescription) special=\(c.parse_special)", file: file, line: line)
        }
    }

    func testTinyLlamaF32() throws { try check("tiny-llama", level: .f32) }
    func testTinyLlamaFP16() throws { try check("tiny-llama", level: .fp16) }
    func testTinyQwen2F32() throws { try check("tiny-qwen2", level: .f32) }
    func testTinyQwen2FP16() throws { try check("tiny-qwen2", level: .fp16) }
    func testTinyGemma3F32() throws { try check("tiny-gemma3", level: .f32) }
    func testTinyGemma3FP16() throws { try check("tiny-gemma3", level: .fp16) }

    /// Batched prefill (OpenBLAS) and token-by-token decode (our kernels) give the same logits, up to the rounding of
    /// keys and values to the fp16 cache (a last-bit difference in a key can round to the neighbouring fp16 value).
    func testPrefillMatchesTokenByToken() throws {
        let context = ComputeContext(threads: 2)
        let loaded = try ModelLoader.load(path: try Fixtures.path("tiny-qwen2.gguf"), level: .fp16, context: context)
        let tokens: [Int32] = Array(0..<40).map { Int32(($0 * 37) % 1000 + 5) }
        let batch = loaded.model.makeCache(capacity: 64)
        let all = try loaded.model.forward(tokens, cache: batch, logits: .all)
        let single = loaded.model.makeCache(capacity: 64)
        let vocab = loaded.model.configuration.vocabularySize
        for (i, t) in tokens.enumerated() {
            let logits = try loaded.model.forward([t], cache: single)
            for j in 0..<vocab { XCTAssertEqual(logits[j], all[i * vocab + j], accuracy: 5e-3) }
        }
    }

    func testRejectsBadTokensAndFullContext() throws {
        let context = ComputeContext(threads: 1)
        let loaded = try ModelLoader.load(path: try Fixtures.path("tiny-llama.gguf"), level: .f32, context: context)
        let cache = loaded.model.makeCache(capacity: 4)
        XCTAssertThrowsError(try loaded.model.forward([-1], cache: cache))
        XCTAssertThrowsError(try loaded.model.forward([Int32(loaded.model.configuration.vocabularySize)], cache: cache))
        XCTAssertThrowsError(try loaded.model.forward([1, 2, 3, 4, 5], cache: cache)) { error in
            XCTAssertEqual(error as? ModelError, .contextFull(needed: 5, capacity: 4))
        }
        XCTAssertEqual(cache.count, 0, "a rejected call leaves the cache as it was")
    }
}
