import CKernels

/// Which positions of a forward pass produce logits.
public enum LogitsSelection: Sendable, Equatable {
    case last
    case all
    /// Positions `index ..< count` of the call.
    case from(Int)
}

/// A Llama-style decoder (llama, qwen2, gemma3): embeddings, `layerCount` pre-norm blocks of grouped-query attention
/// with RoPE and a gated MLP, a final RMSNorm and the output matrix, with the optional features of
/// `ModelConfiguration` (Q/K and post norms, sliding windows, GeGLU, scaled embeddings). Computes in FP32.
/// Not thread-safe: one engine loop owns a model together with its compute context and scratch buffers.
public final class TransformerModel {
    public let configuration: ModelConfiguration
    public let level: QuantLevel
    let weights: TransformerWeights
    let context: ComputeContext
    /// RoPE inverse frequencies of each layer (layers may differ in base and scaling).
    private let inverseFrequencies: [[Float]]
    /// Per layer, the products that share an input, made in one call each.
    private let groups: [(qkv: MatrixGroup, gateUp: MatrixGroup)]
    private var buffers: ForwardBuffers
    /// Sees the inputs of the linear layers as they are computed (calibration for AWQ); nil in normal runs.
    var observer: ((ActivationPoint, _ layer: Int, _ values: UnsafePointer<Float>, _ tokens: Int) -> Void)?

    /// A model at `level`; for `int4` the AWQ search result comes from the cache or is computed first.
    public convenience init(file: GGUFFile, level: QuantLevel, context: ComputeContext, calibrationText: String? = nil,
                            log: (String) -> Void = { _ in }) throws {
        try self.init(source: file as any ModelSource, level: level, context: context, calibrationText: calibrationText,
                      log: log)
    }

    /// A model at `level` from a GGUF file or a Hugging Face folder. For `int4` the AWQ search result comes from the
    /// cache or is computed first, except from a folder already quantized by AWQ, whose weights are used as stored.
    public convenience init(source: any ModelSource, level: QuantLevel, context: ComputeContext,
                            calibrationText: String? = nil, log: (String) -> Void = { _ in }) throws {
        let tensors = try source.tensors()
        var awq: AWQResult?
        if level == .int4 && source.storedLevel != .int4 {
            let tokenizer = try makeTokenizer(vocabulary: try source.tokenizerVocabulary())
            awq = try AWQCalibration.result(source: tensors, tokenizer: tokenizer, calibrationText: calibrationText,
                                            context: context, log: log)
        }
        try self.init(source: tensors, level: level, awq: awq, context: context)
    }

    init(source: any TensorSource, level: QuantLevel, awq: AWQResult?, context: ComputeContext) throws {
        let c = try source.configuration()
        configuration = c
        self.level = level
        self.context = context
        weights = try TransformerWeights(source: source, configuration: c, level: level, awq: awq)
        inverseFrequencies = (0..<c.layerCount).map { l in
            let a = c.attention(layer: l)
            return (0..<c.headDim / 2).map { i in
                Float(Double(a.ropeScale) / pow(Double(a.ropeBase), Double(2 * i) / Double(c.headDim)))
            }
        }
        groups = weights.layers.map { (MatrixGroup([$0.wq, $0.wk, $0.wv]), MatrixGroup([$0.gate, $0.up])) }
        buffers = ForwardBuffers(configuration: c, tokens: 1, positions: 1, threads: context.threads)
    }

    /// Bytes of resident weights.
    public var weightBytes: Int { weights.byteCount }

    /// Bytes one decoded token reads at a context of `positions` tokens: every weight but an untied embedding table
    /// (of which one row is read), and the cached keys and values of every layer.
    public func decodeBytesPerToken(positions: Int, cacheType: KVCacheType = .fp16) -> Int {
        let embedding = weights.output == nil ? 0 : weights.embedding.byteCount - weights.embedding.byteCount / weights.embedding.rows
        let blockSize = PagedKVCache.defaultBlockSize
        return weightBytes - embedding
            + positions * PagedKVCache.bytesPerBlock(configuration, blockSize: blockSize, type: cacheType) / blockSize
    }

    public func makeCache(capacity: Int, type: KVCacheType = .fp16) -> KVCache {
        KVCache(configuration: configuration, capacity: min(capacity, configuration.contextLength), type: type)
    }

    /// Runs `tokens` at the next positions of a single sequence's `cache` and returns logits: `[vocab]` for `.last`,
    /// `[tokens.count * vocab]` for `.all`, `[(tokens.count - i) * vocab]` for `.from(i)`.
    public func forward(_ tokens: [Int32], cache: KVCache, logits selection: LogitsSelection = .last) throws -> [Float] {
        let n = tokens.count
        guard n > 0 else { return [] }
        let first = firstLogitsRow(selection, count: n)
        return try [Float](unsafeUninitializedCapacity: (n - first) * configuration.vocabularySize) { out, initialized in
            try forward(tokens, cache: cache, logits: selection, into: out.baseAddress!)
            initialized = (n - first) * configuration.vocabularySize
        }
    }

