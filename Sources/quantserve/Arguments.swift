/// A command-line option a command accepts.
struct OptionSpec {
    let name: String
    let valueName: String?  // nil for a flag
    let help: String
}

extension OptionSpec {
    /// Options several commands share, spelled once.
    static let model = OptionSpec(name: "model", valueName: "PATH", help: "GGUF model file or Hugging Face model folder")
    static let threads = OptionSpec(name: "threads", valueName: "N", help: "compute threads (default: all cores)")
    static let calibration = OptionSpec(name: "calibration", valueName: "FILE",
                                        help: "calibration text for int4's AWQ search (default: bundled)")
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Parsed `--name value` options and `--flag` flags, checked against the command's specs.
struct ParsedArguments {
    private var values: [String: String] = [:]
    /// Every value of each option, in order (an option given twice keeps its last in `values`).
    private var allValues: [String: [String]] = [:]
    private var flags: Set<String> = []
    var helpRequested = false

    init(_ arguments: [String], specs: [OptionSpec]) throws {
        let byName = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0) })
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            if arg == "--help" || arg == "-h" { helpRequested = true; i += 1; continue }
            guard arg.hasPrefix("--") else { throw UsageError("unexpected argument '\(arg)'") }
            var name = String(arg.dropFirst(2))
            var inlineValue: String?
            if let eq = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let spec = byName[name] else { throw UsageError("unknown option '--\(name)'") }
            if spec.valueName == nil {
                guard inlineValue == nil else { throw UsageError("'--\(name)' takes no value") }
                flags.insert(name)
            } else if let inlineValue {
                values[name] = inlineValue
                allValues[name, default: []].append(inlineValue)
            } else {
                guard i + 1 < arguments.count else { throw UsageError("'--\(name)' needs a value") }
                values[name] = arguments[i + 1]
                allValues[name, default: []].append(arguments[i + 1])
                i += 1
            }
            i += 1
        }
    }

    func flag(_ name: String) -> Bool { flags.contains(name) }

    /// These arguments with `overrides`' values in place of theirs (a config file's per-model settings over the
    /// command line's).
    func overridden(by overrides: ParsedArguments) -> ParsedArguments {
        var merged = self
        for (name, value) in overrides.values {
            merged.values[name] = value
            merged.allValues[name] = [value]
        }
        merged.flags.formUnion(overrides.flags)
        return merged
    }

    func string(_ name: String) -> String? { values[name] }

    /// Every value given for a repeatable option, in order.
    func strings(_ name: String) -> [String] { allValues[name] ?? [] }

    func required(_ name: String) throws -> String {
        guard let v = values[name] else { throw UsageError("missing required option '--\(name)'") }
        return v
    }

    func int(_ name: String, range: ClosedRange<Int>) throws -> Int? {
        guard let raw = values[name] else { return nil }
        guard let v = Int(raw), range.contains(v) else {
            throw UsageError("'--\(name)' must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(raw)'")
        }
        return v
    }

    func double(_ name: String, range: ClosedRange<Double>) throws -> Double? {
        guard let raw = values[name] else { return nil }
        guard let v = Double(raw), v.isFinite, range.contains(v) else {
            throw UsageError("'--\(name)' must be a number in \(range.lowerBound)...\(range.upperBound), got '\(raw)'")
        }
        return v
    }

    func float(_ name: String, range: ClosedRange<Float>) throws -> Float? {
        guard let raw = values[name] else { return nil }
        guard let v = Float(raw), v.isFinite, range.contains(v) else {
            throw UsageError("'--\(name)' must be a number in \(range.lowerBound)...\(range.upperBound), got '\(raw)'")
        }
        return v
    }
}

func usage(command: String, summary: String, specs: [OptionSpec]) -> String {
    var lines = ["usage: quantserve \(command) [options]", "", summary, "", "options:"]
    for s in specs {
        let left = "  --\(s.name)" + (s.valueName.map { " \($0)" } ?? "")
        lines.append(left.padding(toLength: max(left.count + 2, 28), withPad: " ", startingAt: 0) + s.help)
    }
    lines.append("  --help".padding(toLength: 28, withPad: " ", startingAt: 0) + "show this help")
    return lines.joined(separator: "\n")
}
