extension Tokenizer {
    /// Renders `messages` with `template` and tokenizes the result as llama-server does (special tokens parsed in
    /// the template's text, BOS/EOS added as the vocabulary asks, a BOS/EOS the template itself writes at the very
    /// start/end dropped so it is not doubled), except that message text is tokenized with special parsing off:
    /// a message containing "<|im_end|>" gets the plain-text tokens for those characters.
    public func encodeChat(messages: [ChatMessage], template: ChatTemplate, addGenerationPrompt: Bool = true)
        throws(ChatTemplateError) -> [Int32]
    {
        var segments = try template.renderSegments(messages, addGenerationPrompt: addGenerationPrompt)
        let bos = Array(template.bosToken.utf8), eos = Array(template.eosToken.utf8)
        if addsBOS, !bos.isEmpty, let first = segments.first, first.isTemplate, first.text.utf8.starts(with: bos) {
            segments[0].text = String(decoding: Array(first.text.utf8.dropFirst(bos.count)), as: UTF8.self)
        }
        if addsEOS, !eos.isEmpty, let last = segments.last, last.isTemplate,
           last.text.utf8.reversed().starts(with: eos.reversed()) {
            segments[segments.count - 1].text = String(decoding: Array(last.text.utf8.dropLast(eos.count)), as: UTF8.self)
        }
        return encode(segments.map { TextSegment($0.text, parseSpecial: $0.isTemplate) }, addSpecial: true)
    }
}
