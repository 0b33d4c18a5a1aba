import Dispatch
import Synchronization

/// The engine's step loop, on its own thread: drain the mailbox, schedule, run one forward pass over every
/// scheduled token, sample, send events. It alone touches the model, the KV cache and the scheduler.
final class EngineLoop {
    let model: TransformerModel
    let tokenizer: any Tokenizer
    let cache: PagedKVCache
    let contextSize: Int
    private let mailbox: EngineMailbox
    private var scheduler: Scheduler
    private var states: [Int: SequenceState] = [:]
    /// Copies of a prompt waiting for it to be computed, by the id of the sequence computing it.
    private var followers: [Int: [Int]] = [:]
    private var batch = ForwardBatch()
    private var logitOwners: [Int] = []
    private let logits: AlignedBuffer
    private var metrics = EngineMetrics()
    private let gate: ComputeGate?

    init(model: TransformerModel, tokenizer: any Tokenizer, options: EngineOptions, mailbox: EngineMailbox) {
        let c = model.configuration
        self.model = model
        self.tokenizer = tokenizer
        self.mailbox = mailbox
        contextSize = options.contextSize(for: c)
        cache = PagedKVCache(configuration: c, blockCount: options.kvBlockCount(for: c), type: options.kvCacheType)
        scheduler = Scheduler(options: options.scheduler, blocks: BlockManager(blockCount: cache.blockCount))
        logits = AlignedBuffer(count: options.scheduler.maxSequences * c.vocabularySize, of: Float.self)
        metrics.kvBlocksTotal = cache.blockCount
        gate = options.computeGate
    }

    func run() {
        while true {
            let (submissions, cancellations, shutdown) = mailbox.take()
            for s in submissions { start(s) }
            for id in cancellations { finish(id, .cancelled) }
            if shutdown {
                for id in Array(states.keys) { fail(id, .shutDown) }
                return
            }
            if scheduler.isIdle {
                metrics.lastProgress = DispatchTime.now().uptimeNanoseconds
                metrics.loopIdle = true
                publishMetrics()
                mailbox.waitForWork()
                metrics.loopIdle = false
                metrics.lastProgress = DispatchTime.now().uptimeNanoseconds
                publishMetrics()
                continue
            }
            // With other engines on the machine, the whole step (schedule, forward, sample) is this engine's turn:
            // the steps of the engines never overlap, and each step's time is this engine's alone.
            if let gate { gate.run { step() } } else { step() }
        }
    }

    private func start(_ s: EngineMailbox.Submission) {
        states[s.id] = SequenceState(request: s.request, tokenizer: tokenizer, handler: s.handler)
        metrics.promptTokens += s.request.prompt.count
        if s.request.maxTokens == 0 {
            finish(s.id, .length)
        } else if let leader = s.follows, let l = states[leader], l.times.firstToken == nil {
            followers[leader, default: []].append(s.id)
        } else {
            scheduler.add(id: s.id, tokens: s.request.prompt)
        }
    }

    /// The copies that waited for `leader`'s prompt join the queue (at its front: they were submitted with it).
    private func releaseFollowers(of leader: Int) {
        guard let ids = followers.removeValue(forKey: leader) else { return }
        for id in ids.reversed() where states[id] != nil {
            scheduler.add(id: id, tokens: states[id]!.request.prompt, atFront: true)
        }
    }

