import Foundation
import Synchronization

/// What an engine serves, known once its model is loaded.
public struct EngineDescription: Sendable {
    public let configuration: ModelConfiguration
    public let level: QuantLevel
    public let weightBytes: Int
    public let loadSeconds: Double
    public let contextSize: Int
    public let kvBlocks: Int
    public let kvCacheBytes: Int
    public let options: EngineOptions
    public let threads: Int
    public let kernelVariant: String
}

/// Serves many generations at once from one model: each `submit` joins the running batch, and every step of the
/// engine's loop computes the next token of every running sequence and chunks of waiting prompts in one pass.
///
/// The model, its KV cache and the scheduler live on the engine's own thread; only Sendable values (requests,
/// events, metrics) cross to callers. Events of one request arrive in order, on the engine's thread: handlers
/// must return quickly.
public final class Engine: Sendable {
    public let tokenizer: any Tokenizer
    public let description: EngineDescription
    /// Internal, not private: tests submit through it what `submit` would refuse, to fault a step.
    let mailbox: EngineMailbox

    /// Starts the engine's thread, which builds its compute context and calls `load` for the model it will own.
    /// Returns once the model is ready; throws what `load` threw.
    public init(options: EngineOptions, load: @escaping @Sendable (ComputeContext) throws -> LoadedModel) throws {
        try options.validate()
        let mailbox = EngineMailbox()
        let ready = Mutex<Result<(any Tokenizer, EngineDescription), any Error>?>(nil)
        let loaded = DispatchSemaphore(value: 0)
        let thread = Thread {
            let loop: EngineLoop
            do {
                let context = ComputeContext(threads: options.threads)
                let model = try load(context)
                loop = EngineLoop(model: model.model, tokenizer: model.tokenizer, options: options, mailbox: mailbox)
                let c = model.model.configuration
                let description = EngineDescription(
                    configuration: c, level: model.model.level, weightBytes: model.model.weightBytes,
                    loadSeconds: model.loadSeconds, contextSize: loop.contextSize, kvBlocks: loop.cache.blockCount,
                    kvCacheBytes: loop.cache.byteCount, options: options, threads: context.threads,
                    kernelVariant: context.variantName)
                ready.withLock { $0 = .success((model.tokenizer, description)) }
            } catch {
                ready.withLock { $0 = .failure(error) }
                loaded.signal()
                return
            }
            loaded.signal()
            loop.run()
        }
        thread.name = "quantserve-engine"
        thread.stackSize = 16 << 20
        thread.start()
        loaded.wait()
        let (tokenizer, description) = try ready.withLock { $0! }.get()
        self.tokenizer = tokenizer
        self.description = description
        self.mailbox = mailbox
    }

    deinit { mailbox.shutdown() }

    /// Queues a generation; `handler` receives its events, the last being `.finished` or `.failed`.
    /// Throws for a request that can never run (empty or over-long prompt, bad sampling values, too big for the cache).
    @discardableResult
    public func submit(_ request: GenerationRequest, handler: @escaping @Sendable (TokenEvent) -> Void) throws -> Int {
        try submit(copies: [request], handlers: [handler])[0]
    }

    /// Queues generations of one prompt (differing only in how they sample, say): the first is computed as usual and
    /// the others start when its prompt is in the KV cache, sharing those blocks through the prefix cache.
    /// All are queued or none; `handlers[i]` receives the events of `requests[i]`.
    public func submit(copies requests: [GenerationRequest],
                       handlers: [@Sendable (TokenEvent) -> Void]) throws -> [Int] {
        precondition(!requests.isEmpty && requests.count == handlers.count)
        for request in requests { try validate(request) }
        let shared = requests.allSatisfy { $0.prompt == requests[0].prompt }
        guard let ids = try mailbox.submit(requests, sharingPrompt: shared, maxWaiting: description.options.maxWaiting,
                                           handlers: handlers) else {
            throw EngineError.shutDown
        }
        return ids
    }

    /// Throws `.queueFull` when the waiting queue is full: a cheap check to make before tokenizing a request
    /// (`submit` checks again, exactly).
    public func checkQueue() throws(EngineError) {
        let limit = description.options.maxWaiting
        if mailbox.queued.load(ordering: .relaxed) >= limit { throw .queueFull(limit: limit) }
    }

    /// A generation as a stream of events; cancelled when the consumer stops iterating or is cancelled.
    /// The stream ends after `.finished`, or throws the `EngineError` of a `.failed` event.
    public func stream(_ request: GenerationRequest) throws -> AsyncThrowingStream<TokenEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: TokenEvent.self, throwing: (any Error).self)
        let id = try submit(request) { event in
            switch event {
            case .token: continuation.yield(event)
            case .finished: continuation.yield(event); continuation.finish()
            case .failed(let error): continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { [mailbox] termination in
            if case .cancelled = termination { mailbox.cancel(id) }
        }
        return stream
    }

    /// Stops a generation at once; its handler gets `.finished` with reason `.cancelled`. Unknown ids are ignored.
    public func cancel(_ id: Int) { mailbox.cancel(id) }

    public var metrics: EngineMetrics { mailbox.metrics }

    /// Ends the loop; running requests fail with `.shutDown`.
    public func shutdown() { mailbox.shutdown() }

    private func validate(_ request: GenerationRequest) throws {
        let d = description
        guard !request.prompt.isEmpty else { throw EngineError.invalidRequest("the prompt is empty (no tokens)") }
        for t in request.prompt + request.forcedTokens where t < 0 || Int(t) >= d.configuration.vocabularySize {
            throw EngineError.invalidRequest("token id \(t) is outside the vocabulary of \(d.configuration.vocabularySize)")
        }
        guard (0...64).contains(request.captureDistributions) else {
            throw EngineError.invalidRequest("distributions are captured for at most 64 tokens, got \(request.captureDistributions)")
        }
        guard request.prompt.count < d.contextSize else {
            throw EngineError.promptTooLong(tokens: request.prompt.count, contextSize: d.contextSize)
        }
        guard request.maxTokens >= 0 else {
            throw EngineError.invalidRequest("max tokens must be >= 0, got \(request.maxTokens)")
        }
        if let n = request.logprobs, !(0...20).contains(n) {
            throw EngineError.invalidRequest("top logprobs must be in 0...20, got \(n)")
        }
        do { try request.sampling.validate() } catch { throw EngineError.invalidRequest("\(error)") }
        let longest = min(request.prompt.count + request.maxTokens, d.contextSize)
        let blocks = PagedKVCache.blocks(for: longest)
        guard blocks <= d.kvBlocks else { throw EngineError.exceedsCache(blocksNeeded: blocks, blocksInPool: d.kvBlocks) }
    }
}
