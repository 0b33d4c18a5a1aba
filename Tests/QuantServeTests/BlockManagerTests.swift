import XCTest
@testable import QuantServe

final class BlockManagerTests: XCTestCase {
    func testAllocateReleaseAndReferenceCounts() {
        var m = BlockManager(blockCount: 3, blockSize: 4)
        XCTAssertEqual(m.freeCount, 3)
        let a = m.allocate(), b = m.allocate()
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(m.usedCount, 2)
        m.acquire(a)
        XCTAssertEqual(m.referenceCount(a), 2)
        m.release(a)
        XCTAssertEqual(m.usedCount, 2, "still referenced once")
        m.release(a)
        m.release(b)
        XCTAssertEqual(m.usedCount, 0)
        XCTAssertTrue(m.canAllocate(3))
        XCTAssertFalse(m.canAllocate(4))
    }

    func testCachedBlocksAreReusedAndEvictedLeastRecentlyReleasedFirst() {
        var m = BlockManager(blockCount: 3, blockSize: 2)
        let tokens: [Int32] = [1, 2, 3, 4, 5, 6]
        let h0 = BlockManager.hash(previous: 0, tokens: tokens[0..<2])
        let h1 = BlockManager.hash(previous: h0, tokens: tokens[2..<4])
        let h2 = BlockManager.hash(previous: h1, tokens: tokens[4..<6])
        let blocks = [m.allocate(), m.allocate(), m.allocate()]
        m.register(blocks[0], hash: h0, tokens: tokens[0..<2])
        m.register(blocks[1], hash: h1, tokens: tokens[2..<4])
        m.register(blocks[2], hash: h2, tokens: tokens[4..<6])
        // Released last block first (as a finished sequence does): block 2 is the least recently released.
        for b in blocks.reversed() { m.release(b) }
        XCTAssertEqual(m.freeCount, 3)
        XCTAssertEqual(m.cachedFreeCount, 3)
        XCTAssertEqual(m.cachedBlock(hash: h0, tokens: tokens[0..<2]), blocks[0])
        XCTAssertNil(m.cachedBlock(hash: h0, tokens: [9, 9][...]), "token ids are compared, not only the hash")
        // Reuse takes the block out of the free pool.
        m.acquire(blocks[0])
        XCTAssertEqual(m.freeCount, 2)
        // A new allocation evicts the least recently released cached block (block 2) and forgets its prefix.
        let fresh = m.allocate()
        XCTAssertEqual(fresh, blocks[2])
        XCTAssertNil(m.cachedBlock(hash: h2, tokens: tokens[4..<6]))
        XCTAssertEqual(m.cachedBlock(hash: h1, tokens: tokens[2..<4]), blocks[1])
    }

    func testHashChainsOverThePrefix() {
        let block: [Int32] = [7, 8]
        XCTAssertNotEqual(BlockManager.hash(previous: 1, tokens: block[...]), BlockManager.hash(previous: 2, tokens: block[...]))
        XCTAssertEqual(BlockManager.hash(previous: 1, tokens: block[...]), BlockManager.hash(previous: 1, tokens: [7, 8][...]))
    }

    func testEmptyBlocksGoBeforeCachedOnes() {
        var m = BlockManager(blockCount: 2, blockSize: 1)
        let a = m.allocate()
        m.register(a, hash: 42, tokens: [1][...])
        m.release(a)
        let b = m.allocate()
        XCTAssertNotEqual(a, b, "the empty block is taken before the cached one is evicted")
        XCTAssertEqual(m.cachedBlock(hash: 42, tokens: [1][...]), a)
    }
}
