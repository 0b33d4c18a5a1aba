/// Scratch memory of a forward pass, sized for the largest batch seen so far and reused across calls.
final class ForwardBuffers {
    let c: ModelConfiguration
    private(set) var tokenCapacity = 0
    private(set) var positionCapacity = 0
    private var storage: AlignedBuffer
    private var scoreStorage: AlignedBuffer
    private var positionStorage: AlignedBuffer

    private(set) var x, h, q, attention, gate, up: UnsafeMutablePointer<Float>
    private(set) var scores: UnsafeMutablePointer<Float>
    private(set) var scoresPerThread = 0
    private(set) var positions: UnsafeMutablePointer<Int32>
    /// Weight tiles for OpenBLAS and quantized activations for the integer kernels.
    let scratch: ScratchSpace

    init(configuration: ModelConfiguration, tokens: Int, positions: Int, threads: Int) {
        c = configuration
        scratch = ScratchSpace(tileFloats: max(1 << 20, configuration.intermediateSize * 16))
        storage = AlignedBuffer(byteCount: 64)
        scoreStorage = AlignedBuffer(byteCount: 64)
        positionStorage = AlignedBuffer(byteCount: 64)
        x = storage.typed(Float.self); h = x; q = x; attention = x; gate = x; up = x
        scores = x
        self.positions = positionStorage.typed(Int32.self)
        ensure(tokens: tokens, positions: positions, threads: threads)
    }

    func ensure(tokens: Int, positions: Int, threads: Int) {
        if tokens > tokenCapacity {
            tokenCapacity = max(tokens, tokenCapacity * 2)
            let sizes = [c.hiddenSize, c.hiddenSize, c.qDim, c.qDim, c.intermediateSize, c.intermediateSize]
            storage = AlignedBuffer(count: sizes.reduce(0, +) * tokenCapacity, of: Float.self)
            var p = storage.typed(Float.self)
            var pointers: [UnsafeMutablePointer<Float>] = []
            for s in sizes { pointers.append(p); p += s * tokenCapacity }
            (x, h, q, attention, gate, up) = (pointers[0], pointers[1], pointers[2], pointers[3], pointers[4], pointers[5])
            positionStorage = AlignedBuffer(count: tokenCapacity, of: Int32.self)
            self.positions = positionStorage.typed(Int32.self)
        }
        if positions > positionCapacity {
            positionCapacity = max(positions, positionCapacity * 2, 256)
            scoresPerThread = positionCapacity
            scoreStorage = AlignedBuffer(count: positionCapacity * threads, of: Float.self)
            scores = scoreStorage.typed(Float.self)
        }
    }
}
