import Foundation
import XCTest
@testable import QuantServe
@testable import QuantServeHTTP
import QuantServeJSON

/// The page's files: served from the resource bundle with their types, a Content-Security-Policy on the HTML, an
/// ETag that turns a revalidation into a 304, open without the API key (the page asks for it); and the saved bench
/// result for the cost explorer. The page's behaviour is checked in a real browser (Tests/web).
final class WebPageTests: XCTestCase {
    func testTheFilesAreServedWithTypesPolicyAndValidators() throws {
        let server = try TestServer(apiKey: "k")
        defer { server.stop() }
        let page = try server.request("GET", "/")
        XCTAssertEqual(page.status, 200)
        XCTAssertEqual(page.headers["content-type"], "text/html; charset=utf-8")
        let csp = try XCTUnwrap(page.headers["content-security-policy"])
        XCTAssertTrue(csp.contains("script-src 'self'") && csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), csp)
        XCTAssertFalse(csp.contains("unsafe-inline"))
        XCTAssertEqual(page.headers["x-content-type-options"], "nosniff")
        XCTAssertTrue(page.text.contains("<script src=\"/ui/app.js\" defer></script>"))
        XCTAssertFalse(page.text.contains("<script>"), "no inline script")
        XCTAssertFalse(page.text.contains("style=\""), "no inline style")
        // Every script and style the page names is served with its type.
        let referenced = page.text.matches(of: /(?:src|href)="(\/ui\/[a-z]+\.(?:js|css))"/).map { String($0.output.1) }
        XCTAssertEqual(referenced.count, 8)
        for path in referenced {
            let r = try server.request("GET", path)
            XCTAssertEqual(r.status, 200, path)
            XCTAssertEqual(r.headers["content-type"], path.hasSuffix(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8")
            XCTAssertFalse(r.body.isEmpty)
        }
        let etag = try XCTUnwrap(page.headers["etag"])
        XCTAssertEqual(page.headers["cache-control"], "no-cache")
        let again = try server.request("GET", "/", headers: ["If-None-Match": etag])
        XCTAssertEqual(again.status, 304)
        XCTAssertTrue(again.body.isEmpty)
        XCTAssertEqual(try server.request("GET", "/", headers: ["If-None-Match": "\"other\""]).status, 200)
        XCTAssertEqual(try server.request("GET", "/ui/nope.js").status, 404)
        XCTAssertEqual(try server.request("POST", "/", json: "{}").status, 405)
    }

    func testTheBenchResultsRoute() throws {
        let none = try TestServer()
        defer { none.stop() }
        let missing = try none.request("GET", "/v1/quantserve/bench-results")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.error?["code"] as? String, "no_bench_results")
        XCTAssertTrue((missing.error?["message"] as? String ?? "").contains("--save-result"))

        let saved = try Data(contentsOf: TestServer.repositoryRoot.appendingPathComponent("Benchmarks/results/latest.json"))
        let results = try JSONValue.parse(Array(saved))
        let server = try TestServer(apiKey: "k") { $0.benchResults = results }
        defer { server.stop() }
        XCTAssertEqual(try server.request("GET", "/v1/quantserve/bench-results").status, 401)
        let r = try server.request("GET", "/v1/quantserve/bench-results", headers: ["Authorization": "Bearer k"])
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual((r.json as? [[String: Any]])?.count, results.array?.count)
    }
}
