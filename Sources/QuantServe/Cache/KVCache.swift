/// The cache of one sequence run on its own (perplexity, calibration, the single-stream benchmark): a paged cache
/// whose blocks all belong to that sequence, in order.
public final class KVCache {
    public let capacity: Int
    let storage: PagedKVCache
    let blockTable: [Int32]
    /// Positions filled so far.
    public internal(set) var count = 0

    public init(configuration c: ModelConfiguration, capacity: Int, type: KVCacheType = .fp16) {
        let blocks = max(1, PagedKVCache.blocks(for: capacity))
        storage = PagedKVCache(configuration: c, blockCount: blocks, type: type)
        blockTable = (0..<Int32(blocks)).map { $0 }
        self.capacity = capacity
    }

    public var byteCount: Int { storage.byteCount }

    public func reset() { count = 0 }
}
