import Foundation
import XCTest
@testable import QuantServe

/// Structured output's JSON mode: the byte automaton accepts exactly JSON objects (checked against Foundation's
/// parser), the vocabulary walk allows exactly the tokens a token-by-token check allows, and its cost on the default
/// model's 151k-token vocabulary is measured.
final class JSONConstraintTests: XCTestCase {
    func accepts(_ text: String) -> (Bool, Bool) {
        var a = JSONAutomaton()
        return (a.feed(Array(text.utf8)), a.isComplete)
    }

    /// Whether Python's json module (strict: no trailing commas, no NaN) parses each text.
    func strictPeerParses(_ texts: [String]) throws -> [Bool] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", """
            import json, sys
            def ok(t):
                try:
                    json.loads(t, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
                    return True
                except ValueError:
                    return False
            print(json.dumps([ok(t) for t in json.load(sys.stdin)]))
            """]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: texts))
        input.fileHandleForWriting.closeFile()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [Bool])
    }

    func testTheAutomatonAcceptsJSONObjectsAndNothingElse() throws {
        let valid = [#"{}"#, #"{"a": 1}"#, #"{"a":[1,2.5,-3e+2,0,0.0,1E5],"b":{"c":null,"d":true,"e":false}}"#,
                     "{\n  \"k\": \"v\\n\\\"q\\\" \\u00e9 é 猫\",\n  \"n\": [ [], {}, [[{}]] ]\n}",
                     #"{"x": -0.5e-3, "y": ""}"#]
        for text in valid {
            XCTAssertEqual(accepts(text).0, true, text)
            XCTAssertEqual(accepts(text).1, true, text)
        }
        // Not JSON at all (Python's strict parser agrees), or JSON that JSON mode never starts (an array, leading
        // whitespace).
        let invalid = [#"{"a" 1}"#, #"{"a": 01}"#, #"{"a": 1.}"#, #"{"a": .5}"#, #"{"a": tru}"#,
                       #"{"a": 1,}"#, #"{,}"#, #"{"a": "\x"}"#, #"{"a": "\u12G4"}"#, "{\"a\": \"line\nbreak\"}",
                       #"{"a": [1 2]}"#, #"{"a": 1}}"#, #"{"a": 1} x"#, #"{'a': 1}"#, #"{"a": -}"#, #"{"a": 1e}"#,
                       #"{"a": NaN}"#, #"{a: 1}"#, #"{"a": [}"#]
        for text in invalid + [#"[]"#, #" {}"#] {
            let (ok, complete) = accepts(text)
            XCTAssertFalse(ok && complete, text)
        }
        XCTAssertEqual(try strictPeerParses(valid), valid.map { _ in true })
        XCTAssertEqual(try strictPeerParses(invalid), invalid.map { _ in false })
        // Prefixes of valid objects are accepted but not complete.
        XCTAssertEqual(accepts(#"{"a": [1, {"b": "#).0, true)
        XCTAssertEqual(accepts(#"{"a": [1, {"b": "#).1, false)
        // A number is complete only when something ends it.
        XCTAssertEqual(accepts(#"{"a": 12"#).1, false)
        // Bounds: whitespace runs and nesting depth.
        XCTAssertFalse(accepts("{" + String(repeating: " ", count: JSONAutomaton.maxWhitespaceRun + 1)).0)
        XCTAssertTrue(accepts("{" + String(repeating: " ", count: JSONAutomaton.maxWhitespaceRun)).0)
        XCTAssertTrue(accepts("{\"a\":" + String(repeating: "[", count: JSONAutomaton.maxDepth - 1)).0)
        XCTAssertFalse(accepts("{\"a\":" + String(repeating: "[", count: JSONAutomaton.maxDepth)).0)
    }

    /// The walk over the trie gives, from several states, the same set as feeding every token's bytes one by one.
    func testTheVocabularyWalkAllowsExactlyTheTokensThatContinue() throws {
        let tokenizer = try makeTokenizer(vocabulary: try GGUFFile(path: try Fixtures.path("tiny-qwen2.gguf")).tokenizerVocabulary())
        let trie = VocabularyTrie(tokenizer: tokenizer)
        for prefix in ["", "{", "{\"ke", "{\"key\"", "{\"key\": ", "{\"key\": 12", "{\"key\": \"va\\", "{\"a\": [1, ", "{\"a\": tr",
                       "{\"a\": {}}"] {
            var state = JSONAutomaton()
            XCTAssertTrue(state.feed(Array(prefix.utf8)), prefix)
            var allowed: [Bool] = []
            trie.allowedTokens(from: state, into: &allowed)
            var expected = Array(repeating: false, count: tokenizer.vocabularySize)
            if state.isComplete {
                for id in tokenizer.endOfGenerationIDs { expected[Int(id)] = true }
            } else {
                for id in 0..<tokenizer.vocabularySize {
                    let bytes = trie.bytesOf(Int32(id))
                    var s = state
                    expected[id] = !bytes.isEmpty && s.feed(bytes)
                }
            }
            XCTAssertEqual(allowed, expected, "after \(prefix)")
            XCTAssertTrue(allowed.contains(true), prefix)
        }
    }

    /// A constraint masks, accepts, and once the object is complete allows only the end of generation.
    func testTheConstraintMasksAndEnds() throws {
        let tokenizer = try makeTokenizer(vocabulary: try GGUFFile(path: try Fixtures.path("tiny-qwen2.gguf")).tokenizerVocabulary())
        var c = JSONObjectConstraint(trie: VocabularyTrie(tokenizer: tokenizer), automaton: JSONAutomaton())
        var logits = [Float](repeating: 0, count: tokenizer.vocabularySize)
        logits.withUnsafeMutableBufferPointer { c.mask($0) }
        let open = tokenizer.encode("{", addSpecial: false, parseSpecial: false)
        XCTAssertEqual(open.count, 1)
        XCTAssertEqual(logits[Int(open[0])], 0)
        XCTAssertEqual(logits.filter { $0 == 0 }.count, (0..<tokenizer.vocabularySize).filter { trie(c).bytesOf(Int32($0)).first == UInt8(ascii: "{") }.count)
        for t in tokenizer.encode("{\"a\": [1, 2]}", addSpecial: false, parseSpecial: false) { c.accept(t) }
        XCTAssertTrue(c.automaton.isComplete)
        logits = [Float](repeating: 0, count: tokenizer.vocabularySize)
        logits.withUnsafeMutableBufferPointer { c.mask($0) }
        XCTAssertEqual(Set(logits.indices.filter { logits[$0] == 0 }.map { Int32($0) }), tokenizer.endOfGenerationIDs)
    }

    func trie(_ c: JSONObjectConstraint) -> VocabularyTrie { c.trie }

    /// The mask's cost on the default model's vocabulary: the nodes one walk visits in the states that cost most
    /// (inside a string nearly every token continues) and least, and the mean time of a step over a JSON answer,
    /// measured inside the engine's module (called from here, the generic walk would run unspecialised, ~10x slower).
    func testTheMaskCostOnTheDefaultModelsVocabulary() throws {
        let (_, tokenizer) = try ModelLoader.tokenizer(path: try Fixtures.defaultModelPath())
        let trie = VocabularyTrie(tokenizer: tokenizer)
        var report: [String] = []
        for prefix in ["{", "{\"name\": \"Fluffy the ", "{\"age\": 1", "{\"a\": [1, 2]"] {
            var state = JSONAutomaton()
            XCTAssertTrue(state.feed(Array(prefix.utf8)))
            var allowed: [Bool] = []
            let visited = trie.allowedTokens(from: state, into: &allowed)
            report.append("\(prefix): \(visited) nodes, \(allowed.filter { $0 }.count) tokens allowed")
        }
        let ms = ConstraintBenchmark.jsonMaskMilliseconds(tokenizer: tokenizer)
        print("JSON mask on \(tokenizer.vocabularySize) tokens (\(trie.nodeCount) trie nodes): "
              + String(format: "%.3f ms a step; ", ms) + report.joined(separator: "; "))
    }
}
