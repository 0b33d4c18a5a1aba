import Foundation
import QuantServe

struct InspectCommand: Command {
    static let name = "inspect"
    static let summary = "print a model's architecture, sizes, tensor types, tokenizer and memory needs"
    static let options: [OptionSpec] = [.model]

    static func run(_ arguments: ParsedArguments) throws {
        let path = try arguments.required("model")
        let (source, tokenizer) = try ModelLoader.tokenizer(path: path)
        let c = try source.configuration()
        let mib = { (bytes: Int) in String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
        let name = (source as? GGUFFile)?.metadata["general.name"]?.stringValue ?? "-"
        var lines = [
            "file: \(path) (\(source.summary))",
            "name: \(name)",
            "architecture: \(c.architecture)",
            "parameters: \(c.parameterCount) (\(String(format: "%.0f", Double(c.parameterCount) / 1e6)) M)",
            "layers: \(c.layerCount), hidden: \(c.hiddenSize), ffn: \(c.intermediateSize)",
            "heads: \(c.headCount) (kv \(c.kvHeadCount)), head dim: \(c.headDim), rope: base \(c.ropeBase), \(c.ropePairing.rawValue) pairs",
            "context length: \(c.contextLength), rms eps: \(c.rmsNormEpsilon), output: \(c.tiedOutput ? "tied to embeddings" : "own matrix")",
            "layer features: \(features(c))",
            "stored level: \(source.storedLevel?.rawValue ?? (source.defaultLevel == .native ? "the file's own types (native)" : "none (float weights)")), default level: \(source.defaultLevel.rawValue)",
            "tokenizer: \(tokenizer.summary)",
        ]
        let kvPerToken = 2 * c.layerCount * c.kvDim * 4
        if let gguf = source as? GGUFFile {
            lines.append("tensor types: " + gguf.typeBytes.map { "\($0.type.name) \($0.tensors) (\(mib($0.bytes)))" }.joined(separator: ", "))
        }
        for level in QuantLevel.allCases {
            guard let bytes = c.weightBytes(at: level) ?? (source as? GGUFFile)?.nativeWeightBytes else { continue }
            lines.append("memory at \(level.rawValue): weights \(mib(bytes)) + KV cache \(mib(kvPerToken * 4096)) at 4096 tokens")
        }
        print(lines.joined(separator: "\n"))
    }

    /// The optional features of the configuration, in a line (`plain` for none).
    static func features(_ c: ModelConfiguration) -> String {
        var parts: [String] = []
        if c.embeddingScale != 1 { parts.append(String(format: "embeddings x %.4g", c.embeddingScale)) }
        if c.hasQKNorm { parts.append("q/k norms") }
        if c.hasPostNorms { parts.append("post norms") }
        parts.append(c.activation == .silu ? "SwiGLU" : "GeGLU (tanh)")
        parts.append(String(format: "query scale %.4g", c.queryScale))
        let local = c.layerAttention.filter { $0.slidingWindow > 0 }
        if let first = local.first {
            let global = c.layerAttention.filter { $0.slidingWindow == 0 }
            parts.append("\(local.count) layers with a \(first.slidingWindow)-token sliding window (rope base \(first.ropeBase)), "
                         + "\(global.count) global (rope base \(global.first?.ropeBase ?? c.ropeBase))")
        }
        return parts.joined(separator: ", ")
    }
}