    private func step() {
        let started = DispatchTime.now()
        let hitsBefore = scheduler.prefixCacheHitTokens, queriesBefore = scheduler.prefixCacheQueryTokens
        let step = scheduler.schedule()
        metrics.preemptions += step.preempted.count
        metrics.prefixCacheHitTokens += scheduler.prefixCacheHitTokens - hitsBefore
        metrics.unvaluedHitTokens += scheduler.prefixCacheHitTokens - hitsBefore
        metrics.prefixCacheQueryTokens += scheduler.prefixCacheQueryTokens - queriesBefore
        for id in step.preempted { states[id]?.preempted() }
        guard !step.chunks.isEmpty else {
            // Nothing fits: only possible when the oldest waiting request cannot get blocks with nothing running,
            // which submission rules out. Fail it rather than spin.
            if let id = scheduler.waiting.first { fail(id, .internalError("no KV blocks for a waiting request")) }
            return
        }
        batch.removeAll()
        logitOwners.removeAll(keepingCapacity: true)
        for chunk in step.chunks {
            let tokens = scheduler.tokens(of: chunk.id)
            let end = chunk.start + chunk.count
            batch.append(tokens[chunk.start..<end], from: chunk.start, blockTable: scheduler.blockTable(of: chunk.id)[...],
                         blockSize: cache.blockSize, logitsFrom: chunk.wantsLogits ? end - 1 : nil)
            if chunk.wantsLogits { logitOwners.append(chunk.id) }
            if var state = states[chunk.id], state.phase != .running {
                if !state.wasAdmitted { mailbox.queued.subtract(1, ordering: .relaxed) }
                state.scheduled(cachedTokens: chunk.start)
                states[chunk.id] = state
            }
        }
        do {
            try model.forward(batch, cache: cache, logits: logits.typed(Float.self))
        } catch {
            failChunksAtFault(step, error)
            return
        }
        scheduler.completed(step)
        let vocabulary = model.configuration.vocabularySize
        var finishing: [(Int, FinishReason)] = []
        for (row, id) in logitOwners.enumerated() {
            guard var state = states[id] else { continue }
            let row = UnsafeMutableBufferPointer(start: logits.typed(Float.self) + row * vocabulary, count: vocabulary)
            if state.times.firstToken == nil { releaseFollowers(of: id) }
            let (token, logprob, top, distribution) = state.sample(row)
            scheduler.append(token, to: id)
            let (event, reason) = state.accept(token, logprob: logprob, top: top, distribution: distribution, tokenizer: tokenizer,
                                               sequenceLength: scheduler.tokens(of: id).count, contextSize: contextSize)
            states[id] = state
            if let event {
                metrics.generatedTokens += 1
                state.handler(.token(event))
            }
            if let reason { finishing.append((id, reason)) }
        }
        // The step's time, each sequence charged its tokens' share, before the finished ones report their summaries.
        let now = DispatchTime.now()
        let seconds = now.seconds(since: started)
        let tokens = step.chunks.reduce(0) { $0 + $1.count }
        for chunk in step.chunks where tokens > 0 {
            states[chunk.id]?.engineSeconds += seconds * Double(chunk.count) / Double(tokens)
        }
        for (id, reason) in finishing { finish(id, reason) }
        valuePrefixCacheHits(stepSeconds: seconds, chunks: step.chunks, tokens: tokens)
        metrics.steps += 1
        metrics.busySeconds += seconds
        metrics.lastProgress = now.uptimeNanoseconds
        publishMetrics()
    }

    /// The prefill seconds per token, from steps that were almost all prompt tokens (chunks longer than one token),
    /// and the prefix cache's hits valued at it.
    private func valuePrefixCacheHits(stepSeconds: Double, chunks: [ScheduledChunk], tokens: Int) {
        let prompt = chunks.reduce(0) { $0 + ($1.count > 1 ? $1.count : 0) }
        if prompt >= 16, Double(prompt) >= 0.9 * Double(tokens) {
            let perToken = stepSeconds / Double(tokens)
            metrics.prefillSecondsPerToken = metrics.prefillSecondsPerToken == 0
                ? perToken : 0.7 * metrics.prefillSecondsPerToken + 0.3 * perToken
        }
        if metrics.prefillSecondsPerToken > 0, metrics.unvaluedHitTokens > 0 {
            metrics.prefixCacheSavedSeconds += Double(metrics.unvaluedHitTokens) * metrics.prefillSecondsPerToken
            metrics.unvaluedHitTokens = 0
        }
    }

    /// A forward pass refuses a batch before computing anything. Only the requests whose own chunk it refuses fail;
    /// the others were not computed and are scheduled again next step, as they were.
    private func failChunksAtFault(_ step: SchedulerStep, _ error: any Error) {
        var atFault: [Int] = []
        var one = ForwardBatch()
        for chunk in step.chunks {
            one.removeAll()
            let tokens = scheduler.tokens(of: chunk.id)
            one.append(tokens[chunk.start..<(chunk.start + chunk.count)], from: chunk.start,
                       blockTable: scheduler.blockTable(of: chunk.id)[...], blockSize: cache.blockSize, logitsFrom: nil)
            do { try model.check(one, cache: cache) } catch { atFault.append(chunk.id) }
        }
        for id in atFault.isEmpty ? step.chunks.map(\.id) : atFault { fail(id, .internalError("\(error)")) }
    }

    /// Ends a sequence: its blocks are freed at once and its consumer gets the summary.
    private func finish(_ id: Int, _ reason: FinishReason) {
        guard var state = states.removeValue(forKey: id) else { return }
        if !state.wasAdmitted { mailbox.queued.subtract(1, ordering: .relaxed) }
        scheduler.remove(id)
        releaseFollowers(of: id)
        if reason == .cancelled { metrics.requestsCancelled += 1 } else { metrics.requestsFinished += 1 }
        state.handler(.finished(state.summary(reason, releaseHeldText: reason != .cancelled)))
    }

    private func fail(_ id: Int, _ error: EngineError) {
        guard let state = states.removeValue(forKey: id) else { return }
        if !state.wasAdmitted { mailbox.queued.subtract(1, ordering: .relaxed) }
        scheduler.remove(id)
        releaseFollowers(of: id)
        metrics.requestsFinished += 1
        state.handler(.failed(error))
    }

    private func publishMetrics() {
        metrics.runningSequences = scheduler.running.count
        metrics.waitingSequences = scheduler.waiting.count
        metrics.preemptedSequences = scheduler.waiting.reduce(0) { $0 + (states[$1]?.wasAdmitted == true ? 1 : 0) }
        metrics.kvBlocksUsed = scheduler.blocks.usedCount
        metrics.kvBlocksCached = scheduler.blocks.cachedFreeCount
        mailbox.publish(metrics)
    }
}
