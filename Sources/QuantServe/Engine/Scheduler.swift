/// Limits on one engine step.
public struct SchedulerOptions: Sendable, Equatable {
    /// Sequences running at once.
    public var maxSequences: Int
    /// Tokens in one forward pass: decode tokens plus prefill chunks.
    public var maxBatchTokens: Int

    public init(maxSequences: Int = 16, maxBatchTokens: Int = 256) {
        self.maxSequences = maxSequences
        self.maxBatchTokens = maxBatchTokens
    }
}

/// Tokens `start ..< start + count` of a sequence to compute in this step.
public struct ScheduledChunk: Sendable, Equatable {
    public var id: Int
    public var start: Int
    public var count: Int
    /// The chunk reaches the sequence's last token, so its logits pick the next one.
    public var wantsLogits: Bool
}

/// What one step computes, and which sequences it pushed back to recompute later.
public struct SchedulerStep: Sendable, Equatable {
    public var chunks: [ScheduledChunk] = []
    public var preempted: [Int] = []
    public var tokenCount: Int { chunks.reduce(0) { $0 + $1.count } }
}

/// Decides, step by step, which tokens of which sequences run: a synchronous state machine over the block manager,
/// with no model in it (the engine does the computing).
///
/// Each step first gives every running sequence its next tokens (one when decoding, a chunk when its prompt is not
/// fully computed yet), oldest first, then admits waiting sequences in arrival order while the token budget, the
/// sequence cap and the free blocks allow. A prompt longer than the budget is computed in chunks over several steps,
/// so decoding never waits for it. When a running sequence needs a block and none is free, the newest running
/// sequence is preempted: its blocks are released and it waits at the front of the queue to be recomputed
/// (its own cached prefix blocks usually make that cheap).
public struct Scheduler: Sendable {
    struct Entry: Sendable {
        var tokens: [Int32]
        /// Tokens whose keys and values are in the cache.
        var computed = 0
        var blockTable: [Int32] = []
        /// Prefix hashes of the full blocks registered so far.
        var hashes: [UInt64] = []
    }

    public let options: SchedulerOptions
    public private(set) var blocks: BlockManager
    private var entries: [Int: Entry] = [:]
    public private(set) var waiting: [Int] = []
    public private(set) var running: [Int] = []
    /// Prompt tokens whose computation a cached prefix saved, since the start.
    public private(set) var prefixCacheHitTokens = 0
    /// Prompt tokens looked up in the prefix cache at admission, since the start.
    public private(set) var prefixCacheQueryTokens = 0

    public init(options: SchedulerOptions, blocks: BlockManager) {
        precondition(options.maxSequences > 0 && options.maxBatchTokens > 0)
        self.options = options
        self.blocks = blocks
    }

    public var isIdle: Bool { waiting.isEmpty && running.isEmpty }
    public func contains(_ id: Int) -> Bool { entries[id] != nil }
    public func tokens(of id: Int) -> [Int32] { entries[id]?.tokens ?? [] }
    public func blockTable(of id: Int) -> [Int32] { entries[id]?.blockTable ?? [] }
    public func computedCount(of id: Int) -> Int { entries[id]?.computed ?? 0 }

    /// Queues a sequence whose first `tokens` (its prompt) are to be computed.
    public mutating func add(id: Int, tokens: [Int32], atFront: Bool = false) {
        precondition(entries[id] == nil && !tokens.isEmpty)
        entries[id] = Entry(tokens: tokens)
        if atFront { waiting.insert(id, at: 0) } else { waiting.append(id) }
    }

    /// A token sampled for the sequence, to be computed in a later step.
    public mutating func append(_ token: Int32, to id: Int) {
        entries[id]?.tokens.append(token)
    }

