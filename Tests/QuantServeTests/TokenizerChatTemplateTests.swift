import XCTest
@testable import QuantServe

final class TokenizerChatTemplateTests: XCTestCase {
    static let qwenTemplate = """
        {%- if messages[0]['role'] == 'system' %}
            {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
        {%- else %}
            {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You\\'re helpful.<|im_end|>\\n' }}
        {%- endif %}
        {%- for message in messages %}{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
        {%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
        """

    func testFamilyDetection() {
        XCTAssertEqual(ChatTemplate.family(of: Self.qwenTemplate), .chatML)
        XCTAssertEqual(ChatTemplate.family(of: "{{ '<|start_header_id|>' + role }}"), .llama3)
        XCTAssertEqual(ChatTemplate.family(of: "{{ bos_token + '[INST] ' }}<<SYS>>"), .llama2)
        XCTAssertEqual(ChatTemplate.family(of: "{{ '<start_of_turn>' + role }}"), .gemma)
        XCTAssertNil(ChatTemplate.family(of: "{{ '[INST] ' + content }}")) // Mistral style: not supported
        XCTAssertNil(ChatTemplate.family(of: "{% for m in messages %}{{ m.content }}{% endfor %}"))
    }

    func testUnknownTemplateThrowsAClearError() {
        XCTAssertThrowsError(try ChatTemplate(source: "{{ messages }}")) { error in
            guard case .unrecognizedTemplate? = error as? ChatTemplateError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("ChatML"), "\(error)")
            XCTAssertTrue("\(error)".contains("{{ messages }}"), "\(error)")
        }
    }

    func testChatMLDefaultSystemPromptIsFoundInTheTemplate() throws {
        let t = try ChatTemplate(source: Self.qwenTemplate)
        XCTAssertEqual(t.defaultSystemPrompt, "You are Qwen, created by Alibaba Cloud. You're helpful.")
        let user = [ChatMessage(role: "user", content: "Hi")]
        XCTAssertEqual(try t.render(user, addGenerationPrompt: true),
                       "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You're helpful.<|im_end|>\n"
                       + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        let withSystem = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi")]
        XCTAssertEqual(try t.render(withSystem, addGenerationPrompt: false),
                       "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        let plain = try ChatTemplate(source: "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n'}}{% endfor %}")
        XCTAssertNil(plain.defaultSystemPrompt)
    }

    func testSegmentsSeparateTemplateTextFromMessages() throws {
        let t = try ChatTemplate(source: Self.qwenTemplate)
        let segments = try t.renderSegments([ChatMessage(role: "user", content: "say <|im_end|>")],
                                            addGenerationPrompt: true)
        XCTAssertTrue(segments.contains(.init(text: "say <|im_end|>", isTemplate: false)))
        XCTAssertEqual(segments.last, .init(text: "<|im_end|>\n<|im_start|>assistant\n", isTemplate: true))
        for (a, b) in zip(segments, segments.dropFirst()) { XCTAssertNotEqual(a.isTemplate, b.isTemplate) }
    }

    func testRolesMustAlternateForLlama2AndGemma() {
        let llama2 = "{{ bos_token + '[INST] ' }}<<SYS>>"
        let twoUsers = [ChatMessage(role: "user", content: "a"), ChatMessage(role: "user", content: "b")]
        XCTAssertThrowsError(try ChatTemplate(source: llama2).render(twoUsers, addGenerationPrompt: true)) {
            XCTAssertEqual($0 as? ChatTemplateError, .rolesMustAlternate(.llama2))
        }
        let gemma2 = "{{ bos_token }}{{ raise_exception('System role not supported') }}<start_of_turn>"
        XCTAssertThrowsError(try ChatTemplate(source: gemma2).render(
            [ChatMessage(role: "system", content: "s"), ChatMessage(role: "user", content: "u")],
            addGenerationPrompt: true)) {
            XCTAssertEqual($0 as? ChatTemplateError, .systemRoleNotSupported(.gemma))
        }
    }

    func testEncodeChatKeepsMessageTextOutOfSpecialTokens() throws {
        var v = TokenizerTests.byteLevelVocabulary(
            extra: [("<|im_start|>", .control), ("<|im_end|>", .control), ("<|endoftext|>", .control)],
            merges: ["a b"])
        v.bosTokenID = 258
        v.eosTokenID = 257
        v.chatTemplate = Self.qwenTemplate
        let tokenizer = try makeTokenizer(vocabulary: v)
        let template = try tokenizer.makeChatTemplate()
        let end = tokenizer.tokenID(forText: "<|im_end|>")!
        let ids = try tokenizer.encodeChat(messages: [ChatMessage(role: "user", content: "<|im_end|>")],
                                           template: template, addGenerationPrompt: true)
        // System turn and user turn close with the real token; the user's "<|im_end|>" is plain text.
        XCTAssertEqual(ids.filter { $0 == end }.count, 2)
        XCTAssertEqual(tokenizer.decode(ids, renderSpecial: true), try template.render(
            [ChatMessage(role: "user", content: "<|im_end|>")], addGenerationPrompt: true))
        // Whole-text tokenization with special parsing differs exactly there.
        let rendered = try template.render([ChatMessage(role: "user", content: "<|im_end|>")], addGenerationPrompt: true)
        XCTAssertEqual(tokenizer.encode(rendered, addSpecial: true, parseSpecial: true).filter { $0 == end }.count, 3)
    }

    // MARK: Golden: official templates rendered by jinja2 (Fixtures/chat-templates.json)

    struct TemplateCase: Decodable {
        let family: String
        let name: String?
        let template: String
        let bos_token: String
        let eos_token: String
        let messages: [ChatMessage]
        let add_generation_prompt: Bool
        let rendered: String
    }

    func testRendersLikeJinja() throws {
        let cases: [TemplateCase] = try Fixtures.json("chat-templates.json")
        XCTAssertGreaterThan(cases.count, 10)
        for c in cases {
            let label = "\(c.name ?? c.family) \(c.messages.map(\.role))"
            let template = try ChatTemplate(source: c.template, bosToken: c.bos_token, eosToken: c.eos_token)
            XCTAssertEqual(template.family.rawValue, c.family, label)
            XCTAssertEqual(try template.render(c.messages, addGenerationPrompt: c.add_generation_prompt), c.rendered, label)
        }
    }
}
