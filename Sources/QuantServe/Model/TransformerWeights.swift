import CKernels
import Dispatch

/// The weights of one decoder layer.
struct DecoderLayerWeights: Sendable {
    var attentionNorm: [Float]
    var wq, wk, wv, wo: WeightMatrix
    var bq, bk, bv: [Float]?
    var ffnNorm: [Float]
    var gate, up, down: WeightMatrix
    /// Per-head Q and K norms (headDim), when the configuration has them.
    var qNorm: [Float]? = nil
    var kNorm: [Float]? = nil
    /// Norms of the attention and MLP outputs (hidden size), when the configuration has them.
    var postAttentionNorm: [Float]? = nil
    var postFFNNorm: [Float]? = nil

    /// The norm vectors that are optional features.
    var optionalNorms: [[Float]] { [qNorm, kNorm, postAttentionNorm, postFFNNorm].compactMap { $0 } }
}

/// All weights of a Llama-style model, at one quantization level, read from a GGUF file or a Hugging Face folder.
struct TransformerWeights: Sendable {
    var embedding: WeightMatrix
    var layers: [DecoderLayerWeights]
    var outputNorm: [Float]
    /// nil when tied to `embedding`.
    var output: WeightMatrix?

    var outputMatrix: WeightMatrix { output ?? embedding }

    var byteCount: Int {
        let vectors = layers.reduce(outputNorm.count) { sum, l in
            sum + l.attentionNorm.count + l.ffnNorm.count + (l.bq?.count ?? 0) + (l.bk?.count ?? 0) + (l.bv?.count ?? 0)
                + l.optionalNorms.reduce(0) { $0 + $1.count }
        } * 4
        let matrices = layers.reduce(embedding.byteCount + (output?.byteCount ?? 0)) { sum, l in
            sum + [l.wq, l.wk, l.wv, l.wo, l.gate, l.up, l.down].reduce(0) { $0 + $1.byteCount }
        }
        return vectors + matrices
    }

    /// `awq`: scales and clipping bounds from an AWQ search, applied as the weights are read (int4 only).
    init(source: any TensorSource, configuration c: ModelConfiguration, level: QuantLevel, awq: AWQResult? = nil) throws {
        let loader = WeightLoader(source: source, level: level)
        // A tied embedding is also the output matrix, so it takes the output's format.
        // Everything loads in parallel, the two large matrices beside the layers: dequantization and quantization
        // are the bulk of start-up time.
        let outer = Slots<WeightMatrix?>(count: 2)
        let results = Slots<DecoderLayerWeights>(count: c.layerCount)
        DispatchQueue.concurrentPerform(iterations: c.layerCount + 2) { i in
            switch i {
            case 0:
                outer.set(0, Result { try loader.matrix("token_embd.weight", rows: c.vocabularySize, cols: c.hiddenSize, isOutput: c.tiedOutput) })
            case 1:
                outer.set(1, Result { c.tiedOutput ? nil : try loader.matrix("output.weight", rows: c.vocabularySize, cols: c.hiddenSize, isOutput: true) })
            default:
                results.set(i - 2, Result { try loader.layer(i - 2, c, awq: awq?.layers[i - 2]) })
            }
        }
        embedding = try outer.values[0]!.get()!
        output = try outer.values[1]!.get()
        outputNorm = try loader.vector("output_norm.weight", count: c.hiddenSize)
        layers = try results.values.map { try $0!.get() }
    }
}

/// Per-index result slots written by `concurrentPerform`, each index by one iteration only.
/// `@unchecked Sendable`: every slot is written once, by one thread, before `values` is read.
private final class Slots<T>: @unchecked Sendable {
    private var slots: [Result<T, Error>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<T, Error>) { slots.withUnsafeMutableBufferPointer { $0[i] = r } }
    var values: [Result<T, Error>?] { slots }
}

/// Reads tensors by their GGUF names (each source maps them to its own) as vectors or weight matrices, checking shapes.
struct WeightLoader: Sendable {
    let source: any TensorSource
    let level: QuantLevel

    func vector(_ name: String, count: Int) throws -> [Float] {
        try source.vector(name, count: count)
    }

    func optionalVector(_ name: String, count: Int) throws -> [Float]? {
        source.contains(name) ? try vector(name, count: count) : nil
    }

