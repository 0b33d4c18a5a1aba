import QuantServeJSON

/// One HTTP request, read whole (its body is at most the server's limit).
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path, without the query string.
    public var path: String
    /// Header values by lower-cased name (the last one, when repeated).
    public var headers: [String: String]
    public var body: [UInt8]
    /// Query-string arguments the routes read (`HTTPServer.queryNames`), decoded.
    public var query: [String: String] = [:]
    /// The declared or received body was over the server's limit; `body` is empty.
    public var bodyTooLarge = false

    public init(method: String, path: String, headers: [String: String] = [:], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// What a handler answers: a whole body, or a stream whose bytes come later (server-sent events).
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        case full([UInt8])
        case stream(ResponseChannel)
    }

    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Body

    public init(status: Int, headers: [(name: String, value: String)] = [], body: Body = .full([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json(_ status: Int, _ value: JSONValue, headers: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: .full(value.bytes))
    }

    public static func text(_ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", contentType)], body: .full(Array(text.utf8)))
    }

    public static func eventStream(_ channel: ResponseChannel) -> HTTPResponse {
        HTTPResponse(status: 200, headers: [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")],
                     body: .stream(channel))
    }
}
