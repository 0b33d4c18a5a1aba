import QuantServeJSON

/// `POST /v1/responses`, stateless: OpenAI's Responses API translated onto the chat path. `input` (a string, or a
/// list of messages whose content is a string or `input_text` parts), `instructions` (a system message first),
/// `max_output_tokens`, `temperature`, `top_p`, `text.format` (text, json_object, json_schema), `stream`; the answer is
/// a `response` object with one `message` output item, or the Responses stream events. Anything that needs stored
/// state or tools is refused by name.
enum ResponsesAPI {
    /// The chat request a Responses request stands for.
    static func chatRequest(_ f: RequestFields) throws(APIError) -> JSONValue {
        for field in ["previous_response_id", "conversation", "background", "prompt"] where f[field] != nil {
            throw .unsupported(field, "this server keeps no responses or conversations (stateless)")
        }
        if let tools = f["tools"], tools.array?.isEmpty != true { throw .unsupported("tools", "this server does not call tools yet") }
        if let reasoning = f["reasoning"], reasoning.object?.isEmpty != true { throw .unsupported("reasoning", "no reasoning models are served") }
        if f["store"]?.bool == true { throw .unsupported("store", "responses are not stored; send store: false") }
        var messages: [JSONValue] = []
        if let instructions = f["instructions"] {
            guard let text = instructions.string else { throw .wrongType("instructions", expected: "a string", got: instructions) }
            messages.append(["role": "system", "content": .string(text)])
        }
        guard let input = f["input"] else { throw .invalid("'input' is required", param: "input", code: "missing_required_parameter") }
        if let text = input.string {
            messages.append(["role": "user", "content": .string(text)])
        } else if let items = input.array, !items.isEmpty {
            for (i, item) in items.enumerated() {
                let at = "input[\(i)]"
                guard case .object = item, let role = item["role"]?.string else {
                    throw .invalid("'\(at)' must be a message with a role and content", param: at)
                }
                if let type = item["type"]?.string, type != "message" {
                    throw .unsupported("\(at).type", "only message items are accepted, got '\(type)'")
                }
                messages.append(["role": .string(role), "content": .string(try text(item["content"] ?? .null, at: "\(at).content"))])
            }
        } else {
            throw .wrongType("input", expected: "a string or a non-empty list of messages", got: input)
        }
        var chat: [(key: String, value: JSONValue)] = [("messages", .array(messages))]
        if let model = f["model"] { chat.append(("model", model)) }
        for (from, to) in [("max_output_tokens", "max_tokens"), ("temperature", "temperature"), ("top_p", "top_p"),
                           ("stream", "stream"), ("seed", "seed"), ("user", "user")] {
            if let v = f[from] { chat.append((to, v)) }
        }
        if let format = f["text"]?["format"], !format.isNull {
            guard let type = format["type"]?.string else { throw .invalid("'text.format.type' must be a string", param: "text.format.type") }
            switch type {
            case "text": break
            case "json_object": chat.append(("response_format", ["type": "json_object"]))
            case "json_schema":
                guard let schema = format["schema"] else {
                    throw .invalid("'text.format.schema' is required for json_schema", param: "text.format.schema")
                }
                chat.append(("response_format", ["type": "json_schema", "json_schema": [
                    "name": format["name"] ?? "response", "schema": schema]]))
            default: throw .invalid("'text.format.type' must be text, json_object or json_schema", param: "text.format.type")
            }
        }
        return .object(chat)
    }

    /// A message's content: a string, or `input_text` / `output_text` parts joined.
    private static func text(_ v: JSONValue, at: String) throws(APIError) -> String {
        if let s = v.string { return s }
        guard let parts = v.array else { throw .wrongType(at, expected: "a string or a list of text parts", got: v) }
        var out = ""
        for (i, part) in parts.enumerated() {
            guard let type = part["type"]?.string, ["input_text", "output_text", "text"].contains(type),
                  let t = part["text"]?.string else {
                throw .unsupported("\(at)[\(i)]", "only text parts (input_text) are accepted")
            }
            out += t
        }
        return out
    }

    /// The `response` object: its status, one assistant message holding `text` (when there is one), and usage.
    static func response(id: String, created: Int, model: String, text: String?, finishReason: String?,
                         usage: Usage?, request: JSONValue) -> JSONValue {
        let status = finishReason == nil ? "in_progress" : finishReason == "length" ? "incomplete" : "completed"
        var output: [JSONValue] = []
        if let text {
            output.append(message(id: id, text: text, done: finishReason != nil))
        }
        let usageJSON: JSONValue = usage.map { u in
            ["input_tokens": JSONValue(u.promptTokens), "input_tokens_details": ["cached_tokens": JSONValue(u.cachedTokens)],
             "output_tokens": JSONValue(u.completionTokens), "output_tokens_details": ["reasoning_tokens": 0],
             "total_tokens": JSONValue(u.promptTokens + u.completionTokens),
             "cost": ["cpu_seconds": JSONValue(u.engineSeconds), "usd": JSONValue(u.usd)]]
        } ?? .null
        return ["id": .string(id), "object": "response", "created_at": JSONValue(created), "status": .string(status),
                "model": .string(model), "output": .array(output), "error": nil,
                "incomplete_details": finishReason == "length" ? ["reason": "max_output_tokens"] : nil,
                "instructions": request["instructions"] ?? nil, "max_output_tokens": request["max_output_tokens"] ?? nil,
                "temperature": request["temperature"] ?? 1, "top_p": request["top_p"] ?? 1, "parallel_tool_calls": true,
                "tool_choice": "auto", "tools": [], "text": ["format": request["text"]?["format"] ?? ["type": "text"]],
                "usage": usageJSON]
    }

    static func message(id: String, text: String, done: Bool) -> JSONValue {
        ["type": "message", "id": .string("msg_" + id.dropFirst(5)), "status": done ? "completed" : "in_progress",
         "role": "assistant", "content": done || !text.isEmpty ? [part(text)] : []]
    }

    static func part(_ text: String) -> JSONValue { ["type": "output_text", "text": .string(text), "annotations": []] }

    /// One stream event: `event: TYPE` and its JSON (with `type` and `sequence_number`).
    static func event(_ type: String, _ sequence: Int, _ fields: [(key: String, value: JSONValue)]) -> [UInt8] {
        let value = JSONValue.object([("type", .string(type)), ("sequence_number", JSONValue(sequence))] + fields)
        return Array("event: \(type)\ndata: \(value.serialized)\n\n".utf8)
    }
}
