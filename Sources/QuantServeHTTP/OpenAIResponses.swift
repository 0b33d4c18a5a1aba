import QuantServe
import QuantServeJSON

/// The JSON of OpenAI's completion and chat completion objects and chunks.
enum APIKind: Sendable {
    case completion
    case chat

    var objectName: String { self == .completion ? "text_completion" : "chat.completion" }
    var chunkObjectName: String { self == .completion ? "text_completion" : "chat.completion.chunk" }
    var idPrefix: String { self == .completion ? "cmpl-" : "chatcmpl-" }
}

struct ResponseHeader: Sendable {
    let kind: APIKind
    let id: String
    let created: Int
    let model: String

    func object(_ choices: [JSONValue], chunk: Bool, usage: JSONValue? = nil) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("id", .string(id)), ("object", .string(chunk ? kind.chunkObjectName : kind.objectName)),
            ("created", JSONValue(created)), ("model", .string(model)), ("choices", .array(choices)),
        ]
        if let usage { members.append(("usage", usage)) }
        return .object(members)
    }

    /// One streamed choice: its new text, and its finish reason on the last one.
    func chunkChoice(_ index: Int, text: String, role: Bool = false, logprobs: JSONValue = .null,
                     finishReason: String? = nil) -> JSONValue {
        let reason: JSONValue = finishReason.map { .string($0) } ?? .null
        switch kind {
        case .completion:
            return ["index": JSONValue(index), "text": .string(text), "logprobs": logprobs, "finish_reason": reason]
        case .chat:
            var delta: [(key: String, value: JSONValue)] = []
            if role { delta.append(("role", "assistant")) }
            if role || !text.isEmpty || finishReason == nil { delta.append(("content", .string(text))) }
            return ["index": JSONValue(index), "delta": .object(delta), "logprobs": logprobs, "finish_reason": reason]
        }
    }

    /// One whole choice.
    func choice(_ index: Int, text: String, logprobs: JSONValue, finishReason: String) -> JSONValue {
        switch kind {
        case .completion:
            return ["index": JSONValue(index), "text": .string(text), "logprobs": logprobs,
                    "finish_reason": .string(finishReason)]
        case .chat:
            return ["index": JSONValue(index), "message": ["role": "assistant", "content": .string(text)],
                    "logprobs": logprobs, "finish_reason": .string(finishReason)]
        }
    }
}

struct Usage: Sendable {
    var promptTokens = 0
    var completionTokens = 0
    var cachedTokens = 0
    /// The engine seconds charged to the request and what they cost (`cost`, an extension clients ignore).
    var engineSeconds = 0.0
    var usd = 0.0
    /// Prompt tokens `truncate_prompt_tokens` or the history policy dropped (nil when the request did not ask).
    var truncatedTokens: Int?
    /// Answered from the response cache (no engine time).
    var fromCache = false

    var json: JSONValue {
        var details: [(key: String, value: JSONValue)] = [("cached_tokens", JSONValue(cachedTokens))]
        if let truncatedTokens { details.append(("truncated_tokens", JSONValue(truncatedTokens))) }
        return ["prompt_tokens": JSONValue(promptTokens), "completion_tokens": JSONValue(completionTokens),
                "total_tokens": JSONValue(promptTokens + completionTokens),
                "prompt_tokens_details": .object(details),
                "cost": fromCache ? ["cpu_seconds": JSONValue(engineSeconds), "usd": JSONValue(usd), "cached_response": true]
                    : ["cpu_seconds": JSONValue(engineSeconds), "usd": JSONValue(usd)]]
    }
}

/// Log-probabilities in the shape each API uses.
struct LogprobsFormatter: Sendable {
    let kind: APIKind
    let tokenizer: any Tokenizer

    func text(_ id: Int32) -> String { String(decoding: tokenizer.tokenBytes(id, renderSpecial: true), as: UTF8.self) }

    private func entry(_ id: Int32, _ logprob: Float) -> JSONValue {
        ["token": .string(text(id)), "logprob": JSONValue(logprob),
         "bytes": .array(tokenizer.tokenBytes(id, renderSpecial: true).map { JSONValue(Int($0)) })]
    }

    /// The log-probabilities of `tokens`, whose text starts at `textOffset` in the choice's text.
    func format(_ tokens: [GeneratedToken], textOffset: Int) -> JSONValue {
        switch kind {
        case .chat:
            return ["content": .array(tokens.map { t in
                var e = entry(t.id, t.logprob ?? 0)
                if case .object(var members) = e {
                    members.append(("top_logprobs", .array(t.topLogprobs.map { entry($0.token, $0.logprob) })))
                    e = .object(members)
                }
                return e
            })]
        case .completion:
            var offsets: [JSONValue] = []
            var offset = textOffset
            for t in tokens {
                offsets.append(JSONValue(offset))
                offset += t.text.unicodeScalars.count
            }
            return ["tokens": .array(tokens.map { .string(text($0.id)) }),
                    "token_logprobs": .array(tokens.map { JSONValue($0.logprob ?? 0) }),
                    "top_logprobs": .array(tokens.map { t in
                        .object(t.topLogprobs.map { (key: text($0.token), value: JSONValue($0.logprob)) })
                    }),
                    "text_offset": .array(offsets)]
        }
    }
}

extension FinishReason {
    /// As OpenAI and vLLM name it.
    var apiName: String {
        switch self {
        case .stop: "stop"
        case .length: "length"
        case .cancelled: "abort"
        }
    }
}

enum SSE {
    static func event(_ value: JSONValue) -> [UInt8] { Array(("data: " + value.serialized + "\n\n").utf8) }
    static let done = Array("data: [DONE]\n\n".utf8)
}
