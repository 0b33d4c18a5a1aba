import XCTest
@testable import QuantServe

/// The scheduler alone, with a fake capacity: no model, only blocks and budgets.
final class SchedulerTests: XCTestCase {
    func makeScheduler(blocks: Int, blockSize: Int = 4, maxSeqs: Int = 8, budget: Int = 16) -> Scheduler {
        Scheduler(options: SchedulerOptions(maxSequences: maxSeqs, maxBatchTokens: budget),
                  blocks: BlockManager(blockCount: blocks, blockSize: blockSize))
    }

    /// Runs a step as the engine would, sampling `next` for every sequence that gets logits.
    @discardableResult
    func run(_ s: inout Scheduler, next: Int32 = 99) -> SchedulerStep {
        let step = s.schedule()
        s.completed(step)
        for c in step.chunks where c.wantsLogits { s.append(next, to: c.id) }
        return step
    }

    func prompt(_ n: Int, base: Int32 = 0) -> [Int32] { (0..<Int32(n)).map { base + $0 } }

    func testLongPromptIsChunkedAndDecodeGoesFirst() {
        var s = makeScheduler(blocks: 32, budget: 8)
        s.add(id: 1, tokens: prompt(3))
        run(&s)  // 1 is prefilled and gets its first token
        s.add(id: 2, tokens: prompt(20, base: 100))
        let step = run(&s)
        XCTAssertEqual(step.chunks[0], ScheduledChunk(id: 1, start: 3, count: 1, wantsLogits: true), "decode first")
        XCTAssertEqual(step.chunks[1], ScheduledChunk(id: 2, start: 0, count: 7, wantsLogits: false), "prefill takes the rest of the budget")
        let next = run(&s)
        XCTAssertEqual(next.chunks.map(\.count), [1, 7])
        let last = run(&s)
        XCTAssertEqual(last.chunks[1], ScheduledChunk(id: 2, start: 14, count: 6, wantsLogits: true))
    }

    func testSequenceCapAndAdmissionByFreeBlocks() {
        var s = makeScheduler(blocks: 3, blockSize: 4, maxSeqs: 2, budget: 64)
        s.add(id: 1, tokens: prompt(4))
        s.add(id: 2, tokens: prompt(4, base: 10))
        s.add(id: 3, tokens: prompt(4, base: 20))
        let step = run(&s)
        XCTAssertEqual(step.chunks.map(\.id), [1, 2], "at most two sequences run")
        XCTAssertEqual(s.waiting, [3])
        s.remove(1)
        s.add(id: 4, tokens: prompt(8, base: 30))
        let next = run(&s)
        // 2 decodes into a new block (3 blocks used: 2's two, 3's one), so 3 gets in but 4 waits.
        XCTAssertEqual(next.chunks.map(\.id), [2, 3])
        XCTAssertEqual(s.waiting, [4])
    }

    func testPreemptsTheNewestAndResumesItByRecompute() {
        var s = makeScheduler(blocks: 4, blockSize: 2, budget: 64)
        s.add(id: 1, tokens: prompt(3))
        s.add(id: 2, tokens: prompt(3, base: 10))
        run(&s)  // each takes 2 blocks (3 prompt tokens) and samples a 4th token
        run(&s)  // the 4th tokens fit in the second blocks; each samples a 5th
        XCTAssertEqual(s.blocks.freeCount, 0)
        let step = run(&s)
        // 1 needs a third block for position 4: 2, the newest, is preempted.
        XCTAssertEqual(step.preempted, [2])
        XCTAssertEqual(step.chunks.map(\.id), [1])
        XCTAssertEqual(s.waiting, [2])
        XCTAssertEqual(s.computedCount(of: 2), 0)
        XCTAssertEqual(s.tokens(of: 2).count, 5, "its generated tokens are kept for the recompute")
        s.remove(1)
        let resumed = run(&s)
        // Its first block, full and released to the prefix cache, is reused; the rest is recomputed.
        XCTAssertEqual(resumed.chunks, [ScheduledChunk(id: 2, start: 2, count: 3, wantsLogits: true)])
        s.remove(2)
        XCTAssertEqual(s.blocks.usedCount, 0)
    }

    func testPrefixCacheSkipsCachedBlocksButComputesTheLastToken() {
        var s = makeScheduler(blocks: 16, blockSize: 4, budget: 64)
        let shared = prompt(8)
        s.add(id: 1, tokens: shared + [50, 51])
        run(&s)
        s.remove(1)
        XCTAssertEqual(s.blocks.usedCount, 0)
        s.add(id: 2, tokens: shared + [60])
        let step = run(&s)
        XCTAssertEqual(step.chunks, [ScheduledChunk(id: 2, start: 8, count: 1, wantsLogits: true)])
        XCTAssertEqual(s.prefixCacheHitTokens, 8)
        // A prompt that is entirely cached still computes its last token (its logits are needed).
        s.add(id: 3, tokens: shared)
        let whole = run(&s)
        XCTAssertEqual(whole.chunks.last, ScheduledChunk(id: 3, start: 4, count: 4, wantsLogits: true))
        XCTAssertEqual(s.blocks.referenceCount(s.blockTable(of: 3)[0]), 2, "the first block is shared by 2 and 3")
        s.remove(2)
        s.remove(3)
        XCTAssertEqual(s.blocks.usedCount, 0)
    }

    func testCancellationFreesBlocksAtOnceWhereverTheSequenceIs() {
        var s = makeScheduler(blocks: 8, blockSize: 4, maxSeqs: 1, budget: 4)
        s.add(id: 1, tokens: prompt(10))
        s.add(id: 2, tokens: prompt(3))
        run(&s)  // 1 is half prefilled; 2 waits
        XCTAssertGreaterThan(s.blocks.usedCount, 0)
        s.remove(1)
        s.remove(2)
        XCTAssertEqual(s.blocks.usedCount, 0)
        XCTAssertTrue(s.isIdle)
    }
}