    /// The same, writing the logits into `logits` (`[rows, vocab]` as above) instead of a new array.
    public func forward(_ tokens: [Int32], cache: KVCache, logits selection: LogitsSelection = .last,
                        into logits: UnsafeMutablePointer<Float>) throws {
        let n = tokens.count
        guard n > 0 else { return }
        guard cache.count + n <= cache.capacity else {
            throw ModelError.contextFull(needed: cache.count + n, capacity: cache.capacity)
        }
        var batch = ForwardBatch()
        let start = cache.count
        batch.append(tokens[...], from: start, blockTable: cache.blockTable[...], blockSize: cache.storage.blockSize,
                     logitsFrom: start + firstLogitsRow(selection, count: n))
        try forward(batch, cache: cache.storage, logits: logits)
        cache.count += n
    }

    private func firstLogitsRow(_ selection: LogitsSelection, count n: Int) -> Int {
        switch selection {
        case .last: n - 1
        case .all: 0
        case .from(let i): min(max(i, 0), n - 1)
        }
    }

    /// Runs one batch: every token's key and value go to its slot of `cache`, and the logits of `batch.logitRows`
    /// are written to `logits` (`[logitRows.count, vocab]`). A row's logits depend only on its own sequence.
    /// Throws what `forward` would throw for `batch` before computing anything: a token outside the vocabulary, a
    /// position past the context, a block outside the cache.
    public func check(_ batch: ForwardBatch, cache: PagedKVCache) throws {
        let c = configuration
        for t in batch.tokens where t < 0 || Int(t) >= c.vocabularySize {
            throw ModelError.tokenOutOfRange(t, vocabularySize: c.vocabularySize)
        }
        if let last = batch.positions.max(), Int(last) + 1 > c.contextLength {
            throw ModelError.contextFull(needed: Int(last) + 1, capacity: c.contextLength)
        }
        for t in batch.blockTables where t < 0 || Int(t) >= cache.blockCount {
            throw ModelError.blockOutOfRange(t, blockCount: cache.blockCount)
        }
    }

    public func forward(_ batch: ForwardBatch, cache: PagedKVCache, logits: UnsafeMutablePointer<Float>) throws {
        let c = configuration
        let n = batch.count
        guard n > 0 else { return }
        try check(batch, cache: cache)
        let maxPosition = Int(batch.positions.max()!) + 1
        buffers.ensure(tokens: n, positions: maxPosition, threads: context.threads)
        let b = buffers
        for (i, t) in batch.tokens.enumerated() { weights.embedding.copyRow(Int(t), into: b.x + i * c.hiddenSize) }
        if c.embeddingScale != 1 { for i in 0..<(n * c.hiddenSize) { b.x[i] *= c.embeddingScale } }

        batch.positions.withUnsafeBufferPointer { positions in
            batch.slots.withUnsafeBufferPointer { slots in
                batch.tableStarts.withUnsafeBufferPointer { tableStarts in
                    batch.blockTables.withUnsafeBufferPointer { tables in
                        let pages = PageTables(positions: positions.baseAddress!, slots: slots.baseAddress!,
                                               tableStarts: tableStarts.baseAddress!, tables: tables.baseAddress!)
                        for (l, layer) in weights.layers.enumerated() {
                            attentionBlock(layer, index: l, n: n, cache: cache, pages: pages)
                            mlpBlock(layer, index: l, n: n)
                        }
                    }
                }
            }
        }

        // The rows that want logits, gathered in order, normalised and projected.
        let rows = batch.logitRows.count
        guard rows > 0 else { return }
        let source: UnsafeMutablePointer<Float>
        if batch.logitRows.enumerated().allSatisfy({ Int($0.element) == $0.offset }) {
            source = b.x
        } else {
            // Rows ascend, so row i is copied from row >= i: no copy overwrites a row still to be read.
            for (i, r) in batch.logitRows.enumerated() {
                (b.h + i * c.hiddenSize).update(from: b.x + Int(r) * c.hiddenSize, count: c.hiddenSize)
            }
            source = b.h
        }
        qs_rmsnorm(source, source, weights.outputNorm, Int64(rows), Int64(c.hiddenSize), c.rmsNormEpsilon)
        project(weights.outputMatrix, source, n: rows, into: logits)
    }

    private func project(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, into out: UnsafeMutablePointer<Float>) {
        w.apply(x, n: n, into: out, context: context, scratch: buffers.scratch)
    }

    /// The batch's addressing into the paged cache, as C pointers for the kernels.
    private struct PageTables {
        let positions, slots, tableStarts, tables: UnsafePointer<Int32>
    }

