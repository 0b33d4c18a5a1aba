/// The bits of Jinja (Python) string semantics the chat templates rely on.
enum JinjaText {
    /// Python's `str.isspace` (what `strip()` and Jinja's `trim` remove): White_Space plus U+001C…U+001F.
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        (0x1C...0x1F).contains(scalar.value) || scalar.properties.isWhitespace
    }

    /// Python's `str.strip()`.
    static func strip(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
              let last = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(scalars[first...last])
    }

    /// `strip()` applied to the concatenation of `segments`, keeping the segment boundaries.
    static func strip(_ segments: [ChatTemplate.Segment]) -> [ChatTemplate.Segment] {
        var segments = segments
        while let first = segments.first {
            let scalars = first.text.unicodeScalars
            if let i = scalars.firstIndex(where: { !isSpace($0) }) {
                segments[0].text = String(scalars[i...])
                break
            }
            segments.removeFirst()
        }
        while let last = segments.last {
            let scalars = last.text.unicodeScalars
            if let i = scalars.lastIndex(where: { !isSpace($0) }) {
                segments[segments.count - 1].text = String(scalars[...i])
                break
            }
            segments.removeLast()
        }
        return segments
    }

    /// The value of the inside of a string literal (`You are \'X\'.\n` → `You are 'X'.` + newline), or nil when
    /// `body` is not literal text (it holds an unescaped quote or a Jinja delimiter).
    static func literalText(_ body: Substring) -> String? {
        var out = ""
        var escaped = false
        for c in body {
            if escaped {
                switch c {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                default: out.append(c)
                }
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "'" || c == "\"" || c == "{" || c == "}" {
                return nil
            } else {
                out.append(c)
            }
        }
        return escaped ? nil : out
    }

    /// The first double- or single-quoted literal following `prefix` in `source` (`set date_string = "26 Jul 2024"`).
    static func literal(after prefix: String, in source: String) -> String? {
        guard let found = source.range(of: prefix) else { return nil }
        var rest = source[found.upperBound...].drop(while: { $0 == " " })
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return nil }
        rest = rest.dropFirst()
        guard let close = rest.firstIndex(of: quote) else { return nil }
        return literalText(rest[..<close])
    }
}
