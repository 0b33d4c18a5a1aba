/// The tokens of one forward pass, from any number of sequences: each token with its position, the cache slot its
/// key and value go to, and the block table of its sequence. Reused from step to step (its arrays keep capacity).
public struct ForwardBatch: Sendable {
    public private(set) var tokens: [Int32] = []
    public private(set) var positions: [Int32] = []
    /// `block * blockSize + offset` of each token's key and value.
    public private(set) var slots: [Int32] = []
    /// Where each token's block table starts in `blockTables`.
    public private(set) var tableStarts: [Int32] = []
    /// The block tables of the batch's sequences, one after the other.
    public private(set) var blockTables: [Int32] = []
    /// Batch rows whose logits are wanted, in the order they are returned.
    public private(set) var logitRows: [Int32] = []

    public init() {}

    public var count: Int { tokens.count }

    public mutating func removeAll() {
        tokens.removeAll(keepingCapacity: true)
        positions.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
        tableStarts.removeAll(keepingCapacity: true)
        blockTables.removeAll(keepingCapacity: true)
        logitRows.removeAll(keepingCapacity: true)
    }

    /// Adds `tokens` of a sequence whose blocks are `blockTable`, at positions `start ..< start + tokens.count`, asking
    /// for the logits of the positions from `logitsFrom` on (nil: none; the last position: the last only).
    public mutating func append(
        _ tokens: ArraySlice<Int32>, from start: Int, blockTable: ArraySlice<Int32>, blockSize: Int, logitsFrom: Int?
    ) {
        let tableStart = Int32(blockTables.count)
        blockTables.append(contentsOf: blockTable)
        let first = blockTable.startIndex
        for (k, token) in tokens.enumerated() {
            let p = start + k
            if let logitsFrom, p >= logitsFrom { logitRows.append(Int32(self.tokens.count)) }
            self.tokens.append(token)
            positions.append(Int32(p))
            slots.append(blockTable[first + p / blockSize] * Int32(blockSize) + Int32(p % blockSize))
            tableStarts.append(tableStart)
        }
    }
}