    private func attentionBlock(_ layer: DecoderLayerWeights, index l: Int, n: Int, cache: PagedKVCache,
                                pages: PageTables) {
        let c = configuration
        let b = buffers
        let d = Int64(c.hiddenSize)
        qs_rmsnorm(b.h, b.x, layer.attentionNorm, Int64(n), d, c.rmsNormEpsilon)
        observer?(.attentionInput, l, b.h, n)
        groups[l].qkv.apply(b.h, n: n, into: b.q, b.k, b.v, context: context, scratch: buffers.scratch)
        if let bq = layer.bq { addBias(bq, to: b.q, n: n) }
        if let bk = layer.bk { addBias(bk, to: b.k, n: n) }
        if let bv = layer.bv { addBias(bv, to: b.v, n: n) }
        if let qNorm = layer.qNorm { qs_rmsnorm(b.q, b.q, qNorm, Int64(n * c.headCount), Int64(c.headDim), c.rmsNormEpsilon) }
        if let kNorm = layer.kNorm { qs_rmsnorm(b.k, b.k, kNorm, Int64(n * c.kvHeadCount), Int64(c.headDim), c.rmsNormEpsilon) }
        let neox: Int32 = c.ropePairing == .neox ? 1 : 0
        inverseFrequencies[l].withUnsafeBufferPointer { f in
            qs_rope(b.q, pages.positions, Int64(n), Int64(c.headCount), Int64(c.headDim), f.baseAddress, neox)
            qs_rope(b.k, pages.positions, Int64(n), Int64(c.kvHeadCount), Int64(c.headDim), f.baseAddress, neox)
        }
        var layerCache = cache.layer(l)
        qs_kv_store_layer(&layerCache, b.k, b.v, pages.slots, Int64(n), Int64(c.kvDim))
        qs_paged_attention_layer(context.pool, context.variant, b.attention, b.q, &layerCache, pages.positions,
                                 pages.tables, pages.tableStarts, Int64(n), attentionShape(layer: l, blockSize: cache.blockSize),
                                 b.scores, Int64(b.scoresPerThread))
        observer?(.attentionOutput, l, b.attention, n)
        project(layer.wo, b.attention, n: n, into: b.h)
        if let norm = layer.postAttentionNorm { qs_rmsnorm(b.h, b.h, norm, Int64(n), d, c.rmsNormEpsilon) }
        addInPlace(b.x, b.h, count: n * c.hiddenSize)
    }

    /// Layer `l`'s attention: its query scale and, on sliding-window layers, its window.
    func attentionShape(layer l: Int, blockSize: Int) -> qs_attention_shape {
        let c = configuration
        return qs_attention_shape(heads: Int64(c.headCount), kv_heads: Int64(c.kvHeadCount), head_dim: Int64(c.headDim),
                                  scale: c.queryScale, window: Int64(c.attention(layer: l).slidingWindow),
                                  block_size: Int64(blockSize))
    }

    private func mlpBlock(_ layer: DecoderLayerWeights, index l: Int, n: Int) {
        let c = configuration
        let b = buffers
        qs_rmsnorm(b.h, b.x, layer.ffnNorm, Int64(n), Int64(c.hiddenSize), c.rmsNormEpsilon)
        observer?(.mlpInput, l, b.h, n)
        groups[l].gateUp.apply(b.h, n: n, into: b.gate, b.up, context: context, scratch: buffers.scratch)
        switch c.activation {
        case .silu: qs_silu_mul(context.variant, b.gate, b.up, Int64(n * c.intermediateSize))
        case .geluTanh: qs_gelu_tanh_mul(context.variant, b.gate, b.up, Int64(n * c.intermediateSize))
        }
        observer?(.downInput, l, b.gate, n)
        project(layer.down, b.gate, n: n, into: b.h)
        if let norm = layer.postFFNNorm { qs_rmsnorm(b.h, b.h, norm, Int64(n), Int64(c.hiddenSize), c.rmsNormEpsilon) }
        addInPlace(b.x, b.h, count: n * c.hiddenSize)
    }

    private func addBias(_ bias: [Float], to x: UnsafeMutablePointer<Float>, n: Int) {
        bias.withUnsafeBufferPointer { bp in
            for i in 0..<n {
                let row = x + i * bp.count
                for j in 0..<bp.count { row[j] += bp[j] }
            }
        }
    }

    private func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] += y[i] }
    }
}

/// Where in a layer an observer sees activations: the inputs of its linear layers.
enum ActivationPoint: CaseIterable {
    /// Normalised input of Q, K and V (hidden size).
    case attentionInput
    /// Attention output, input of O (Q dimension).
    case attentionOutput
    /// Normalised input of gate and up (hidden size).
    case mlpInput
    /// silu(gate) * up, input of down (intermediate size).
    case downInput
}

public enum ModelError: Error, CustomStringConvertible, Equatable {
    case contextFull(needed: Int, capacity: Int)
    case tokenOutOfRange(Int32, vocabularySize: Int)
    case blockOutOfRange(Int32, blockCount: Int)

    public var description: String {
        switch self {
        case .contextFull(let needed, let capacity):
            "the sequence needs \(needed) positions but the context holds \(capacity)"
        case .tokenOutOfRange(let t, let v): "token id \(t) is outside the vocabulary of \(v)"
        case .blockOutOfRange(let b, let count): "KV block \(b) is outside the cache of \(count) blocks"
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
