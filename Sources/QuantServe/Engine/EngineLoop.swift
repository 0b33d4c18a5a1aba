import Dispatch

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
    private var batch = ForwardBatch()
    private var logitOwners: [Int] = []
    private let logits: AlignedBuffer
    private var metrics = EngineMetrics()

    init(model: TransformerModel, tokenizer: any Tokenizer, options: EngineOptions, mailbox: EngineMailbox) {
        let c = model.configuration
        self.model = model
        self.tokenizer = tokenizer
        self.mailbox = mailbox
        contextSize = options.contextSize(for: c)
        cache = PagedKVCache(configuration: c, blockCount: options.kvBlockCount(for: c))
        scheduler = Scheduler(options: options.scheduler, blocks: BlockManager(blockCount: cache.blockCount))
        logits = AlignedBuffer(count: options.scheduler.maxSequences * c.vocabularySize, of: Float.self)
        metrics.kvBlocksTotal = cache.blockCount
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
                publishMetrics()
                mailbox.waitForWork()
                continue
            }
            step()
        }
    }

    private func start(_ s: EngineMailbox.Submission) {
        states[s.id] = SequenceState(request: s.request, tokenizer: tokenizer, handler: s.handler)
        metrics.promptTokens += s.request.prompt.count
        if s.request.maxTokens == 0 {
            finish(s.id, .length)
        } else {
            scheduler.add(id: s.id, tokens: s.request.prompt)
        }
    }

    private func step() {
        let started = DispatchTime.now()
        let hitsBefore = scheduler.prefixCacheHitTokens
        let step = scheduler.schedule()
        metrics.preemptions += step.preempted.count
        metrics.prefixCacheHitTokens += scheduler.prefixCacheHitTokens - hitsBefore
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
            if var state = states[chunk.id], !state.admitted {
                state.admitted = true
                state.cachedPromptTokens = chunk.start
                states[chunk.id] = state
            }
        }
        do {
            try model.forward(batch, cache: cache, logits: logits.typed(Float.self))
        } catch {
            for chunk in step.chunks { fail(chunk.id, .internalError("\(error)")) }
            return
        }
        scheduler.completed(step)
        let vocabulary = model.configuration.vocabularySize
        for (row, id) in logitOwners.enumerated() {
            guard var state = states[id] else { continue }
            let row = UnsafeMutableBufferPointer(start: logits.typed(Float.self) + row * vocabulary, count: vocabulary)
            let (token, logprob, top) = state.sample(row)
            scheduler.append(token, to: id)
            let (event, reason) = state.accept(token, logprob: logprob, top: top, tokenizer: tokenizer,
                                               sequenceLength: scheduler.tokens(of: id).count, contextSize: contextSize)
            states[id] = state
            if let event {
                metrics.generatedTokens += 1
                state.handler(.token(event))
            }
            if let reason { finish(id, reason) }
        }
        metrics.steps += 1
        metrics.busySeconds += DispatchTime.now().seconds(since: started)
        publishMetrics()
    }

    /// Ends a sequence: its blocks are freed at once and its consumer gets the summary.
    private func finish(_ id: Int, _ reason: FinishReason) {
        guard var state = states.removeValue(forKey: id) else { return }
        scheduler.remove(id)
        if reason == .cancelled { metrics.requestsCancelled += 1 } else { metrics.requestsFinished += 1 }
        state.handler(.finished(state.summary(reason, releaseHeldText: reason != .cancelled)))
    }

    private func fail(_ id: Int, _ error: EngineError) {
        guard let state = states.removeValue(forKey: id) else { return }
        scheduler.remove(id)
        metrics.requestsFinished += 1
        state.handler(.failed(error))
    }

    private func publishMetrics() {
        metrics.runningSequences = scheduler.running.count
        metrics.waitingSequences = scheduler.waiting.count
        metrics.kvBlocksUsed = scheduler.blocks.usedCount
        metrics.kvBlocksCached = scheduler.blocks.cachedFreeCount
        mailbox.publish(metrics)
    }
}
