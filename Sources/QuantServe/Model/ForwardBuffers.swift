import CKernels

/// Scratch memory of a forward pass, sized for the largest batch seen so far and reused across calls.
final class ForwardBuffers {
    let c: ModelConfiguration
    private(set) var tokenCapacity = 0
    private(set) var positionCapacity = 0
    private var storage: AlignedBuffer
    private var scoreStorage: AlignedBuffer

    private(set) var x, h, q, k, v, attention, gate, up: UnsafeMutablePointer<Float>
    private(set) var scores: UnsafeMutablePointer<Float>
    private(set) var scoresPerThread = 0
    /// Weight tiles for OpenBLAS and quantized activations for the integer kernels.
    let scratch: ScratchSpace

    init(configuration: ModelConfiguration, tokens: Int, positions: Int, threads: Int) {
        c = configuration
        scratch = ScratchSpace(tileFloats: max(1 << 20, configuration.intermediateSize * 16))
        storage = AlignedBuffer(byteCount: 64)
        scoreStorage = AlignedBuffer(byteCount: 64)
        x = storage.typed(Float.self); h = x; q = x; k = x; v = x; attention = x; gate = x; up = x
        scores = x
        ensure(tokens: tokens, positions: positions, threads: threads)
    }

    func ensure(tokens: Int, positions: Int, threads: Int) {
        if tokens > tokenCapacity {
            tokenCapacity = max(tokens, tokenCapacity * 2)
            let sizes = [c.hiddenSize, c.hiddenSize, c.qDim, c.kvDim, c.kvDim, c.qDim, c.intermediateSize, c.intermediateSize]
            storage = AlignedBuffer(count: sizes.reduce(0, +) * tokenCapacity, of: Float.self)
            var p = storage.typed(Float.self)
            var pointers: [UnsafeMutablePointer<Float>] = []
            for s in sizes { pointers.append(p); p += s * tokenCapacity }
            (x, h, q, k, v) = (pointers[0], pointers[1], pointers[2], pointers[3], pointers[4])
            (attention, gate, up) = (pointers[5], pointers[6], pointers[7])
        }
        if positions > positionCapacity {
            positionCapacity = max(positions, positionCapacity * 2, 256)
            let shape = qs_attention_shape(heads: Int64(c.headCount), kv_heads: Int64(c.kvHeadCount),
                                           head_dim: Int64(c.headDim), scale: 1, window: 0, block_size: 1)
            scoresPerThread = Int(qs_attention_scratch(shape, Int64(positionCapacity)))
            scoreStorage = AlignedBuffer(count: scoresPerThread * threads, of: Float.self)
            scores = scoreStorage.typed(Float.self)
        }
    }
}