    /// Ends a sequence (finished or cancelled) wherever it is, releasing its blocks at once.
    public mutating func remove(_ id: Int) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        releaseBlocks(entry.blockTable)
        waiting.removeAll { $0 == id }
        running.removeAll { $0 == id }
    }

    public mutating func schedule() -> SchedulerStep {
        var step = SchedulerStep()
        var budget = options.maxBatchTokens
        var index = 0
        while index < running.count, budget > 0 {
            let id = running[index]
            let entry = entries[id]!
            let count = min(entry.tokens.count - entry.computed, budget)
            guard count > 0 else { index += 1; continue }
            let needed = blocks.blocks(for: entry.computed + count) - entry.blockTable.count
            var preemptedSelf = false
            while !blocks.canAllocate(needed) {
                let victim = running.last!
                preempt(victim)
                step.preempted.append(victim)
                if victim == id { preemptedSelf = true; break }
            }
            if preemptedSelf { break }
            for _ in 0..<max(needed, 0) { entries[id]!.blockTable.append(blocks.allocate()) }
            step.chunks.append(ScheduledChunk(id: id, start: entry.computed, count: count,
                                              wantsLogits: entry.computed + count == entry.tokens.count))
            budget -= count
            index += 1
        }
        // A step that preempted does not admit: the freed blocks go to the running sequences first.
        while step.preempted.isEmpty, budget > 0, running.count < options.maxSequences, let id = waiting.first {
            guard let chunk = admit(id, budget: budget) else { break }
            waiting.removeFirst()
            running.append(id)
            step.chunks.append(chunk)
            budget -= chunk.count
        }
        return step
    }

    /// After the step's forward pass: its chunks are in the cache; newly full blocks join the prefix cache.
    public mutating func completed(_ step: SchedulerStep) {
        for chunk in step.chunks {
            guard var entry = entries[chunk.id] else { continue }
            entry.computed = chunk.start + chunk.count
            while entry.hashes.count < entry.computed / blocks.blockSize {
                let b = entry.hashes.count
                let range = (b * blocks.blockSize)..<((b + 1) * blocks.blockSize)
                let hash = BlockManager.hash(previous: entry.hashes.last ?? 0, tokens: entry.tokens[range])
                blocks.register(entry.blockTable[b], hash: hash, tokens: entry.tokens[range])
                entry.hashes.append(hash)
            }
            entries[chunk.id] = entry
        }
    }

    /// Takes a waiting sequence's cached prefix and blocks for its first chunk, or nil when the blocks aren't free.
    private mutating func admit(_ id: Int, budget: Int) -> ScheduledChunk? {
        var entry = entries[id]!
        // Full blocks of the prompt that are cached, keeping at least one token to compute for the logits.
        var cached: [(block: Int32, hash: UInt64)] = []
        var previous: UInt64 = 0
        for b in 0..<((entry.tokens.count - 1) / blocks.blockSize) {
            let range = (b * blocks.blockSize)..<((b + 1) * blocks.blockSize)
            let hash = BlockManager.hash(previous: previous, tokens: entry.tokens[range])
            guard let block = blocks.cachedBlock(hash: hash, tokens: entry.tokens[range]) else { break }
            cached.append((block, hash))
            previous = hash
        }
        let start = cached.count * blocks.blockSize
        let count = min(entry.tokens.count - start, budget)
        let needed = blocks.blocks(for: start + count) - cached.count
        let reusedFree = cached.filter { blocks.referenceCount($0.block) == 0 }.count
        guard blocks.canAllocate(needed + reusedFree) else { return nil }
        for c in cached { blocks.acquire(c.block) }
        entry.blockTable = cached.map(\.block)
        entry.hashes = cached.map(\.hash)
        entry.computed = start
        for _ in 0..<needed { entry.blockTable.append(blocks.allocate()) }
        entries[id] = entry
        prefixCacheHitTokens += start
        prefixCacheQueryTokens += entry.tokens.count
        return ScheduledChunk(id: id, start: start, count: count, wantsLogits: start + count == entry.tokens.count)
    }

    private mutating func preempt(_ id: Int) {
        guard var entry = entries[id] else { return }
        releaseBlocks(entry.blockTable)
        entry.blockTable = []
        entry.hashes = []
        entry.computed = 0
        entries[id] = entry
        running.removeAll { $0 == id }
        waiting.insert(id, at: 0)
    }

    /// Last block first, so that a sequence's prefix blocks stay cached the longest.
    private mutating func releaseBlocks(_ table: [Int32]) {
        for block in table.reversed() { blocks.release(block) }
    }
}
