import Foundation
import QuantServeJSON

/// What `bench serve` sends: one prompt per request, as token ids (exact input lengths, on `/v1/completions`) or as
/// text (chat, or a dataset's prompts), each with the output length it asks for.
public struct ServePrompt: Sendable, Equatable {
    public enum Content: Sendable, Equatable {
        case tokens([Int])
        case text(String)
        case messages(JSONValue)
    }
    public var content: Content
    public var outputTokens: Int
    /// The prompt's length in tokens where known before sending (random prompts); the server's usage otherwise.
    public var inputTokens: Int?

    public init(content: Content, outputTokens: Int, inputTokens: Int? = nil) {
        self.content = content
        self.outputTokens = outputTokens
        self.inputTokens = inputTokens
    }
}

public enum ServeWorkloadError: Error, CustomStringConvertible, Equatable {
    case dataset(line: Int, String)
    case unreadable(String)
    case tokenizer(String)

    public var description: String {
        switch self {
        case .dataset(let line, let why): "dataset line \(line): \(why)"
        case .unreadable(let path): "cannot read the dataset '\(path)'"
        case .tokenizer(let why): "random prompts of a given token length need the server's /tokenize (\(why)); give --dataset FILE.jsonl instead"
        }
    }
}

public enum ServeWorkload {
    /// Plain English and code, tokenized by the server once; random prompts are windows of its tokens.
    static let corpus = """
    The quick brown fox jumps over the lazy dog while the committee reviews the quarterly budget and the weather \
    turns cold. def merge_sorted(a, b):\n    result = []\n    i = j = 0\n    while i < len(a) and j < len(b):\n \
           if a[i] <= b[j]:\n            result.append(a[i]); i += 1\n        else:\n            result.append(b[j]); \
    j += 1\n    return result + a[i:] + b[j:]\nA hash map stores keys and values in buckets chosen by a hash function; \
    when two keys share a bucket, the map resolves the collision by chaining or by probing for the next free slot. \
    Memory bandwidth, not arithmetic, limits how fast a small language model generates text on a CPU, so every byte \
    of weights saved by quantization turns into speed. SELECT name, count(*) FROM orders GROUP BY name ORDER BY 2 DESC; \
    Photosynthesis converts light energy into chemical energy stored in glucose, releasing oxygen as a by-product. \
    for (int k = 0; k < n; k++) { sum += x[k] * w[k]; } The museum opens at nine, closes at five, and is free on Sundays.
    """

    /// Random prompts of exactly `inputTokens` tokens each: windows of the corpus's token ids (through the server's
    /// `/tokenize`), starting at seeded random offsets. For chat the windows go back to text through `/detokenize`.
    public static func randomPrompts(count: Int, inputTokens: Int, outputTokens: Int, chat: Bool, seed: UInt64,
                                     client: ServeClient) throws -> [ServePrompt] {
        let ids: [Int]
        do { ids = try client.tokenize(corpus) } catch { throw ServeWorkloadError.tokenizer("\(error)") }
        guard ids.count > 16 else { throw ServeWorkloadError.tokenizer("it returned \(ids.count) tokens") }
        var random = SplitMix64(seed: seed)
        return try (0..<count).map { _ in
            let start = Int(random.next() % UInt64(ids.count))
            let window = (0..<inputTokens).map { ids[(start + $0) % ids.count] }
            if chat {
                let text: String
                do { text = try client.detokenize(window) } catch { throw ServeWorkloadError.tokenizer("/detokenize: \(error)") }
                return ServePrompt(content: .text(text), outputTokens: outputTokens)
            }
            return ServePrompt(content: .tokens(window), outputTokens: outputTokens, inputTokens: inputTokens)
        }
    }

    /// Prompts from a JSONL file, one object per line: `{"prompt": "..."}` or `{"messages": [...]}`, with an
    /// optional `"max_tokens"` (else `outputTokens`). Taken in order, repeated to `count` when the file is shorter.
    public static func dataset(path: String, count: Int, outputTokens: Int) throws -> [ServePrompt] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ServeWorkloadError.unreadable(path) }
        var prompts: [ServePrompt] = []
        for (index, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            let trimmed = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let value: JSONValue
            do { value = try JSONValue.parse(Array(trimmed.utf8)) } catch {
                throw ServeWorkloadError.dataset(line: index + 1, "\(error)")
            }
            let output: Int
            if let m = value["max_tokens"] {
                guard let n = m.int, n > 0 else { throw ServeWorkloadError.dataset(line: index + 1, "'max_tokens' must be a positive integer") }
                output = n
            } else {
                output = outputTokens
            }
            if let text = value["prompt"]?.string {
                prompts.append(ServePrompt(content: .text(text), outputTokens: output))
            } else if let messages = value["messages"], messages.array?.isEmpty == false {
                prompts.append(ServePrompt(content: .messages(messages), outputTokens: output))
            } else {
                throw ServeWorkloadError.dataset(line: index + 1, "needs \"prompt\" (a string) or \"messages\" (a list)")
            }
        }
        guard !prompts.isEmpty else { throw ServeWorkloadError.dataset(line: 0, "no prompts in '\(path)'") }
        return (0..<count).map { prompts[$0 % prompts.count] }
    }

    /// Arrival offsets (seconds from the start) of a Poisson process at `rate` requests per second.
    public static func poissonArrivals(count: Int, rate: Double, seed: UInt64) -> [Double] {
        var random = SplitMix64(seed: seed)
        var t = 0.0
        return (0..<count).map { _ in
            defer {
                let u = (Double(random.next() >> 11) + 0.5) / Double(1 << 53)
                t += -log(u) / rate
            }
            return t
        }
    }
}

/// A small seeded generator (SplitMix64): the same prompts and arrivals for the same seed on every machine.
public struct SplitMix64 {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
