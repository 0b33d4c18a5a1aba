import Foundation
import XCTest
@testable import QuantServe
@testable import QuantServeHTTP
import QuantServeJSON

/// `serve --config FILE`: the example file reads as documented, and every mistake is an error that says where.
final class ServerConfigTests: XCTestCase {
    let tiny = TestServer.tinyModel

    func parse(_ json: String) throws -> ServerConfig { try ServerConfig.parse(Array(json.utf8)) }

    func testTheExampleFileReads() throws {
        _ = try TestServer.defaultModel()
        setenv("QUANTSERVE_KEY_WEB", "sk-web", 1)
        setenv("QUANTSERVE_KEY_BATCH", "sk-batch", 1)
        let config = try ServerConfig.load(path: TestServer.repositoryRoot.appendingPathComponent("examples/serve-config.json").path)
        XCTAssertEqual(config.targets.map(\.name), ["qwen2.5-coder-0.5b:int8", "qwen2.5-coder-0.5b:int4"])
        XCTAssertEqual(config.targets[0].engine["ctx-size"], "4096")
        XCTAssertTrue(FileManager.default.fileExists(atPath: config.targets[0].path))
        XCTAssertEqual(config.routers.map(\.name), ["auto"])
        XCTAssertEqual(config.routers[0].rules.map(\.name), ["long", "deep", "hard", "easy", "short"])
        XCTAssertEqual(config.apiKeys.map(\.name), ["web-team", "batch-jobs"])
        XCTAssertEqual(config.apiKeys[0].key, "sk-web")
        XCTAssertEqual(config.apiKeys[0].tokenBudget, 2_000_000)
        XCTAssertNil(config.apiKeys[1].tokenBudget)
        XCTAssertEqual(config.history, ServerConfig.HistoryPolicy(maxPromptTokens: 3072, byDefault: false))
        XCTAssertEqual(config.responseCacheEntries, 1024)
        XCTAssertEqual(config.shadows, [ServerConfig.Shadow(from: "qwen2.5-coder-0.5b:int8", to: "qwen2.5-coder-0.5b:int4",
                                                            rate: 0.05, tokens: 16)])
        XCTAssertEqual(config.usdPerHour, 0.10)
    }

