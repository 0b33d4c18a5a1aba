import QuantServe
import QuantServeJSON

/// The chat history policy (config `history`, request `truncate_history`): a conversation's system messages and its
/// newest turns that fit a prompt-token limit.
extension APIServer {
    /// The history policy's prompt-token limit for this request, nil when it does not apply: a chat request opts in
    /// with `"truncate_history": true` (the config's `max_prompt_tokens`) or a number of tokens, or the config
    /// applies it to every chat request. Never more than fits the context with `max_tokens`.
    func historyLimit(_ kind: APIKind, _ f: RequestFields, _ params: GenerationParameters,
                      contextSize: Int) throws(APIError) -> Int? {
        var applies = kind == .chat && options.history.byDefault
        var limit = options.history.maxPromptTokens
        if let v = f["truncate_history"] {
            guard kind == .chat else {
                throw .invalid("'truncate_history' applies to chat messages; use 'truncate_prompt_tokens'", param: "truncate_history")
            }
            if let b = v.bool {
                applies = b
            } else if let n = v.number, let i = Int(exactly: n), i >= 1 {
                applies = true
                limit = i
            } else {
                throw .wrongType("truncate_history", expected: "a boolean or a positive number of tokens", got: v)
            }
        }
        guard applies else { return nil }
        let fit = max(1, contextSize - max(1, params.maxTokens ?? 1))
        return min(limit ?? fit, fit)
    }

    /// The history policy: the leading system messages and the newest turns whose rendering fits `limit` tokens;
    /// the kept turns start on a user message (templates expect user and assistant in turn). When even the last turn
    /// alone is over the limit it is sent alone (the context check decides). Returns the tokens and how many of
    /// the whole conversation's were dropped.
    func fitHistory(_ messages: [ChatMessage], limit: Int, _ model: ServedModel,
                    _ engine: Engine) throws(APIError) -> ([Int32], Int) {
        let full = try chatTokens(model, engine, messages)
        guard full.count > limit else { return (full, 0) }
        let head = messages.prefix { $0.role == "system" }.count
        var starts = (head..<messages.count).filter { $0 > head && messages[$0].role == "user" }
        if starts.last != messages.count - 1 { starts.append(messages.count - 1) }
        guard !starts.isEmpty else { return (full, 0) }
        func tokens(from start: Int) throws(APIError) -> [Int32] {
            try chatTokens(model, engine, Array(messages[..<head]) + Array(messages[start...]))
        }
        // The fewest turns dropped that fit: a binary search, the rendering shrinking as the start moves on.
        var lo = 0, hi = starts.count - 1
        var best: [Int32]?
        while lo <= hi {
            let mid = (lo + hi) / 2
            let t = try tokens(from: starts[mid])
            if t.count <= limit { best = t; hi = mid - 1 } else { lo = mid + 1 }
        }
        let kept: [Int32]
        if let best { kept = best } else { kept = try tokens(from: starts[starts.count - 1]) }
        return (kept, max(0, full.count - kept.count))
    }
}
