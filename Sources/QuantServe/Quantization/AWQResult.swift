/// What the AWQ search found for one decoder layer: per-input-channel scales folded into the preceding
/// norm or linear, and per-(row, group) clipping bounds for the int4 quantizer.
struct AWQLayer: Codable, Sendable, Equatable {
    /// Hidden size: Q, K, V columns multiplied, attn_norm divided.
    var attentionScales: [Float]
    /// Q dimension: O columns multiplied, V rows (and bias) divided. Only when V and O have matching shapes.
    var outputScales: [Float]?
    /// Hidden size: gate and up columns multiplied, ffn_norm divided.
    var mlpScales: [Float]
    /// Intermediate size: down columns multiplied, up rows divided.
    var downScales: [Float]
    /// Linear name (`v`, `o`, `gate`, `up`, `down`) → max |w| per (row, group) of the scaled weights.
    var clips: [String: [Float]]
    /// Linear name (`q`, `k`, `v`, `o`, `gate`, `up`, `down`) → the int4 matrix GPTQ rounded, used as it is by the
    /// loader. Cached in a safetensors file beside the JSON (`RoundedMatrixFile`), not in it.
    var rounded: [String: WeightMatrix] = [:]

    enum CodingKeys: String, CodingKey { case attentionScales, outputScales, mlpScales, downScales, clips }

    static func == (a: AWQLayer, b: AWQLayer) -> Bool {
        a.attentionScales == b.attentionScales && a.outputScales == b.outputScales && a.mlpScales == b.mlpScales
            && a.downScales == b.downScales && a.clips == b.clips
            && a.rounded.keys.sorted() == b.rounded.keys.sorted() && a.rounded.allSatisfy { $0.value.hasSameContents(as: b.rounded[$0.key]!) }
    }
}

/// The whole search result, cached on disk as JSON beside the model (keyed by source file and settings).
struct AWQResult: Codable, Sendable, Equatable {
    static let formatVersion = 4
    var version = AWQResult.formatVersion
    var key: String
    var layers: [AWQLayer]
}
