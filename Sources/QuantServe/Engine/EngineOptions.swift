import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// How an engine is sized: the same flags in `generate`, `serve` and `bench`.
public struct EngineOptions: Sendable, Equatable {
    public var threads: Int
    /// Longest sequence, prompt and output together (capped by the model's context length).
    public var contextSize: Int
    public var scheduler: SchedulerOptions
    /// KV pool size in blocks of 16 tokens; wins over `kvCacheMegabytes`.
    public var kvBlocks: Int?
    /// KV pool size in MiB.
    public var kvCacheMegabytes: Int?
    /// The KV cache's element type.
    public var kvCacheType: KVCacheType = .fp16
    /// Requests that may wait for their first step at once; `submit` throws `.queueFull` past it.
    public var maxWaiting: Int = 256
    /// Shared with the other engines of one process so that they take turns on the cores (nil: this engine alone).
    public var computeGate: ComputeGate?
    /// Engines in the process sharing the default KV budget (a quarter of the machine's memory): each takes its part.
    public var memoryShares: Int = 1

    public init(threads: Int = ComputeContext.defaultThreadCount, contextSize: Int = 4096,
                scheduler: SchedulerOptions = SchedulerOptions(), kvBlocks: Int? = nil, kvCacheMegabytes: Int? = nil) {
        self.threads = threads
        self.contextSize = contextSize
        self.scheduler = scheduler
        self.kvBlocks = kvBlocks
        self.kvCacheMegabytes = kvCacheMegabytes
    }

    /// The context size for a model: the option, at most the model's own.
    public func contextSize(for c: ModelConfiguration) -> Int { min(contextSize, c.contextLength) }

    /// Blocks in the pool. By default: room for every sequence at full context, but at most a quarter of the
    /// machine's memory (divided among `memoryShares` engines), and at least one full context.
    public func kvBlockCount(for c: ModelConfiguration) -> Int {
        let perBlock = PagedKVCache.bytesPerBlock(c, type: kvCacheType)
        if let kvBlocks { return kvBlocks }
        if let kvCacheMegabytes { return max(1, kvCacheMegabytes * (1 << 20) / perBlock) }
        let context = contextSize(for: c)
        let oneContext = PagedKVCache.blocks(for: context)
        let wanted = oneContext * scheduler.maxSequences
        let quarterOfMemory = Self.physicalMemory / 4 / max(1, memoryShares) / perBlock
        return max(oneContext, min(wanted, quarterOfMemory))
    }

    static var physicalMemory: Int {
        #if canImport(Glibc)
        return Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
        return 8 << 30
        #endif
    }

    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw EngineError.invalidRequest(message) } }
        try check(threads >= 1 && threads <= 1024, "threads must be in 1...1024, got \(threads)")
        try check(contextSize >= 1, "ctx-size must be >= 1, got \(contextSize)")
        try check(scheduler.maxSequences >= 1 && scheduler.maxSequences <= 4096,
                  "max-seqs must be in 1...4096, got \(scheduler.maxSequences)")
        try check(scheduler.maxBatchTokens >= 1 && scheduler.maxBatchTokens <= 65536,
                  "max-batch-tokens must be in 1...65536, got \(scheduler.maxBatchTokens)")
        try check(maxWaiting >= 1 && maxWaiting <= 1 << 20, "max-waiting must be in 1...1048576, got \(maxWaiting)")
        if let kvBlocks { try check(kvBlocks >= 1 && kvBlocks <= 1 << 24, "kv-blocks must be in 1...16777216, got \(kvBlocks)") }
        if let kvCacheMegabytes {
            try check(kvCacheMegabytes >= 1 && kvCacheMegabytes <= 1 << 22, "kv-cache-mb must be in 1...4194304, got \(kvCacheMegabytes)")
        }
    }
}

/// A snapshot of what the engine is doing and has done.
public struct EngineMetrics: Sendable, Equatable {
    public var runningSequences = 0
    public var waitingSequences = 0
    public var kvBlocksTotal = 0
    public var kvBlocksUsed = 0
    /// Free blocks still holding a reusable prefix.
    public var kvBlocksCached = 0
    /// Requests submitted and not yet scheduled (queued, not counting preempted ones).
    public var queuedRequests = 0
    /// Preempted sequences waiting to be recomputed.
    public var preemptedSequences = 0
    /// Requests waiting to run: queued or preempted.
    public var requestsWaiting: Int { queuedRequests + preemptedSequences }
    public var promptTokens = 0
    /// Prompt tokens looked up in the prefix cache at admission, and how many of them it held.
    public var prefixCacheQueryTokens = 0
    public var prefixCacheHitTokens = 0
    public var generatedTokens = 0
    public var requestsFinished = 0
    public var requestsCancelled = 0
    public var preemptions = 0
    public var steps = 0
    public var busySeconds = 0.0
    /// Prefill time the prefix cache saved: its hit tokens at the engine's measured prefill seconds per token (a
    /// running average over steps that were almost all prompt tokens; hits before the first such step are valued
    /// once it comes).
    public var prefixCacheSavedSeconds = 0.0
    /// That running average (0 until measured), and the hit tokens not yet valued.
    public var prefillSecondsPerToken = 0.0
    var unvaluedHitTokens = 0
    /// When the loop last finished a step or went idle (uptime nanoseconds): a loop with work and an old
    /// `lastProgress` has stalled.
    public var lastProgress: UInt64 = DispatchTime.now().uptimeNanoseconds

    /// The loop is asleep waiting for a submission (which wakes it at once).
    public var loopIdle = false

    /// Whether work is waiting or running and the loop, awake, has made no step for `seconds`.
    public func isStalled(after seconds: Double, now: DispatchTime = .now()) -> Bool {
        guard !loopIdle else { return false }
        let busy = runningSequences + waitingSequences + queuedRequests > 0
        return busy && Double(now.uptimeNanoseconds &- lastProgress) / 1e9 > seconds
    }
}
