import Foundation
import QuantServeLoad

/// `quantserve report`: a running server's report (`GET /v1/quantserve/report`) over a time window, per model and
/// level: requests, tokens, cost, cost per million tokens, response-cache and prefix-cache savings, router decisions
/// and shadow agreement, as text, JSON or Markdown.
struct ReportCommand: Command {
    static let name = "report"
    static let summary = "a running server's requests, cost, cache savings, routing and shadow agreement per model"
    static let options: [OptionSpec] = [
        OptionSpec(name: "url", valueName: "URL", help: "the server (default http://127.0.0.1:8080)"),
        OptionSpec(name: "window", valueName: "SECONDS", help: "the last SECONDS of traffic (default 3600; the server keeps 24 h)"),
        OptionSpec(name: "format", valueName: "FORMAT", help: "text, json or markdown (default text)"),
        OptionSpec(name: "api-key", valueName: "KEY", help: "the server's API key, when it needs one (default: $QUANTSERVE_API_KEY)"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let window = try arguments.double("window", range: 1...(86_400 * 366)) ?? 3600
        let format = arguments.string("format") ?? "text"
        guard ["text", "json", "markdown"].contains(format) else {
            throw UsageError("'--format' must be text, json or markdown, got '\(format)'")
        }
        let url = arguments.string("url") ?? "http://127.0.0.1:8080"
        var headers: [(String, String)] = []
        if let key = arguments.string("api-key") ?? ProcessInfo.processInfo.environment["QUANTSERVE_API_KEY"], !key.isEmpty {
            headers.append(("Authorization", "Bearer \(key)"))
        }
        let body: [UInt8], status: Int
        do {
            let endpoint = try HTTPEndpoint(url: url)
            let exchange = try HTTPExchange(endpoint: endpoint, method: "GET",
                                            path: "/v1/quantserve/report?window=\(Int(window))&format=\(format)",
                                            headers: headers, timeout: 30)
            body = try exchange.readWholeBody()
            status = exchange.status
        } catch {
            throw UsageError("cannot reach the server at \(url): \(error)")
        }
        let text = String(decoding: body, as: UTF8.self)
        guard status == 200 else { throw UsageError("the server answered \(status): \(text)") }
        FileHandle.standardOutput.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }
}
