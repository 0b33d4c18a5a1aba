import Foundation
import XCTest
@testable import QuantServe
@testable import QuantServeHTTP
import QuantServeJSON

/// `"model": "auto"`: the default rules pick the ladder's top for hard work and its bottom for easy work, and a
/// target whose expected queue wait passes the bound sends the request down the ladder.
final class RouterTests: XCTestCase {
    let int8 = ServedModel(name: "m:int8", path: "/m"), int4 = ServedModel(name: "m:int4", path: "/m")

    func request(_ json: String) throws -> JSONValue { try JSONValue.parse(Array(json.utf8)) }

    func testRulesSendHardWorkUpAndEasyWorkDown() throws {
        let router = ModelRouter(ladder: [int8, int4])
        let idle: (ServedModel) -> Double = { _ in 0 }
        let cases: [(String, String, String)] = [
            (#"{"prompt": "Debug this: Traceback (most recent call last): ZeroDivisionError"}"#, "m:int8", "rule_hard"),
            (#"{"messages": [{"role": "user", "content": "Prove that the square root of 2 is irrational."}]}"#, "m:int8", "rule_hard"),
            (#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "Translate 'good morning' into French."}]}]}"#, "m:int4", "rule_easy"),
            (#"{"prompt": "What is 2 + 2?"}"#, "m:int4", "rule_easy"),
            (#"{"prompt": "\#(String(repeating: "Tell me about the history of tea. ", count: 8))"}"#, "m:int8", "default"),
            (#"{"prompt": "\#(String(repeating: "word ", count: 900))"}"#, "m:int8", "rule_hard"),
        ]
        for (json, target, reason) in cases {
            let d = router.route(try request(json), expectedWait: idle)
            XCTAssertEqual(d.target.name, target, json)
            XCTAssertEqual(d.reason, reason, json)
        }
        let deep = "[" + (0..<8).map { _ in #"{"role": "user", "content": "ok"}"# }.joined(separator: ",") + "]"
        XCTAssertEqual(router.route(try request(#"{"messages": \#(deep)}"#), expectedWait: idle).reason, "rule_hard")
    }

    func testLoadStepsDownTheLadder() throws {
        let router = ModelRouter(ladder: [int8, int4], maxWaitSeconds: 1)
        let hard = try request(#"{"prompt": "Optimize this algorithm's complexity."}"#)
        // int8's queue would hold the request 5 s: int4, idle, takes it.
        var d = router.route(hard, expectedWait: { $0 === self.int8 ? 5 : 0 })
        XCTAssertEqual(d.target.name, "m:int4")
        XCTAssertEqual(d.reason, "load")
        // Both busy: it stays where the rules put it.
        d = router.route(hard, expectedWait: { _ in 5 })
        XCTAssertEqual(d.target.name, "m:int8")
        XCTAssertEqual(d.reason, "rule_hard")
        // Within the bound: no step down.
        d = router.route(hard, expectedWait: { $0 === self.int8 ? 0.5 : 0 })
        XCTAssertEqual(d.target.name, "m:int8")
        let text = router.renderDecisions()
        XCTAssertTrue(text.contains(#"quantserve:router_decisions_total{router="auto",target="m:int4",reason="load"} 1"#), text)
        XCTAssertTrue(text.contains(#"quantserve:router_decisions_total{router="auto",target="m:int8",reason="rule_hard"} 2"#), text)
    }

    /// No engine (not loaded): never a target under load; a ready engine with nothing waiting: no wait.
    func testExpectedWaitOfAModelThatIsNotReadyIsUnbounded() {
        XCTAssertEqual(ModelRouter.expectedWait(int8, meanSeconds: 1), .infinity)
    }
}
