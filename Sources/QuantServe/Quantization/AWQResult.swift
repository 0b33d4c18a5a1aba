/// What the AWQ search found for one decoder layer: per-input-channel scales folded into the preceding
/// norm or linear, and per-(row, group) clipping bounds for the int4 quantizer.
struct AWQLayer: Sendable, Equatable {
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
    /// loader.
    var rounded: [String: WeightMatrix] = [:]

    static func == (a: AWQLayer, b: AWQLayer) -> Bool {
        a.attentionScales == b.attentionScales && a.outputScales == b.outputScales && a.mlpScales == b.mlpScales
            && a.downScales == b.downScales && a.clips == b.clips
            && a.rounded.keys.sorted() == b.rounded.keys.sorted() && a.rounded.allSatisfy { $0.value.hasSameContents(as: b.rounded[$0.key]!) }
    }
}

/// The whole search result, cached on disk (keyed by source file and settings): the layers in a safetensors file
/// (`AWQResultFile`), and beside it a JSON of the key, the version and the layer count, written last.
struct AWQResult: Codable, Sendable, Equatable {
    static let formatVersion = 5
    var version = AWQResult.formatVersion
    var key: String
    var layers: [AWQLayer]

    init(key: String, layers: [AWQLayer]) {
        self.key = key
        self.layers = layers
    }

    enum CodingKeys: String, CodingKey { case version, key, layerCount }

    /// The JSON part: the layers are empty until read from their file.
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        key = try c.decode(String.self, forKey: .key)
        let count = try c.decode(Int.self, forKey: .layerCount)
        guard (0...100_000).contains(count) else {
            throw DecodingError.dataCorruptedError(forKey: .layerCount, in: c, debugDescription: "layer count \(count)")
        }
        layers = Array(repeating: AWQLayer(attentionScales: [], outputScales: nil, mlpScales: [], downScales: [], clips: [:]),
                       count: count)
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(key, forKey: .key)
        try c.encode(layers.count, forKey: .layerCount)
    }
}