    func testDefaultsAndTheImplicitRouter() throws {
        let one = try parse(#"{"models": [{"path": "\#(tiny)"}]}"#)
        XCTAssertEqual(one.targets.map(\.name), ["tiny-qwen2"])
        XCTAssertNil(one.targets[0].level)
        XCTAssertTrue(one.effectiveRouters.isEmpty)
        XCTAssertEqual(one.responseCacheEntries, 0)
        let two = try parse(#"{"models": [{"name": "t", "path": "\#(tiny)", "levels": ["int8", "int4"]}], "shadow": [{"from": "t:int8", "to": "t:int4"}]}"#)
        XCTAssertEqual(two.targets.map(\.name), ["t:int8", "t:int4"])
        XCTAssertEqual(two.effectiveRouters.map(\.name), ["auto"])
        XCTAssertEqual(two.effectiveRouters[0].ladder, ["t:int8", "t:int4"])
        XCTAssertEqual(two.effectiveRouters[0].rules, RouterRule.defaults)
        XCTAssertEqual(two.shadows[0].rate, 0.1)
        XCTAssertEqual(two.shadows[0].tokens, 16)
    }

    func testMistakesSayWhereTheyAre() {
        let cases: [(String, String)] = [
            ("{", "not valid JSON"),
            (#"[]"#, "config must be an object"),
            (#"{"models": []}"#, "list at least one model"),
            (#"{"model": []}"#, "unknown key 'model'"),
            (#"{"models": [{"path": "/no/such/file.gguf"}]}"#, "models[0].path: no model at '/no/such/file.gguf'"),
            (#"{"models": [{"path": "\#(tiny)", "levels": ["int3"]}]}"#, "models[0].levels[0]: not a level"),
            (#"{"models": [{"path": "\#(tiny)", "levels": ["int8", "int8"]}]}"#, "lists 'int8' twice"),
            (#"{"models": [{"path": "\#(tiny)", "engine": {"thread": 2}}]}"#, "models[0].engine: unknown key 'thread'"),
            (#"{"models": [{"path": "\#(tiny)", "engine": {"threads": true}}]}"#, "models[0].engine.threads must be a string or an integer"),
            (#"{"models": [{"path": "\#(tiny)"}, {"path": "\#(tiny)"}]}"#, "two served models are named 'tiny-qwen2'"),
            (#"{"models": [{"name": "a:b", "path": "\#(tiny)"}]}"#, "models[0].name must be non-empty and without ':'"),
            (#"{"models": [{"path": "\#(tiny)"}], "routers": [{"ladder": ["nope"]}]}"#, "routers[0].ladder[0] must be a served name"),
            (#"{"models": [{"path": "\#(tiny)"}], "routers": [{"ladder": []}]}"#, "routers[0].ladder is empty"),
            (#"{"models": [{"path": "\#(tiny)"}], "routers": [{"name": "tiny-qwen2", "ladder": ["tiny-qwen2"]}]}"#, "has a served model's name"),
            (#"{"models": [{"path": "\#(tiny)"}], "routers": [{"ladder": ["tiny-qwen2"], "rules": [{"name": "r", "target": "middle"}]}]}"#,
             "routers[0].rules[0].target must be 'top', 'bottom' or a name on the ladder"),
            (#"{"models": [{"path": "\#(tiny)"}], "routers": [{"ladder": ["tiny-qwen2"], "rules": [{"target": "top"}]}]}"#,
             "routers[0].rules[0].name is required"),
            (#"{"models": [{"path": "\#(tiny)"}], "routers": [{"ladder": ["tiny-qwen2"], "rules": [{"name": "r", "target": "top", "min_chars": -1}]}]}"#,
             "routers[0].rules[0].min_chars must be an integer"),
            (#"{"models": [{"path": "\#(tiny)"}], "api_keys": [{"name": "a"}]}"#, "api_keys[0]: 'key' (or 'key_env') is required"),
            (#"{"models": [{"path": "\#(tiny)"}], "api_keys": [{"name": "a", "key_env": "QUANTSERVE_NO_SUCH_VARIABLE"}]}"#,
             "the environment variable 'QUANTSERVE_NO_SUCH_VARIABLE' is not set"),
            (#"{"models": [{"path": "\#(tiny)"}], "api_keys": [{"name": "a", "key": "k", "token_budget": 0}]}"#,
             "api_keys[0].token_budget must be an integer"),
            (#"{"models": [{"path": "\#(tiny)"}], "api_keys": [{"name": "a", "key": "k"}, {"name": "b", "key": "k"}]}"#,
             "two API keys are the same key"),
            (#"{"models": [{"path": "\#(tiny)"}], "api_keys": [{"name": "a b", "key": "k"}]}"#, "api_keys[0].name must be printable"),
            (#"{"models": [{"path": "\#(tiny)"}], "history": {"max_prompt_tokens": 0}}"#, "history.max_prompt_tokens must be an integer"),
            (#"{"models": [{"path": "\#(tiny)"}], "response_cache": {}}"#, "response_cache.max_entries is required"),
            (#"{"models": [{"name": "t", "path": "\#(tiny)", "levels": ["int8", "int4"]}], "shadow": [{"from": "t:int8", "to": "t:fp16"}]}"#,
             "shadow[0].to: no served model 't:fp16'"),
            (#"{"models": [{"name": "t", "path": "\#(tiny)", "levels": ["int8", "int4"]}], "shadow": [{"from": "t:int8", "to": "t:int4", "rate": 2}]}"#,
             "shadow[0].rate must be a number in 0.0...1.0"),
            (#"{"models": [{"name": "t", "path": "\#(tiny)", "levels": ["int8"]}, {"name": "u", "path": "\#(TestServer.repositoryRoot.path)/Tests/QuantServeTests/Fixtures/tiny-llama.gguf", "levels": ["int8"]}], "shadow": [{"from": "t:int8", "to": "u:int8"}]}"#,
             "'from' and 'to' must be two levels of one model"),
            (#"{"models": [{"path": "\#(tiny)"}], "usd_per_hour": -1}"#, "usd_per_hour must be a number"),
        ]
        for (json, expected) in cases {
            XCTAssertThrowsError(try parse(json), json) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(json): \(error)")
            }
        }
    }

    /// Declared rules: the first that matches decides, its name is the reason; no match goes to the ladder's top.
    func testDeclaredRulesDecideInOrder() throws {
        let a = ServedModel(name: "m:fp16", path: "/m"), b = ServedModel(name: "m:int8", path: "/m"),
            c = ServedModel(name: "m:int4", path: "/m")
        let rules = [RouterRule(name: "code", anyWords: ["def ", "func "], target: .named("m:int8")),
                     RouterRule(name: "chatty", maxChars: 100, minMessages: 3, target: .bottom),
                     RouterRule(name: "long", minChars: 50, target: .top)]
        let router = ModelRouter(name: "cheap", ladder: [a, b, c], rules: rules, maxWaitSeconds: 1)
        let idle: (ServedModel) -> Double = { _ in 0 }
        func route(_ json: String) throws -> (String, String) {
            let d = router.route(try JSONValue.parse(Array(json.utf8)), expectedWait: idle)
            return (d.target.name, d.reason)
        }
        XCTAssertEqual(try route(#"{"prompt": "DEF f(x): return x"}"#).0, "m:int8")
        XCTAssertEqual(try route(#"{"prompt": "def f(x): return x"}"#).1, "rule_code")
        let chat = #"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "ok"}]}"#
        XCTAssertEqual(try route(chat).0, "m:int4")
        XCTAssertEqual(try route(chat).1, "rule_chatty")
        XCTAssertEqual(try route(#"{"prompt": "\#(String(repeating: "x", count: 60))"}"#).1, "rule_long")
        XCTAssertEqual(try route(#"{"prompt": "short"}"#).0, "m:fp16")
        XCTAssertEqual(try route(#"{"prompt": "short"}"#).1, "default")
        // Under load a named target steps down from its own place on the ladder.
        let d = router.route(try JSONValue.parse(Array(#"{"prompt": "func f() {}"}"#.utf8)),
                             expectedWait: { $0 === b ? 5 : 0 })
        XCTAssertEqual(d.target.name, "m:int4")
        XCTAssertEqual(d.reason, "load")
        XCTAssertTrue(router.renderDecisions().contains(#"quantserve:router_decisions_total{router="cheap",target="m:int4",reason="rule_chatty"} 2"#))
    }
}
