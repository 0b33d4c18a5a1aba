import QuantServe
import QuantServeJSON

/// The fields completions and chat completions share, read and checked.
struct GenerationParameters {
    /// nil: until end of generation or a full context.
    var maxTokens: Int?
    var sampling: SamplingParameters
    var stop: [String] = []
    var n = 1
    /// Top log-probabilities per token (nil: none).
    var logprobs: Int?
    var stream = false
    var includeUsage = false
    var ignoreEOS = false
    /// `response_format: {"type": "json_object"}`: the output is constrained to one JSON object.
    var jsonObject = false
    /// `response_format: {"type": "json_schema", "json_schema": {"schema": ...}}`: the schema the output follows.
    var jsonSchema: JSONValue?
    /// vLLM's `truncate_prompt_tokens`: keep only the last k tokens of each prompt (-1: as many as fit the context
    /// with `max_tokens`).
    var truncatePromptTokens: Int?

    static let maxStops = 16
    static let maxStopBytes = 256
    static let maxN = 8

    /// OpenAI's defaults for absent fields (temperature 1, top_p 1, no top-k), not llama.cpp's.
    init(_ f: RequestFields) throws(APIError) {
        try Self.rejectUnsupported(f)
        var s = SamplingParameters(temperature: 1, topK: 0, topP: 1)
        if let t = try f.number("temperature", in: 0...2) { s.temperature = t }
        if let p = try f.number("top_p", in: 0...1, openLower: true) { s.topP = p }
        if let k = try f.int("top_k", in: -1...1_000_000) { s.topK = max(k, 0) }
        if let p = try f.number("min_p", in: 0...1) { s.minP = p }
        if let r = try f.number("repetition_penalty", in: 0...10, openLower: true) { s.repetitionPenalty = r }
        if let x = try f.number("presence_penalty", in: -2...2) { s.presencePenalty = x }
        if let x = try f.number("frequency_penalty", in: -2...2) { s.frequencyPenalty = x }
        if let seed = try f.int("seed", in: Int.min...Int.max) { s.seed = UInt64(bitPattern: Int64(seed)) }
        sampling = s

        let maxTokens = try f.int("max_tokens", in: 0...Int(Int32.max))
        let maxCompletion = try f.int("max_completion_tokens", in: 0...Int(Int32.max))
        self.maxTokens = maxCompletion ?? maxTokens
        n = try f.int("n", in: 1...Self.maxN) ?? 1
        truncatePromptTokens = try f.int("truncate_prompt_tokens", in: -1...Int(Int32.max))
        if truncatePromptTokens == 0 {
            throw .invalid("'truncate_prompt_tokens' must be -1 (fit the context) or at least 1, got 0", param: "truncate_prompt_tokens")
        }
        stop = try Self.stops(f)
        stream = try f.bool("stream") ?? false
        if let options = f["stream_options"] {
            guard case .object = options else { throw .wrongType("stream_options", expected: "an object", got: options) }
            guard stream else {
                throw .invalid("'stream_options' is only allowed when 'stream' is true", param: "stream_options")
            }
            if let v = options["include_usage"], !v.isNull {
                guard let b = v.bool else { throw .wrongType("stream_options.include_usage", expected: "a boolean", got: v) }
                includeUsage = b
            }
        }
        ignoreEOS = try f.bool("ignore_eos") ?? false
        (jsonObject, jsonSchema) = try Self.responseFormat(f)
        _ = try f.string("user")
    }

    /// `response_format`: `text` (or absent), `json_object`, or `json_schema` with its `schema` (an object).
    private static func responseFormat(_ f: RequestFields) throws(APIError) -> (Bool, JSONValue?) {
        guard let format = f["response_format"] else { return (false, nil) }
        guard case .object = format else { throw .wrongType("response_format", expected: "an object", got: format) }
        guard let type = format["type"]?.string else {
            throw .invalid("'response_format.type' must be a string", param: "response_format.type")
        }
        switch type {
        case "text": return (false, nil)
        case "json_object": return (true, nil)
        case "json_schema":
            guard let schema = format["json_schema"]?["schema"], case .object = schema else {
                throw .invalid("'response_format.json_schema.schema' must be a JSON Schema object",
                               param: "response_format.json_schema.schema")
            }
            return (false, schema)
        default:
            throw .invalid("'response_format.type' must be text, json_object or json_schema, got '\(type)'",
                           param: "response_format.type")
        }
    }

    private static func stops(_ f: RequestFields) throws(APIError) -> [String] {
        guard let v = f["stop"] else { return [] }
        var stops: [String]
        if let s = v.string {
            stops = [s]
        } else if let a = v.array {
            stops = []
            for (i, item) in a.enumerated() {
                guard let s = item.string else { throw .wrongType("stop[\(i)]", expected: "a string", got: item) }
                stops.append(s)
            }
        } else {
            throw .wrongType("stop", expected: "a string or an array of strings", got: v)
        }
        guard stops.count <= maxStops else {
            throw .outOfRange("stop", "at most \(maxStops) strings", got: "\(stops.count)")
        }
        for s in stops where s.utf8.count > maxStopBytes {
            throw .outOfRange("stop", "strings of at most \(maxStopBytes) bytes", got: "one of \(s.utf8.count) bytes")
        }
        return stops.filter { !$0.isEmpty }
    }