    /// A `[rows, cols]` matrix (GGUF `ne = [cols, rows]`), its columns multiplied by `columnScales` and its rows
    /// divided by `rowDivisors` (AWQ's folded scales) before it is quantized, Q4 groups clipped to `clip`.
    /// A matrix stored pre-quantized in the level's packing is taken as it is. Every matrix comes out in the layout
    /// the kernels in use want (`forKernels`).
    func matrix(_ name: String, rows: Int, cols: Int, isOutput: Bool = false, columnScales: [Float]? = nil,
                rowDivisors: [Float]? = nil, clip: [Float]? = nil, rounded: WeightMatrix? = nil) throws -> WeightMatrix {
        if level == .native {
            let matrix = try source.nativeMatrix(name, rows: rows, cols: cols)
            source.releasePages(name)
            return matrix
        }
        let format = level.format(cols: cols, isOutput: isOutput)
        if let rounded, rounded.format == format { return rounded.forKernels() }
        if columnScales == nil, rowDivisors == nil, clip == nil,
           let stored = try source.storedMatrix(name, rows: rows, cols: cols, level: level, format: format) {
            return stored.forKernels()
        }
        let reader = try source.matrixRows(name, rows: rows, cols: cols)
        let matrix = try WeightMatrix(rows: rows, cols: cols, format: format, clip: format.kind == QS_FORMAT_Q4 ? clip : nil) { range, destination in
            try reader.read(range, destination)
            for (i, r) in range.enumerated() {
                let row = destination + i * cols
                if let columnScales { for j in 0..<cols { row[j] *= columnScales[j] } }
                if let rowDivisors { let inv = 1 / rowDivisors[r]; for j in 0..<cols { row[j] *= inv } }
            }
        }.forKernels()
        source.releasePages(name)
        return matrix
    }

    func layer(_ i: Int, _ c: ModelConfiguration, awq: AWQLayer? = nil) throws -> DecoderLayerWeights {
        let p = "blk.\(i)."
        func divided(_ v: [Float], by s: [Float]?) -> [Float] {
            guard let s else { return v }
            return zip(v, s).map { $0 / $1 }
        }
        var bv = c.hasQKVBias ? try vector(p + "attn_v.bias", count: c.kvDim) : try optionalVector(p + "attn_v.bias", count: c.kvDim)
        bv = bv.map { divided($0, by: awq?.outputScales) }
        // Read only where the configuration has the feature (a norm tensor another architecture happens to hold
        // is not applied by guesswork).
        func featureNorm(_ name: String, count: Int, enabled: Bool) throws -> [Float]? {
            enabled ? try vector(p + name, count: count) : nil
        }
        var layer = DecoderLayerWeights(
            attentionNorm: divided(try vector(p + "attn_norm.weight", count: c.hiddenSize), by: awq?.attentionScales),
            wq: try matrix(p + "attn_q.weight", rows: c.qDim, cols: c.hiddenSize, columnScales: awq?.attentionScales, rounded: awq?.rounded["q"]),
            wk: try matrix(p + "attn_k.weight", rows: c.kvDim, cols: c.hiddenSize, columnScales: awq?.attentionScales, rounded: awq?.rounded["k"]),
            wv: try matrix(p + "attn_v.weight", rows: c.kvDim, cols: c.hiddenSize, columnScales: awq?.attentionScales,
                           rowDivisors: awq?.outputScales, clip: awq?.clips["v"], rounded: awq?.rounded["v"]),
            wo: try matrix(p + "attn_output.weight", rows: c.hiddenSize, cols: c.qDim, columnScales: awq?.outputScales,
                           clip: awq?.clips["o"], rounded: awq?.rounded["o"]),
            bq: c.hasQKVBias ? try vector(p + "attn_q.bias", count: c.qDim) : try optionalVector(p + "attn_q.bias", count: c.qDim),
            bk: c.hasQKVBias ? try vector(p + "attn_k.bias", count: c.kvDim) : try optionalVector(p + "attn_k.bias", count: c.kvDim),
            bv: bv,
            ffnNorm: divided(try vector(p + "ffn_norm.weight", count: c.hiddenSize), by: awq?.mlpScales),
            gate: try matrix(p + "ffn_gate.weight", rows: c.intermediateSize, cols: c.hiddenSize,
                             columnScales: awq?.mlpScales, clip: awq?.clips["gate"], rounded: awq?.rounded["gate"]),
            up: try matrix(p + "ffn_up.weight", rows: c.intermediateSize, cols: c.hiddenSize,
                           columnScales: awq?.mlpScales, rowDivisors: awq?.downScales, clip: awq?.clips["up"], rounded: awq?.rounded["up"]),
            down: try matrix(p + "ffn_down.weight", rows: c.hiddenSize, cols: c.intermediateSize,
                             columnScales: awq?.downScales, clip: awq?.clips["down"], rounded: awq?.rounded["down"])
        )
        layer.qNorm = try featureNorm("attn_q_norm.weight", count: c.headDim, enabled: c.hasQKNorm)
        layer.kNorm = try featureNorm("attn_k_norm.weight", count: c.headDim, enabled: c.hasQKNorm)
        layer.postAttentionNorm = try featureNorm("post_attention_norm.weight", count: c.hiddenSize, enabled: c.hasPostNorms)
        layer.postFFNNorm = try featureNorm("post_ffw_norm.weight", count: c.hiddenSize, enabled: c.hasPostNorms)
        return layer
    }
}
