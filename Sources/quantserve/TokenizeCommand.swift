import Foundation
import QuantServe

struct TokenizeCommand: Command {
    static let name = "tokenize"
    static let summary = "print the token ids of a text as a JSON array"
    static let options: [OptionSpec] = [
        .model,
        OptionSpec(name: "text", valueName: "TEXT", help: "text to tokenize"),
        OptionSpec(name: "special", valueName: nil, help: "parse special-token strings such as <|im_start|>"),
        OptionSpec(name: "add-special", valueName: nil, help: "add BOS/EOS where the model asks for them"),
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let path = try arguments.required("model")
        let text = try arguments.required("text")
        let (_, tokenizer) = try ModelLoader.tokenizer(path: path)
        let ids = tokenizer.encode(text, addSpecial: arguments.flag("add-special"), parseSpecial: arguments.flag("special"))
        print("[" + ids.map(String.init).joined(separator: ", ") + "]")
    }
}
