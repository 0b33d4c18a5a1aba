/// Which KV blocks are in use, by how many sequences, and which full blocks hold a known prefix.
///
/// A block with references belongs to running sequences. A block without references is free: either empty, or
/// still holding a cached prefix that a later prompt may reuse. Allocation takes an empty block first, then evicts
/// the least recently released cached one. A full block is identified by a hash chained over its token ids and
/// every token before it, so equal hashes mean equal prefixes (barring a 64-bit collision; the block's own token ids
/// are compared too).
public struct BlockManager: Sendable {
    public let blockSize: Int
    public let blockCount: Int

    private var referenceCounts: [Int32]
    /// The prefix hash of a block that holds a full, registered block of tokens.
    private var hashes: [UInt64?]
    private var blockTokens: [[Int32]]
    private var blockByHash: [UInt64: Int32] = [:]
    /// Free blocks holding nothing reusable.
    private var empty: [Int32]
    /// Free blocks holding a cached prefix, least recently released first (an intrusive doubly linked list).
    private var lruPrevious: [Int32]
    private var lruNext: [Int32]
    private var lruHead: Int32 = -1
    private var lruTail: Int32 = -1
    private(set) public var cachedFreeCount = 0

    public init(blockCount: Int, blockSize: Int = PagedKVCache.defaultBlockSize) {
        precondition(blockCount > 0 && blockSize > 0)
        self.blockSize = blockSize
        self.blockCount = blockCount
        referenceCounts = Array(repeating: 0, count: blockCount)
        hashes = Array(repeating: nil, count: blockCount)
        blockTokens = Array(repeating: [], count: blockCount)
        empty = (0..<Int32(blockCount)).reversed()
        lruPrevious = Array(repeating: -1, count: blockCount)
        lruNext = Array(repeating: -1, count: blockCount)
    }

    /// Blocks that can be allocated now: empty ones and cached ones nobody uses.
    public var freeCount: Int { empty.count + cachedFreeCount }
    public var usedCount: Int { blockCount - freeCount }

    public func referenceCount(_ block: Int32) -> Int { Int(referenceCounts[Int(block)]) }

    /// Blocks needed to hold `tokens` tokens.
    public func blocks(for tokens: Int) -> Int { PagedKVCache.blocks(for: tokens, blockSize: blockSize) }

    public func canAllocate(_ count: Int) -> Bool { count <= freeCount }

    /// A free block with one reference; a cached block evicted for it loses its prefix.
    public mutating func allocate() -> Int32 {
        let block: Int32
        if let e = empty.popLast() {
            block = e
        } else {
            precondition(lruHead >= 0, "allocate() without a free block: ask canAllocate first")
            block = lruHead
            unlinkLRU(block)
            forget(block)
        }
        referenceCounts[Int(block)] = 1
        return block
    }

    /// One more reference to a block (a cached prefix block being reused).
    public mutating func acquire(_ block: Int32) {
        if referenceCounts[Int(block)] == 0 { unlinkLRU(block) }
        referenceCounts[Int(block)] += 1
    }

    /// One reference fewer; a block nobody uses becomes free, keeping its cached prefix if it has one.
    public mutating func release(_ block: Int32) {
        let b = Int(block)
        precondition(referenceCounts[b] > 0, "release of a free block \(block)")
        referenceCounts[b] -= 1
        guard referenceCounts[b] == 0 else { return }
        if hashes[b] != nil { appendLRU(block) } else { empty.append(block) }
    }

    /// Marks a full block as holding `tokens` after the prefix that `hash` identifies, so later prompts can reuse it.
    /// A prefix already registered by another block stays with that block.
    public mutating func register(_ block: Int32, hash: UInt64, tokens: ArraySlice<Int32>) {
        let b = Int(block)
        guard hashes[b] == nil, blockByHash[hash] == nil else { return }
        hashes[b] = hash
        blockTokens[b] = Array(tokens)
        blockByHash[hash] = block
    }

    /// The cached block that holds `tokens` after the prefix `hash` identifies, if any.
    public func cachedBlock(hash: UInt64, tokens: ArraySlice<Int32>) -> Int32? {
        guard let block = blockByHash[hash], blockTokens[Int(block)].elementsEqual(tokens) else { return nil }
        return block
    }

    /// The hash of a full block of `tokens` following the prefix whose hash is `previous` (0 for the first block).
    /// FNV-1a over the previous hash and the token ids.
    public static func hash(previous: UInt64, tokens: ArraySlice<Int32>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ v: UInt64) {
            for shift in stride(from: 0, to: 64, by: 8) {
                h ^= (v >> UInt64(shift)) & 0xff
                h &*= 0x0000_0100_0000_01b3
            }
        }
        mix(previous)
        for t in tokens { mix(UInt64(UInt32(bitPattern: t))) }
        return h
    }

    private mutating func forget(_ block: Int32) {
        let b = Int(block)
        if let h = hashes[b], blockByHash[h] == block { blockByHash[h] = nil }
        hashes[b] = nil
        blockTokens[b] = []
    }

    private mutating func appendLRU(_ block: Int32) {
        let b = Int(block)
        lruPrevious[b] = lruTail
        lruNext[b] = -1
        if lruTail >= 0 { lruNext[Int(lruTail)] = block } else { lruHead = block }
        lruTail = block
        cachedFreeCount += 1
    }

    private mutating func unlinkLRU(_ block: Int32) {
        let b = Int(block)
        let p = lruPrevious[b], n = lruNext[b]
        if p >= 0 { lruNext[Int(p)] = n } else { lruHead = n }
        if n >= 0 { lruPrevious[Int(n)] = p } else { lruTail = p }
        lruPrevious[b] = -1
        lruNext[b] = -1
        cachedFreeCount -= 1
    }
}
