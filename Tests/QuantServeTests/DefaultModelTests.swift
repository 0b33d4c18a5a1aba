import XCTest
@testable import QuantServe

/// The real default model (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M) against llama.cpp on the same weights in F16.
final class DefaultModelTests: XCTestCase {
    func testTokenizationMatchesLlamaCpp() throws {
        let reference: ModelReference = try Fixtures.json("qwen2.5-coder-0.5b.json")
        let (_, tokenizer) = try ModelLoader.tokenizer(path: try Fixtures.defaultModelPath())
        XCTAssertGreaterThan(reference.tokenize.count, 20)
        for c in reference.tokenize {
            XCTAssertEqual(tokenizer.encode(c.text, addSpecial: c.add_special, parseSpecial: c.parse_special), c.ids,
                           "tokenize \(c.text.debugDescription) special=\(c.parse_special)")
        }
    }

    func testGreedyContinuationsAndLogitsMatchLlamaCppF16() throws {
        let reference: ModelReference = try Fixtures.json("qwen2.5-coder-0.5b.json")
        let context = ComputeContext()
        let loaded = try ModelLoader.load(path: try Fixtures.defaultModelPath(), level: .fp16, context: context)
        // Every continuation runs through the engine, all prompts in one batch.
        let engine = try Engine.load(try Fixtures.defaultModelPath(), level: .fp16)
        let results = try engine.complete(reference.generate.map {
            GenerationRequest(prompt: $0.prompt_ids, maxTokens: $0.greedy_ids.count, sampling: .greedy)
        })
        var mismatches: [String] = []
        for (g, result) in zip(reference.generate, results) {
            // Logits of the last prompt position: same argmax, close values (llama.cpp rounds activations to F16).
            let cache = loaded.model.makeCache(capacity: 512)
            let logits = try loaded.model.forward(g.prompt_ids, cache: cache)
            let top = try XCTUnwrap(g.top_logits)
            XCTAssertEqual(Int(top[0][0]), Int(logits.withUnsafeBufferPointer { Sampler.argmax($0) }), "argmax of \(g.prompt)")
            for pair in top {
                XCTAssertEqual(logits[Int(pair[0])], Float(pair[1]), accuracy: 0.25, "logit \(Int(pair[0])) of \(g.prompt)")
            }
            if g.stopped_at_eos == true {
                // llama.cpp stopped at an end-of-generation token (kept last in greedy_ids): so must we, without emitting it.
                XCTAssertEqual(result.summary?.finishReason, .stop, "\(g.prompt) must stop at end of generation")
                XCTAssertEqual(result.tokens, Array(g.greedy_ids.dropLast()), "\(g.prompt)")
            }
            let half = g.greedy_ids.count / 2
            if Array(result.tokens.prefix(half)) != Array(g.greedy_ids.prefix(half)) {
                mismatches.append("\(g.prompt.debugDescription): got \(result.tokens), llama.cpp \(g.greedy_ids)")
            }
        }
        // The bar: the first half of every continuation but at most one.
        XCTAssertLessThanOrEqual(mismatches.count, 1, mismatches.joined(separator: "\n"))
    }
}
