import QuantServe
import QuantServeJSON

/// An error as OpenAI's API returns it: `{"error": {"message", "type", "param", "code"}}` with an HTTP status.
public struct APIError: Error, Equatable, CustomStringConvertible {
    public var status: Int
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Extra response headers (`Retry-After`).
    public var headers: [String: String] = [:]

    public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    public var description: String { "\(status) \(type): \(message)" }

    /// 400: the request is wrong; `param` names the field.
    public static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, type: "invalid_request_error", param: param, code: code)
    }

    public static func wrongType(_ param: String, expected: String, got value: JSONValue) -> APIError {
        .invalid("'\(param)' must be \(expected), got \(value.kind)", param: param, code: "invalid_type")
    }

    public static func outOfRange(_ param: String, _ range: String, got: String) -> APIError {
        .invalid("'\(param)' must be \(range), got \(got)", param: param, code: "invalid_value")
    }

    public static func unsupported(_ param: String, _ what: String) -> APIError {
        .invalid("'\(param)' is not supported: \(what)", param: param, code: "unsupported_parameter")
    }

    public static let unauthorized = APIError(
        status: 401, message: "invalid or missing API key (send 'Authorization: Bearer KEY')",
        type: "authentication_error", code: "invalid_api_key")

    public static func notFound(_ path: String) -> APIError {
        APIError(status: 404, message: "no route for '\(path)'", type: "not_found_error", code: "not_found")
    }

    public static func modelNotFound(_ name: String, served: [String]) -> APIError {
        APIError(status: 404, message: "the model '\(name)' does not exist; served: \(served.joined(separator: ", "))",
                 type: "not_found_error", param: "model", code: "model_not_found")
    }

    public static func methodNotAllowed(_ method: String, _ path: String, allowed: [String]) -> APIError {
        var e = APIError(status: 405, message: "'\(path)' does not accept \(method); use \(allowed.joined(separator: ", "))",
                         type: "invalid_request_error", code: "method_not_allowed")
        e.headers["Allow"] = allowed.joined(separator: ", ")
        return e
    }

    public static func bodyTooLarge(limit: Int) -> APIError {
        APIError(status: 413, message: "the request body is over the limit of \(limit) bytes",
                 type: "invalid_request_error", code: "request_too_large")
    }

    public static func queueFull(limit: Int) -> APIError {
        var e = APIError(status: 429, message: "the server is busy: \(limit) requests are already waiting; retry later",
                         type: "rate_limit_error", code: "queue_full")
        e.headers["Retry-After"] = "1"
        return e
    }

    public static let loading = APIError(status: 503, message: "the model is still loading; retry later",
                                         type: "service_unavailable_error", code: "model_loading")

    public static let shuttingDown = APIError(status: 503, message: "the server is shutting down",
                                              type: "service_unavailable_error", code: "shutting_down")

    public static func internalError(_ message: String) -> APIError {
        APIError(status: 500, message: message, type: "internal_server_error", code: "internal_error")
    }

    public static func contextLengthExceeded(promptTokens: Int, requested: Int?, contextSize: Int) -> APIError {
        let message: String
        if let requested {
            message = "This model's maximum context length is \(contextSize) tokens. However, you requested "
                + "\(promptTokens + requested) tokens (\(promptTokens) in the prompt, \(requested) in the completion). "
                + "Please reduce the prompt or the completion length."
        } else {
            message = "This model's maximum context length is \(contextSize) tokens. However, your prompt has "
                + "\(promptTokens) tokens. Please reduce the length of the prompt."
        }
        return .invalid(message, param: "messages", code: "context_length_exceeded")
    }

    /// The engine's refusal of a request, as the client should see it.
    public static func from(_ error: EngineError, param: String) -> APIError {
        switch error {
        case .invalidRequest(let m): .invalid(m, param: param)
        case .promptTooLong(let tokens, let context):
            contextLengthExceeded(promptTokens: tokens, requested: nil, contextSize: context)
        // The server's KV pool (--kv-blocks / --kv-cache-mb) is smaller than this request needs: a limit of this
        // server, not a malformed request.
        case .exceedsCache: APIError(status: 503, message: error.description, type: "service_unavailable_error",
                                     param: "max_tokens", code: "kv_cache_full")
        case .queueFull(let limit): queueFull(limit: limit)
        case .shutDown: shuttingDown
        case .internalError(let m): internalError(m)
        }
    }

    public var json: JSONValue {
        let param: JSONValue = param.map { .string($0) } ?? .null
        let code: JSONValue = code.map { .string($0) } ?? .null
        let error: JSONValue = ["message": .string(message), "type": .string(type), "param": param, "code": code]
        return ["error": error]
    }

    public var response: HTTPResponse {
        .json(status, json, headers: headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) })
    }
}
