import Foundation
import XCTest
@testable import QuantServe
import QuantServeJSON

/// JSON Schema as a grammar: what each schema feature lets through, byte by byte; features it cannot enforce are
/// refused by name; and the vocabulary walk from a schema state equals a token-by-token check.
final class JSONSchemaGrammarTests: XCTestCase {
    func grammar(_ schema: String) throws -> JSONSchemaGrammar {
        try JSONSchemaGrammar(schema: try JSONValue.parse(Array(schema.utf8)))
    }

    func complete(_ g: JSONSchemaGrammar, _ text: String) -> Bool {
        var a = SchemaAutomaton(g)
        return a.feed(Array(text.utf8)) && a.isComplete
    }

    func testEachFeatureLetsThroughWhatTheSchemaAllows() throws {
        let person = try grammar(#"""
            {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
             "score": {"type": "number"}, "ok": {"type": "boolean"}, "tags": {"type": "array", "items": {"type": "string"},
             "minItems": 1, "maxItems": 2}, "kind": {"enum": ["a", "b", 12, 1, null]}, "v": {"const": {"x": [1]}},
             "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}, {"type": "integer"}]},
             "nested": {"$ref": "#/$defs/n"}},
             "required": ["name"], "additionalProperties": false,
             "$defs": {"n": {"type": "object", "properties": {"child": {"anyOf": [{"$ref": "#/$defs/n"}, {"type": "null"}]}}}}}
            """#)
        let valid = #"{"name": "Ann \"A\" \u00e9", "age": -12, "score": 1.5e3, "ok": false, "tags": ["x", "y"], "kind": 12, "v": {"x":[1]}, "maybe": null, "nested": {"child": {"child": null}}}"#
        XCTAssertTrue(complete(person, valid))
        XCTAssertTrue(complete(person, valid.replacingOccurrences(of: #""kind": 12"#, with: #""kind": 1"#)))
        XCTAssertTrue(complete(person, valid.replacingOccurrences(of: #""maybe": null"#, with: #""maybe": 7"#)))
        let invalid = [
            valid.replacingOccurrences(of: #""age": -12"#, with: #""age": 1.5"#),          // integer
            valid.replacingOccurrences(of: #""ok": false"#, with: #""ok": 0"#),             // boolean
            valid.replacingOccurrences(of: #"["x", "y"]"#, with: #"["x", "y", "z"]"#),      // maxItems
            valid.replacingOccurrences(of: #"["x", "y"]"#, with: "[]"),                     // minItems
            valid.replacingOccurrences(of: #""kind": 12"#, with: #""kind": "c""#),          // enum
            valid.replacingOccurrences(of: #""kind": 12"#, with: #""kind": 123"#),          // enum prefix
            valid.replacingOccurrences(of: #"{"x":[1]}"#, with: #"{"x":[2]}"#),             // const
            valid.replacingOccurrences(of: #""maybe": null"#, with: #""maybe": true"#),     // anyOf
            valid.replacingOccurrences(of: #""name": "#, with: #""nom": "#),                // unknown key
            valid.replacingOccurrences(of: #""age": -12, "#, with: ""),                     // every property, in order
            valid.replacingOccurrences(of: #"{"child": null}"#, with: #"{"child": 3}"#),    // recursion
            valid + " ",
        ]
        for text in invalid { XCTAssertFalse(complete(person, text), text) }
        // Every valid text also satisfies the schema for a strict peer: Python's jsonschema package when present.
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(valid.utf8)))
    }

    func testFeaturesItCannotEnforceAreRefusedByName() {
        let cases: [(String, String)] = [
            (#"{"type": "object", "properties": {"a": {"type": "string", "pattern": "^a$"}}}"#, "'pattern' at schema.properties.a"),
            (#"{"type": "object", "properties": {"a": {"type": "integer", "minimum": 3}}}"#, "'minimum' at schema.properties.a"),
            (#"{"type": "object", "properties": {"a": {"type": "string", "minLength": 3}}}"#, "'minLength'"),
            (#"{"type": "object", "properties": {"a": {}}}"#, "'type' is missing at schema.properties.a"),
            (#"{"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"enum": ["x"]}]}}}"#, "'anyOf' at schema.properties.a"),
            (#"{"type": "object", "properties": {"a": {"$ref": "http://example.com/s"}}}"#, "'$ref' 'http://example.com/s'"),
            (#"{"type": "array", "items": {"type": "string"}}"#, "'type' at the top must be object"),
            (#"{"type": "object", "properties": {"a": {"type": "date"}}}"#, "'type' 'date'"),
            (#"{"type": "object", "required": ["b"], "properties": {"a": {"type": "string"}}}"#, "'required' at schema names 'b'"),
            (#"{"type": "object", "properties": {"a": {"type": "string", "format": "ipv4"}}}"#, "'format' 'ipv4'"),
            (#"{"type": "object", "patternProperties": {}}"#, "'patternProperties' at schema is not enforced"),
        ]
        for (schema, expected) in cases {
            XCTAssertThrowsError(try grammar(schema), schema) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(schema): \(error)")
            }
        }
    }

    func testTheVocabularyWalkFromASchemaStateEqualsATokenByTokenCheck() throws {
        let tokenizer = try makeTokenizer(vocabulary: try GGUFFile(path: try Fixtures.path("tiny-qwen2.gguf")).tokenizerVocabulary())
        let trie = VocabularyTrie(tokenizer: tokenizer)
        let g = try grammar(#"{"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}, "e": {"enum": ["red", "green"]}}}"#)
        for prefix in ["", "{", "{\"na", "{\"name\": \"Bo", "{\"name\": \"Bob\", \"n\": 4", "{\"name\": \"Bob\", \"n\": 4, \"e\": \"g"] {
            var state = SchemaAutomaton(g)
            XCTAssertTrue(state.feed(Array(prefix.utf8)), prefix)
            var allowed: [Bool] = []
            trie.allowedTokens(from: state, into: &allowed)
            let expected = (0..<tokenizer.vocabularySize).map { id -> Bool in
                let bytes = trie.bytesOf(Int32(id))
                var s = state
                return !bytes.isEmpty && s.feed(bytes)
            }
            XCTAssertEqual(allowed, expected, prefix)
            XCTAssertTrue(allowed.contains(true), prefix)
        }
    }
}
