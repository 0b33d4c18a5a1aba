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
}

/// The whole search result, cached on disk as JSON beside the model (keyed by source file and settings).
struct AWQResult: Codable, Sendable, Equatable {
    static let formatVersion = 3
    var version = AWQResult.formatVersion
    var key: String
    var layers: [AWQLayer]
}
