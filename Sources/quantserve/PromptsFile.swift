import Foundation
import QuantServe

/// One line of a `--prompts-file`: a prompt and optional sampling fields named as in the HTTP API.
struct PromptLine {
    var prompt: String
    var maxTokens: Int?
    var sampling: SamplingParameters
    var stop: [String]

    init(prompt: String, maxTokens: Int?, sampling: SamplingParameters, stop: [String]) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
    }

    /// Reads every line (blank lines skipped), errors naming the line.
    static func read(_ path: String, defaults: SamplingParameters) throws -> [PromptLine] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw UsageError("cannot read prompts file '\(path)'")
        }
        var lines: [PromptLine] = []
        for (number, raw) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = raw.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            do {
                lines.append(try PromptLine(json: Data(text.utf8), defaults: defaults))
            } catch {
                throw UsageError("\(path):\(number + 1): \(error)")
            }
        }
        guard !lines.isEmpty else { throw UsageError("prompts file '\(path)' has no prompts") }
        return lines
    }

    /// The fields of a line, as JSON spells them.
    private struct Fields: Decodable {
        var prompt: String
        var max_tokens: Int?
        var temperature: Float?
        var top_k: Int?
        var top_p: Float?
        var min_p: Float?
        var repetition_penalty: Float?
        var presence_penalty: Float?
        var frequency_penalty: Float?
        var seed: UInt64?
        var stop: Stop?
    }

    /// `"stop"`: one string or a list of them.
    private struct Stop: Decodable {
        var strings: [String]
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) { strings = [one] } else { strings = try container.decode([String].self) }
        }
    }

    init(json: Data, defaults: SamplingParameters) throws {
        let f: Fields
        do {
            f = try JSONDecoder().decode(Fields.self, from: json)
        } catch let DecodingError.keyNotFound(key, _) {
            throw UsageError("missing field '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw UsageError("field '\(field)' has the wrong type")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw UsageError("field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' is invalid")
        } catch {
            throw UsageError("not a valid JSON object")
        }
        prompt = f.prompt
        var s = defaults
        if let v = f.temperature { s.temperature = v }
        if let v = f.top_k { s.topK = max(v, 0) }
        if let v = f.top_p { s.topP = v }
        if let v = f.min_p { s.minP = v }
        if let v = f.repetition_penalty { s.repetitionPenalty = v }
        if let v = f.presence_penalty { s.presencePenalty = v }
        if let v = f.frequency_penalty { s.frequencyPenalty = v }
        if let v = f.seed { s.seed = v }
        do { try s.validate() } catch { throw UsageError("\(error)") }
        sampling = s
        if let m = f.max_tokens, m < 0 { throw UsageError("'max_tokens' must be >= 0, got \(m)") }
        maxTokens = f.max_tokens
        stop = f.stop?.strings ?? []
    }
}
