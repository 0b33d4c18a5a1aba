import QuantServeJSON

/// A JSON Schema compiled to a grammar that a byte automaton (`SchemaAutomaton`) follows deterministically: objects
/// write every declared property once, in the schema's order (so `required` and `additionalProperties: false` always
/// hold); arrays of `items` within `minItems`/`maxItems`; strings; integers and numbers; booleans; null; `enum` and
/// `const` of literal values; `anyOf` whose alternatives start with different characters; `$ref` to `#/$defs/...`
/// (recursion allowed). Anything else is refused by name, never silently unconstrained.
public struct JSONSchemaGrammar: Sendable {
    public struct Unsupported: Error, Equatable, CustomStringConvertible {
        public let keyword: String
        public let detail: String
        public var description: String { "'\(keyword)' \(detail)" }
    }

    enum Node: Sendable {
        /// Each property as its quoted key's bytes, and its value's node.
        case object([(key: [UInt8], value: Int)])
        case array(item: Int, min: Int, max: Int?)
        case string
        case number(integer: Bool)
        /// The serialized texts of the allowed values (enum, const, boolean, null).
        case literals([[UInt8]])
        /// Alternatives chosen by their first byte.
        case anyOf([(first: Set<UInt8>, node: Int)])
    }

    var nodes: [Node] = []
    public let root: Int

    static let ignored: Set<String> = ["title", "description", "$schema", "$id", "examples", "default", "$comment",
                                       "additionalProperties", "required", "$defs", "definitions", "strict", "format"]

    public init(schema: JSONValue) throws(Unsupported) {
        var builder = Builder(document: schema)
        root = try builder.compile(schema, at: "schema")
        try builder.resolveAlternatives()
        nodes = builder.nodes
        guard case .object = nodes[root] else { throw Unsupported(keyword: "type", detail: "at the top must be object") }
    }

    struct Builder {
        let document: JSONValue
        var nodes: [Node] = []
        var refs: [String: Int] = [:]
        /// anyOf nodes whose alternatives' first characters are known only once every `$ref` is compiled.
        var pending: [(node: Int, path: String, keyword: String)] = []
        /// `$ref` placeholders and the node each stands for (copied again once alternatives are resolved).
        var aliases: [(placeholder: Int, node: Int)] = []

        mutating func add(_ node: Node) -> Int { nodes.append(node); return nodes.count - 1 }

