/// A byte automaton that accepts exactly the JSON texts a compiled schema (`JSONSchemaGrammar`) allows: a stack of
/// frames, one per value being written, each with its node and how far it got. Whitespace may separate tokens (runs
/// of at most 24 bytes); the object starts at once.
public struct SchemaAutomaton: ByteAutomaton {
    final class Grammar: Sendable {
        let nodes: [JSONSchemaGrammar.Node]
        init(_ g: JSONSchemaGrammar) { nodes = g.nodes }
    }

    struct Frame: Sendable {
        var node: Int32
        var phase: UInt8 = 0
        /// Object: the property being written; array: items written.
        var index: Int32 = 0
        /// Key or literal: bytes matched; `\u`: hex digits left.
        var position: Int32 = 0
        /// Literals still possible.
        var candidates: UInt64 = 0
    }

    let grammar: Grammar
    var stack: [Frame]
    var whitespace: UInt8 = 0
    var done = false
    static let maxDepth = 32

    public init(_ schema: JSONSchemaGrammar) {
        grammar = Grammar(schema)
        stack = [Frame(node: Int32(schema.root))]
    }

    public var isComplete: Bool { done }

    public var inFreeString: Bool {
        guard let top = stack.last, case .string = grammar.nodes[Int(top.node)] else { return false }
        return top.phase == 1
    }

    private static func isSpace(_ b: UInt8) -> Bool { JSONText.isSpace(b) }

    private mutating func space(_ b: UInt8) -> Bool {
        guard Self.isSpace(b) else { return false }
        whitespace += 1
        return whitespace <= 24
    }

    /// Starts a value of `node` with byte `b` on top of the stack.
    private mutating func push(_ node: Int, _ b: UInt8) -> Bool {
        guard stack.count < Self.maxDepth else { return false }
        if case .anyOf(let choices) = grammar.nodes[node] {
            guard let choice = choices.first(where: { $0.first.contains(b) }) else { return false }
            return push(choice.node, b)
        }
        var frame = Frame(node: Int32(node))
        if case .literals(let texts) = grammar.nodes[node] { frame.candidates = texts.count >= 64 ? ~0 : (1 << UInt64(texts.count)) - 1 }
        stack.append(frame)
        return step(b)
    }

    /// The top frame's value is complete: back to its parent.
    private mutating func pop() {
        stack.removeLast()
        guard !stack.isEmpty else { done = true; return }
        let parent = stack.count - 1
        switch grammar.nodes[Int(stack[parent].node)] {
        case .object: stack[parent].phase = 4
        case .array: stack[parent].index += 1; stack[parent].phase = 2
        default: break
        }
    }

    public mutating func feed(_ b: UInt8) -> Bool {
        if !Self.isSpace(b) { whitespace = 0 }
        guard !done, !stack.isEmpty else { return false }
        return step(b)
    }

    /// Reads `b` in the top frame (which may end and hand `b` to its parent).
    private mutating func step(_ b: UInt8) -> Bool {
        let top = stack.count - 1
        var f = stack[top]
        switch grammar.nodes[Int(f.node)] {
        case .object(let properties):
            switch f.phase {
            case 0:
                guard b == UInt8(ascii: "{") else { return false }
                f.phase = 1
            case 1:
                if Self.isSpace(b), f.position == 0 { return space(b) }
                if properties.isEmpty {
                    guard b == UInt8(ascii: "}") else { return false }
                    pop()
                    return true
                }
                let key = properties[Int(f.index)].key
                guard b == key[Int(f.position)] else { return false }
                f.position += 1
                if Int(f.position) == key.count { f.phase = 2 }
            case 2:
                if Self.isSpace(b) { return space(b) }
                guard b == UInt8(ascii: ":") else { return false }
                f.phase = 3
            case 3:
                if Self.isSpace(b) { return space(b) }
                return push(properties[Int(f.index)].value, b)
            default:
                if Self.isSpace(b) { return space(b) }
                if Int(f.index) + 1 < properties.count {
                    guard b == UInt8(ascii: ",") else { return false }
                    f.index += 1
                    f.position = 0
                    f.phase = 1
                } else {
                    guard b == UInt8(ascii: "}") else { return false }
                    pop()
                    return true
                }
            }
        case .array(let item, let min, let max):
            switch f.phase {
            case 0:
                guard b == UInt8(ascii: "[") else { return false }
                f.phase = 1
            case 1, 3:
                if Self.isSpace(b) { return space(b) }
                if f.phase == 1, b == UInt8(ascii: "]"), min == 0 { pop(); return true }
                if f.phase == 1, max == 0 { return false }
                return push(item, b)
            default:
                if Self.isSpace(b) { return space(b) }
                if b == UInt8(ascii: ","), max.map({ Int(f.index) < $0 }) ?? true { f.phase = 3 }
                else if b == UInt8(ascii: "]"), Int(f.index) >= min { pop(); return true }
                else { return false }
            }
        case .string:
            switch f.phase {
            case 0:
                guard b == UInt8(ascii: "\"") else { return false }
                f.phase = 1
            case 1:
                if b == UInt8(ascii: "\"") { pop(); return true }
                if b == UInt8(ascii: "\\") { f.phase = 2 } else if b < 0x20 { return false }
            case 2:
                if JSONText.isSimpleEscape(b) { f.phase = 1 }
                else if b == UInt8(ascii: "u") { f.phase = 3; f.position = 4 }
                else { return false }
            default:
                guard JSONText.isHex(b) else { return false }
                f.position -= 1
                if f.position == 0 { f.phase = 1 }
            }
        case .number(let integer):
            switch JSONNumber(rawValue: f.phase)!.step(b, integerOnly: integer) {
            case .next(let n): f.phase = n.rawValue
            case .end: pop(); return feedParent(b)
            case .reject: return false
            }
        case .literals(let texts):
            var next: UInt64 = 0, complete = false
            for (i, t) in texts.enumerated() where i < 64 && f.candidates & (1 << UInt64(i)) != 0 {
                if Int(f.position) < t.count { if t[Int(f.position)] == b { next |= 1 << UInt64(i) } } else { complete = true }
            }
            if next == 0 {
                // A literal already whole (a number enum's "1" before "12"): it ends here, `b` is its parent's.
                guard complete else { return false }
                pop()
                return feedParent(b)
            }
            f.candidates = next
            f.position += 1
            stack[top] = f
            // Every remaining candidate is whole: the value is complete.
            if texts.enumerated().allSatisfy({ i, t in i >= 64 || next & (1 << UInt64(i)) == 0 || t.count == Int(f.position) }) { pop() }
            return true
        case .anyOf:
            return false
        }
        stack[top] = f
        return true
    }

    /// A value ended by a byte that is not part of it: the parent reads it.
    private mutating func feedParent(_ b: UInt8) -> Bool {
        guard !done, !stack.isEmpty else { return false }
        return step(b)
    }
}
