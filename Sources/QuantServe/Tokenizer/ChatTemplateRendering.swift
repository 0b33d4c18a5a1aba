/// One renderer per family, each writing what the family's reference Jinja template writes for plain messages.
/// Message roles and contents are content segments; everything else is template text.
extension ChatTemplate {
    /// Whether the template writes `bos_token` (as Llama 3 and Gemma do, once, at the start).
    private var startsWithBOS: Bool { source.contains("bos_token") }

    /// ChatML (Qwen, SmolLM, Hermes, …): `<|im_start|>role\ncontent<|im_end|>\n` per message, with the template's
    /// default system prompt first when the conversation has no system message.
    func renderChatML(_ messages: [ChatMessage], _ addGenerationPrompt: Bool, _ out: inout SegmentBuilder) {
        if startsWithBOS { out.template(bosToken) }
        if let system = defaultSystemPrompt, messages.first?.role != "system" {
            out.template("<|im_start|>system\n" + system + "<|im_end|>\n")
        }
        for message in messages {
            out.template("<|im_start|>")
            out.content(message.role)
            out.template("\n")
            out.content(message.content)
            out.template("<|im_end|>\n")
        }
        if addGenerationPrompt { out.template("<|im_start|>assistant\n") }
    }

    /// Llama 3: BOS, then `<|start_header_id|>role<|end_header_id|>\n\n` + trimmed content + `<|eot_id|>`.
    /// Llama 3.1 and later templates always open with a system block holding the knowledge cut-off and date.
    func renderLlama3(_ messages: [ChatMessage], _ addGenerationPrompt: Bool, _ out: inout SegmentBuilder) {
        if startsWithBOS { out.template(bosToken) }
        var messages = messages[...]
        if let cutoff = knowledgeCutoff {
            var system = ""
            if messages.first?.role == "system" {
                system = JinjaText.strip(messages.removeFirst().content)
            }
            let date = todayDate ?? JinjaText.literal(after: "set date_string =", in: source) ?? "26 Jul 2024"
            out.template("<|start_header_id|>system<|end_header_id|>\n\n")
            out.template("Cutting Knowledge Date: " + cutoff + "\nToday Date: " + date + "\n\n")
            out.content(system)
            out.template("<|eot_id|>")
        }
        for message in messages {
            out.template("<|start_header_id|>")
            out.content(message.role)
            out.template("<|end_header_id|>\n\n")
            out.content(JinjaText.strip(message.content))
            out.template("<|eot_id|>")
        }
        if addGenerationPrompt { out.template("<|start_header_id|>assistant<|end_header_id|>\n\n") }
    }

    /// The "Cutting Knowledge Date: …" of a Llama 3.1+ template, or nil for Llama 3.0.
    private var knowledgeCutoff: String? {
        guard let found = source.range(of: "Cutting Knowledge Date: ") else { return nil }
        let rest = source[found.upperBound...]
        return String(rest.prefix(while: { $0 != "\\" && $0 != "\"" && $0 != "'" && $0 != "\n" }))
    }

    /// Llama 2: `<s>[INST] user [/INST] assistant </s>` with the system prompt inside the first `[INST]` between
    /// `<<SYS>>` markers. The template ignores `add_generation_prompt`.
    func renderLlama2(_ messages: [ChatMessage], _ out: inout SegmentBuilder) throws(ChatTemplateError) {
        var turns = messages[...]
        var system: String?
        if turns.first?.role == "system" { system = turns.removeFirst().content }
        for (index, message) in turns.enumerated() {
            if (message.role == "user") != (index % 2 == 0) { throw .rolesMustAlternate(.llama2) }
            var body = SegmentBuilder()
            if index == 0, let system {
                body.template("<<SYS>>\n")
                body.content(system)
                body.template("\n<</SYS>>\n\n")
            }
            body.content(message.content)
            let stripped = JinjaText.strip(body.segments)
            if message.role == "user" {
                out.template(bosToken + "[INST] ")
                out.append(contentsOf: stripped)
                out.template(" [/INST]")
            } else if message.role == "assistant" {
                out.template(" ")
                out.append(contentsOf: stripped)
                out.template(" " + eosToken)
            }
        }
    }

    /// Gemma: BOS, then `<start_of_turn>role\n` + trimmed content + `<end_of_turn>\n`, with `assistant` written as
    /// `model`. Gemma 3 puts a system message (and a blank line) at the start of the first user turn; Gemma 1 and 2
    /// reject one.
    func renderGemma(_ messages: [ChatMessage], _ addGenerationPrompt: Bool, _ out: inout SegmentBuilder)
        throws(ChatTemplateError)
    {
        var turns = messages[...]
        var firstUserPrefix = ""
        if turns.first?.role == "system" {
            guard source.contains("first_user_prefix") else { throw .systemRoleNotSupported(.gemma) }
            firstUserPrefix = turns.removeFirst().content + "\n\n"
        }
        if startsWithBOS { out.template(bosToken) }
        for (index, message) in turns.enumerated() {
            if (message.role == "user") != (index % 2 == 0) { throw .rolesMustAlternate(.gemma) }
            out.template("<start_of_turn>")
            out.content(message.role == "assistant" ? "model" : message.role)
            out.template("\n")
            if index == 0 { out.content(firstUserPrefix) }
            out.content(JinjaText.strip(message.content))
            out.template("<end_of_turn>\n")
        }
        if addGenerationPrompt { out.template("<start_of_turn>model\n") }
    }
}
