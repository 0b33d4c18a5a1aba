/// The keys and values of every sequence the engine serves, in fixed-size blocks of fp16:
/// per layer, `keys` and `values` are `[blockCount][blockSize][kvDim]`. Which block holds what is the
/// `BlockManager`'s business; this type is only the memory.
public final class PagedKVCache {
    public static let defaultBlockSize = 16

    /// Blocks that hold `tokens` tokens.
    public static func blocks(for tokens: Int, blockSize: Int = defaultBlockSize) -> Int {
        (tokens + blockSize - 1) / blockSize
    }

    public let blockSize: Int
    public let blockCount: Int
    let layerCount: Int
    let kvDim: Int
    private let keys: AlignedBuffer
    private let values: AlignedBuffer

    public init(configuration c: ModelConfiguration, blockCount: Int, blockSize: Int = PagedKVCache.defaultBlockSize) {
        precondition(blockCount > 0 && blockSize > 0, "a KV cache needs at least one block")
        self.blockSize = blockSize
        self.blockCount = blockCount
        layerCount = c.layerCount
        kvDim = c.kvDim
        let count = c.layerCount * blockCount * blockSize * c.kvDim
        // Not zeroed: a slot is always written before it is read, and untouched pages cost nothing.
        keys = AlignedBuffer(byteCount: count * MemoryLayout<UInt16>.stride, zeroed: false)
        values = AlignedBuffer(byteCount: count * MemoryLayout<UInt16>.stride, zeroed: false)
    }

    /// Bytes of one block across all layers, keys and values.
    public static func bytesPerBlock(_ c: ModelConfiguration, blockSize: Int = defaultBlockSize) -> Int {
        2 * c.layerCount * blockSize * c.kvDim * MemoryLayout<UInt16>.stride
    }

    public var byteCount: Int { keys.byteCount + values.byteCount }
    public var tokenCapacity: Int { blockCount * blockSize }

    func keys(layer: Int) -> UnsafeMutablePointer<UInt16> { keys.typed(UInt16.self) + layer * tokenCapacity * kvDim }
    func values(layer: Int) -> UnsafeMutablePointer<UInt16> { values.typed(UInt16.self) + layer * tokenCapacity * kvDim }
}
