/// How byte-level BPE text is split into words before merging (`tokenizer.ggml.pre`). Each case is a hand-written
/// scanner over code points that reproduces the regex llama.cpp uses for it (Swift `Regex` works on grapheme
/// clusters, which would glue a combining mark or a CR LF pair into one unit; the regexes work on code points).
enum PreTokenizer: Sendable, Equatable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama 3 (`llama-bpe`): `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|`
    /// `\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Qwen2: the Llama 3 regex with `\p{N}` (one digit per word) instead of `\p{N}{1,3}`.
    case qwen2
    /// llama.cpp's fallback for `default` or a missing name: four regexes applied one after another, each splitting
    /// the pieces the previous one left: `[\p{P}\$\+<=>\^~\|]+`, the GPT-2 regex, `\p{N}+`, `[0-9][0-9][0-9]`.
    case llamaCppDefault

    /// What a `tokenizer.ggml.pre` name implies, following llama.cpp's llama-vocab.cpp.
    struct Configuration: Sendable, Equatable {
        var preTokenizer: PreTokenizer
        /// A whole word that is itself a vocabulary entry is emitted without merging.
        var ignoreMerges = false
        /// llama.cpp's default for `add_bos_token` when the file does not say.
        var addsBOSByDefault = false
    }

    /// The names accepted, grouped as llama.cpp groups them.
    static let namesByKind: [(names: [String], configuration: Configuration)] = [
        (["default"], Configuration(preTokenizer: .llamaCppDefault)),
        (["gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais", "exaone4", "trillion", "granite-docling", "jina-es",
          "jina-de", "jina-v2-es", "jina-v2-de", "gigachat", "a.x-4.0", "mellum", "modern-bert"],
         Configuration(preTokenizer: .gpt2)),
        (["llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
         Configuration(preTokenizer: .llama3, ignoreMerges: true, addsBOSByDefault: true)),
        (["dbrx", "smaug-bpe"], Configuration(preTokenizer: .llama3)),
        (["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open", "grok-2"],
         Configuration(preTokenizer: .qwen2)),
    ]

    static var supportedNames: [String] { namesByKind.flatMap(\.names) }

    /// The configuration for a `tokenizer.ggml.pre` value; nil or empty means llama.cpp's default.
    static func configuration(named name: String?) throws(TokenizerError) -> Configuration {
        guard let name, !name.isEmpty else { return Configuration(preTokenizer: .llamaCppDefault) }
        for group in namesByKind where group.names.contains(name) {
            return group.configuration
        }
        throw .unsupportedPreTokenizer(name: name, supported: supportedNames)
    }

    /// Splits `text[range]` into words and appends the end index (in code points) of each word to `ends`.
    func split(_ text: ScalarText, range: Range<Int>, into ends: inout [Int]) {
        text.values.withUnsafeBufferPointer { values in
            text.classes.withUnsafeBufferPointer { classes in
                let scan = PreTokenizerScanner(values: values, classes: classes)
                switch self {
                case .gpt2:
                    scan.gpt2(range, into: &ends)
                case .llama3:
                    scan.llama3(range, maxDigits: 3, into: &ends)
                case .qwen2:
                    scan.llama3(range, maxDigits: 1, into: &ends)
                case .llamaCppDefault:
                    var pieces: [Int] = []
                    scan.splitRuns(range, of: .punctuationRun, into: &pieces)
                    pieces = scan.eachPiece(range.lowerBound, pieces) { scan.gpt2($0, into: &$1) }
                    pieces = scan.eachPiece(range.lowerBound, pieces) { scan.splitRuns($0, of: .number, into: &$1) }
                    pieces = scan.eachPiece(range.lowerBound, pieces) { scan.splitThreeASCIIDigits($0, into: &$1) }
                    ends.append(contentsOf: pieces)
                }
            }
        }
    }

    /// Convenience for tests and tools: the words of `string` as strings.
    func words(_ string: String) -> [String] {
        let bytes = Array(string.utf8)
        return bytes.withUnsafeBufferPointer { buffer in
            let text = ScalarText(utf8: buffer)
            var ends: [Int] = []
            split(text, range: 0..<text.count, into: &ends)
            var start = 0
            return ends.map { end in
                let lo = Int(text.byteOffsets[start]), hi = Int(text.byteOffsets[end])
                start = end
                return String(decoding: buffer[lo..<hi], as: UTF8.self)
            }
        }
    }
}
