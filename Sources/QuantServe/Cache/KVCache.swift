/// The keys and values of one sequence, contiguous per layer: `[layer][position][kvDim]` in FP32.
/// (The paged, shared cache of the batching engine replaces this for served requests.)
public final class KVCache {
    public let capacity: Int
    let layerCount: Int
    let kvDim: Int
    let keys: AlignedBuffer
    let values: AlignedBuffer
    /// Positions filled so far.
    public internal(set) var count = 0

    public init(configuration c: ModelConfiguration, capacity: Int) {
        self.capacity = capacity
        layerCount = c.layerCount
        kvDim = c.kvDim
        keys = AlignedBuffer(count: c.layerCount * capacity * c.kvDim, of: Float.self)
        values = AlignedBuffer(count: c.layerCount * capacity * c.kvDim, of: Float.self)
    }

    public var byteCount: Int { keys.byteCount + values.byteCount }

    func keys(layer: Int) -> UnsafeMutablePointer<Float> { keys.typed(Float.self) + layer * capacity * kvDim }
    func values(layer: Int) -> UnsafeMutablePointer<Float> { values.typed(Float.self) + layer * capacity * kvDim }

    public func reset() { count = 0 }
}