        mutating func compile(_ schema: JSONValue, at path: String) throws(Unsupported) -> Int {
            guard let members = schema.object else {
                if schema.bool == true { throw Unsupported(keyword: "true", detail: "(any value) at \(path) is not enforced") }
                throw Unsupported(keyword: "schema", detail: "at \(path) must be an object")
            }
            let known: Set<String> = ["type", "properties", "items", "minItems", "maxItems", "enum", "const", "anyOf",
                                      "oneOf", "$ref"]
            for (key, _) in members where !known.contains(key) && !JSONSchemaGrammar.ignored.contains(key) {
                throw Unsupported(keyword: key, detail: "at \(path) is not enforced")
            }
            if let format = schema["format"]?.string, !["date-time", "date", "time", "email", "uri", "uuid"].contains(format) {
                throw Unsupported(keyword: "format", detail: "'\(format)' at \(path) is not enforced")
            }
            if let ref = schema["$ref"]?.string { return try reference(ref, at: path) }
            if let values = schema["enum"]?.array {
                guard !values.isEmpty, values.count <= 64 else { throw Unsupported(keyword: "enum", detail: "at \(path) must list 1 to 64 values") }
                return add(.literals(values.map { Array($0.serialized.utf8) }))
            }
            if let value = schema["const"] { return add(.literals([Array(value.serialized.utf8)])) }
            if let alternatives = schema["anyOf"]?.array ?? schema["oneOf"]?.array {
                let keyword = schema["anyOf"] != nil ? "anyOf" : "oneOf"
                var choices: [(first: Set<UInt8>, node: Int)] = []
                for (i, a) in alternatives.enumerated() {
                    choices.append(([], try compile(a, at: "\(path).\(keyword)[\(i)]")))
                }
                pending.append((nodes.count, path, keyword))
                return add(.anyOf(choices))
            }
            var type = schema["type"]?.string
            if type == nil, let types = schema["type"]?.array {
                // ["string", "null"] and the like: an anyOf of the types.
                let alternatives = JSONValue.array(types.map { t in
                    var copy = members.filter { $0.key != "type" }
                    copy.append(("type", t))
                    return .object(copy)
                })
                return try compile(.object([("anyOf", alternatives)]), at: path)
            }
            if type == nil, schema["properties"] != nil { type = "object" }
            switch type {
            case "object":
                var properties: [(key: [UInt8], value: Int)] = []
                for (name, sub) in schema["properties"]?.object ?? [] {
                    properties.append((Array(JSONValue.string(name).serialized.utf8), try compile(sub, at: "\(path).properties.\(name)")))
                }
                if let required = schema["required"]?.array {
                    for r in required where !properties.contains(where: { $0.key == Array(JSONValue.string(r.string ?? "").serialized.utf8) }) {
                        throw Unsupported(keyword: "required", detail: "at \(path) names '\(r.string ?? "")', which is not among the properties")
                    }
                }
                return add(.object(properties))
            case "array":
                guard let items = schema["items"] else { throw Unsupported(keyword: "items", detail: "is required for arrays at \(path)") }
                let min = schema["minItems"]?.int ?? 0
                let max = schema["maxItems"]?.int
                guard min >= 0, max.map({ $0 >= min }) ?? true else { throw Unsupported(keyword: "maxItems", detail: "at \(path) is below minItems") }
                let placeholder = add(.array(item: 0, min: min, max: max))
                let item = try compile(items, at: "\(path).items")
                nodes[placeholder] = .array(item: item, min: min, max: max)
                return placeholder
            case "string": return add(.string)
            case "integer": return add(.number(integer: true))
            case "number": return add(.number(integer: false))
            case "boolean": return add(.literals([Array("true".utf8), Array("false".utf8)]))
            case "null": return add(.literals([Array("null".utf8)]))
            case let t?: throw Unsupported(keyword: "type", detail: "'\(t)' at \(path) is not a JSON Schema type")
            case nil: throw Unsupported(keyword: "type", detail: "is missing at \(path) (a schema that allows any value is not enforced)")
            }
        }

        mutating func reference(_ ref: String, at path: String) throws(Unsupported) -> Int {
            if let node = refs[ref] { return node }
            let parts = ref.split(separator: "/").map(String.init)
            guard parts.count == 3, parts[0] == "#", parts[1] == "$defs" || parts[1] == "definitions",
                  let target = document[parts[1]]?[parts[2]] else {
                throw Unsupported(keyword: "$ref", detail: "'\(ref)' at \(path): only '#/$defs/NAME' is resolved")
            }
            // A placeholder first, so that a recursive definition refers to itself.
            let placeholder = add(.string)
            refs[ref] = placeholder
            let node = try compile(target, at: ref)
            nodes[placeholder] = nodes[node]
            aliases.append((placeholder, node))
            return placeholder
        }

        /// Each anyOf's alternatives get their first characters, which must differ.
        mutating func resolveAlternatives() throws(Unsupported) {
            for (node, path, keyword) in pending {
                guard case .anyOf(let choices) = nodes[node] else { continue }
                var resolved: [(first: Set<UInt8>, node: Int)] = []
                for c in choices {
                    let first = firstBytes(c.node, depth: 0)
                    guard resolved.allSatisfy({ $0.first.isDisjoint(with: first) }) else {
                        throw Unsupported(keyword: keyword, detail: "at \(path): alternatives that start alike (two objects, two strings...) are not enforced")
                    }
                    resolved.append((first, c.node))
                }
                nodes[node] = .anyOf(resolved)
            }
            for (placeholder, node) in aliases { nodes[placeholder] = nodes[node] }
        }

        func firstBytes(_ node: Int, depth: Int) -> Set<UInt8> {
            switch nodes[node] {
            case .object: return [UInt8(ascii: "{")]
            case .array: return [UInt8(ascii: "[")]
            case .string: return [UInt8(ascii: "\"")]
            case .number: return Set(Array("-0123456789".utf8))
            case .literals(let texts): return Set(texts.compactMap(\.first))
            case .anyOf(let choices):
                guard depth < 32 else { return [] }
                return choices.reduce(into: Set<UInt8>()) { $0.formUnion(firstBytes($1.node, depth: depth + 1)) }
            }
        }
    }
}