    /// Fields that would change what the request means and that the server does not do yet.
    private static func rejectUnsupported(_ f: RequestFields) throws(APIError) {
        if let tools = f["tools"], tools.array?.isEmpty != true {
            throw .unsupported("tools", "this server does not call tools yet")
        }
        if let choice = f["tool_choice"], choice.string != "none" {
            throw .unsupported("tool_choice", "only \"none\" is supported")
        }

        if let bias = f["logit_bias"], bias.object?.isEmpty != true {
            throw .unsupported("logit_bias", "logit biases are not supported")
        }
        if let suffix = f["suffix"], suffix.string?.isEmpty != true {
            throw .unsupported("suffix", "suffixes (insertion) are not supported")
        }
        if let functions = f["functions"], functions.array?.isEmpty != true {
            throw .unsupported("functions", "this server does not call functions")
        }
    }
}

/// `prompt` of a completion request: text, texts, token ids, or lists of token ids.
enum PromptInput {
    case texts([String])
    case tokens([[Int32]])

    static let maxPrompts = 64

    init(_ f: RequestFields) throws(APIError) {
        guard let v = f["prompt"] else { throw .invalid("'prompt' is required", param: "prompt", code: "missing_required_parameter") }
        if let s = v.string { self = .texts([s]); return }
        guard let a = v.array else { throw .wrongType("prompt", expected: "a string, an array of strings or of token ids", got: v) }
        guard !a.isEmpty else { throw .invalid("'prompt' must not be empty", param: "prompt") }
        guard a.count <= Self.maxPrompts || a.first?.number != nil else {
            throw .outOfRange("prompt", "at most \(Self.maxPrompts) prompts", got: "\(a.count)")
        }
        if a.allSatisfy({ $0.string != nil }) { self = .texts(a.map { $0.string! }); return }
        if a.allSatisfy({ $0.number != nil }) { self = .tokens([try Self.ids(a, "prompt")]); return }
        if a.allSatisfy({ $0.array != nil }) {
            var lists: [[Int32]] = []
            for (i, item) in a.enumerated() { lists.append(try Self.ids(item.array!, "prompt[\(i)]")) }
            self = .tokens(lists)
            return
        }
        throw .wrongType("prompt", expected: "a string, an array of strings or of token ids", got: v)
    }

    private static func ids(_ values: [JSONValue], _ param: String) throws(APIError) -> [Int32] {
        guard !values.isEmpty else { throw .invalid("'\(param)' must not be empty", param: "prompt") }
        var ids: [Int32] = []
        ids.reserveCapacity(values.count)
        for v in values {
            guard let n = v.number, let i = Int32(exactly: n), i >= 0 else {
                throw .invalid("'\(param)' must hold non-negative integer token ids", param: "prompt", code: "invalid_value")
            }
            ids.append(i)
        }
        return ids
    }
}

/// `messages` of a chat request.
enum ChatMessages {
    static let roles: Set<String> = ["system", "user", "assistant", "developer"]

    static func read(_ f: RequestFields) throws(APIError) -> [ChatMessage] {
        guard let v = f["messages"] else {
            throw .invalid("'messages' is required", param: "messages", code: "missing_required_parameter")
        }
        guard let list = v.array else { throw .wrongType("messages", expected: "an array", got: v) }
        guard !list.isEmpty else { throw .invalid("'messages' must not be empty", param: "messages") }
        var messages: [ChatMessage] = []
        for (i, m) in list.enumerated() {
            let at = "messages[\(i)]"
            guard case .object = m else { throw .wrongType(at, expected: "an object", got: m) }
            guard let roleValue = m["role"], let role = roleValue.string else {
                throw .invalid("'\(at).role' must be a string", param: "\(at).role")
            }
            guard roles.contains(role) else {
                throw .invalid("'\(at).role' must be system, user or assistant, got '\(role)'", param: "\(at).role")
            }
            messages.append(ChatMessage(role: role == "developer" ? "system" : role,
                                        content: try content(m["content"] ?? .null, at: "\(at).content", role: role)))
        }
        return messages
    }

    /// A string, or a list of `{"type": "text", "text": ...}` parts (joined); null only for an assistant.
    private static func content(_ v: JSONValue, at: String, role: String) throws(APIError) -> String {
        if let s = v.string { return s }
        if v.isNull, role == "assistant" { return "" }
        guard let parts = v.array else { throw .wrongType(at, expected: "a string or an array of text parts", got: v) }
        var text = ""
        for (i, part) in parts.enumerated() {
            guard part["type"]?.string == "text" else {
                throw .unsupported("\(at)[\(i)].type", "only text parts are supported")
            }
            guard let t = part["text"]?.string else { throw .invalid("'\(at)[\(i)].text' must be a string", param: "\(at)[\(i)].text") }
            text += t
        }
        return text
    }
}
