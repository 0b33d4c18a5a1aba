import Foundation
import QuantServeJSON

/// The OpenAI-compatible calls `bench serve` makes, on any server (QuantServe, llama-server, vLLM).
public struct ServeClient: Sendable {
    public var endpoint: HTTPEndpoint
    public var apiKey: String?
    public var timeout: Double

    public init(endpoint: HTTPEndpoint, apiKey: String? = nil, timeout: Double = 600) {
        self.endpoint = endpoint
        self.apiKey = apiKey
        self.timeout = timeout
    }

    var headers: [(String, String)] {
        [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")]
            + (apiKey.map { [("Authorization", "Bearer \($0)")] } ?? [])
    }

    /// One request answered with JSON; throws `ServeError.status` for an answer other than 200.
    func call(_ method: String, _ path: String, _ body: JSONValue?) throws -> JSONValue {
        let exchange = try HTTPExchange(endpoint: endpoint, method: method, path: path, headers: headers,
                                        body: body.map { Array($0.serialized.utf8) } ?? [], timeout: timeout)
        let bytes = try exchange.readWholeBody()
        guard exchange.status == 200 else { throw ServeError.status(exchange.status, ServeError.summary(bytes)) }
        do { return try JSONValue.parse(bytes) } catch { throw ServeError.protocolError("\(path): \(error)") }
    }

    /// The first model `/v1/models` lists.
    public func firstModel() throws -> String {
        guard let id = try call("GET", "/v1/models", nil)["data"]?.array?.first?["id"]?.string else {
            throw ServeError.protocolError("/v1/models lists no model")
        }
        return id
    }

    /// Token ids of `text` (no special tokens added): `/tokenize` in QuantServe's and vLLM's shape (`prompt`) and
    /// llama-server's (`content`), both fields sent.
    public func tokenize(_ text: String, model: String? = nil) throws -> [Int] {
        var body: [(key: String, value: JSONValue)] = [("prompt", .string(text)), ("content", .string(text)),
                                                       ("add_special_tokens", false), ("add_special", false)]
        if let model { body.append(("model", .string(model))) }
        guard let tokens = try call("POST", "/tokenize", .object(body))["tokens"]?.array else {
            throw ServeError.protocolError("/tokenize returned no 'tokens'")
        }
        // llama-server may answer pieces ({"id": n, "piece": ...}) when asked; plain ids otherwise.
        return try tokens.map { t in
            guard let id = t.int ?? t["id"]?.int else { throw ServeError.protocolError("/tokenize returned a non-id token") }
            return id
        }
    }

    /// The text of token ids: `/detokenize` answering `prompt` (QuantServe, vLLM) or `content` (llama-server).
    public func detokenize(_ ids: [Int], model: String? = nil) throws -> String {
        var body: [(key: String, value: JSONValue)] = [("tokens", .array(ids.map { JSONValue($0) }))]
        if let model { body.append(("model", .string(model))) }
        let answer = try call("POST", "/detokenize", .object(body))
        guard let text = answer["prompt"]?.string ?? answer["content"]?.string else {
            throw ServeError.protocolError("/detokenize returned no text")
        }
        return text
    }
}

public enum ServeError: Error, CustomStringConvertible, Equatable {
    case status(Int, String)
    case protocolError(String)

    public var description: String {
        switch self {
        case .status(let code, let message): "HTTP \(code): \(message)"
        case .protocolError(let what): "unexpected answer: \(what)"
        }
    }

    /// An error body's message (OpenAI's `error.message`, else its first 200 bytes).
    static func summary(_ body: [UInt8]) -> String {
        if let value = try? JSONValue.parse(body) {
            let error: JSONValue? = value["error"]
            if let message = error?["message"]?.string { return message }
            if let message = error?.string { return message }
            if let message = value["message"]?.string { return message }
        }
        return String(decoding: body.prefix(200), as: UTF8.self)
    }
}
