import Foundation
import XCTest

/// Paths and JSON of the test fixtures (made by models/make_fixtures.py from llama.cpp) and of the fetched models.
enum Fixtures {
    static func path(_ name: String) throws -> String {
        guard let url = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil) else {
            throw XCTSkip("fixture \(name) is missing: run models/make_fixtures.py")
        }
        return url.path
    }

    static func json<T: Decodable>(_ name: String, as _: T.Type = T.self) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: URL(fileURLWithPath: path(name))))
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The default model, fetched by `make test` (models/fetch). Its absence fails the test: CI must run it.
    static func defaultModelPath() throws -> String {
        try fetchedModelPath("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", name: "the default model", fetch: "models/fetch")
    }

    /// A model `make test` fetches into models/; its absence fails the test.
    static func fetchedModelPath(_ file: String, name: String, fetch: String) throws -> String {
        let path = repositoryRoot.appendingPathComponent("models/\(file)").path
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("\(name) is missing at \(path): run \(fetch) (make test does)")
            throw XCTSkip("\(name) missing")
        }
        return path
    }
}

/// `{"text", "add_special", "parse_special", "ids"}`: llama.cpp's tokenization of one string.
struct TokenizeCase: Decodable {
    let text: String
    let add_special: Bool
    let parse_special: Bool
    let ids: [Int32]
}

/// llama.cpp's greedy continuation (and logits) of one prompt.
struct GenerateCase: Decodable {
    let prompt: String
    let prompt_ids: [Int32]
    /// Whether the prompt was tokenized with special-token parsing.
    let parse_special: Bool?
    let greedy_ids: [Int32]
    let greedy_text: String?
    /// llama.cpp's gap between the best and second-best logit at each greedy step.
    let greedy_margins: [Float]?
    /// Whether llama.cpp's greedy run ended at an end-of-generation token (the real model).
    let stopped_at_eos: Bool?
    /// Every prompt position's full logits (tiny models).
    let logits: [[Float]]?
    /// `[id, logit]` pairs of the last prompt position (the real model).
    let top_logits: [[Double]]?
}

struct ModelReference: Decodable {
    let model: String
    let tokenize: [TokenizeCase]
    let generate: [GenerateCase]
}
