/// An immutable hash table from byte strings to dense ids (`0..<count`), built once per tokenizer.
///
/// Lookups take a byte slice and allocate nothing, so the merge loops can ask "is this run of bytes a token?"
/// without building a `String`. All strings live in one flat buffer; the table is open addressing with
/// linear probing and stores a 32-bit hash per entry to reject most mismatches without comparing bytes.
struct ByteStringTable: Sendable {
    private var storage: [UInt8] = []
    /// `offsets[i] ..< offsets[i + 1]` are the bytes of entry `i`.
    private var offsets: [Int32] = [0]
    private var hashes: [UInt32] = []
    /// Entry index + 1, or 0 for an empty slot.
    private var slots: [Int32] = []
    private var mask = 0

    var count: Int { hashes.count }

    /// Builds the table from `strings`; entry `i` is `strings[i]`. When a string occurs twice the first id wins.
    init(_ strings: [String]) {
        var total = 0
        for s in strings { total += s.utf8.count }
        storage.reserveCapacity(total)
        offsets.reserveCapacity(strings.count + 1)
        hashes.reserveCapacity(strings.count)
        for s in strings {
            storage.append(contentsOf: s.utf8)
            offsets.append(Int32(storage.count))
        }
        rebuildSlots(capacityFor: strings.count)
    }

    /// An empty table that grows with `insert` (used for the few strings that are not tokens).
    init() {
        rebuildSlots(capacityFor: 8)
    }

    private mutating func rebuildSlots(capacityFor n: Int) {
        var size = 16
        while size < n * 2 { size <<= 1 }
        mask = size - 1
        slots = Array(repeating: 0, count: size)
        let existing = offsets.count - 1
        hashes.removeAll(keepingCapacity: true)
        let storage = self.storage
        storage.withUnsafeBufferPointer { bytes in
            for i in 0..<existing {
                let lo = Int(offsets[i]), hi = Int(offsets[i + 1])
                let h = Self.hash(UnsafeBufferPointer(rebasing: bytes[lo..<hi]))
                hashes.append(h)
                var slot = Int(h) & mask
                var duplicate = false
                while slots[slot] != 0 {
                    let other = Int(slots[slot]) - 1
                    if hashes[other] == h && equalEntries(other, i, bytes) { duplicate = true; break }
                    slot = (slot + 1) & mask
                }
                if !duplicate { slots[slot] = Int32(i + 1) }
            }
        }
    }

    private func equalEntries(_ a: Int, _ b: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let a0 = Int(offsets[a]), a1 = Int(offsets[a + 1])
        let b0 = Int(offsets[b]), b1 = Int(offsets[b + 1])
        guard a1 - a0 == b1 - b0 else { return false }
        for k in 0..<(a1 - a0) where bytes[a0 + k] != bytes[b0 + k] { return false }
        return true
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        // FNV-1a, folded to 32 bits.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h &*= 0x100_0000_01b3
        }
        return UInt32(truncatingIfNeeded: h ^ (h >> 32))
    }

    /// The id of the entry equal to `key`, or nil.
    func find(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        let h = Self.hash(key)
        var slot = Int(h) & mask
        return storage.withUnsafeBufferPointer { bytes -> Int32? in
            while true {
                let entry = Int(slots[slot])
                if entry == 0 { return nil }
                let i = entry - 1
                if hashes[i] == h {
                    let lo = Int(offsets[i]), hi = Int(offsets[i + 1])
                    if hi - lo == key.count {
                        var equal = true
                        for k in 0..<key.count where bytes[lo + k] != key[k] { equal = false; break }
                        if equal { return Int32(i) }
                    }
                }
                slot = (slot + 1) & mask
            }
        }
    }

    func find(_ key: [UInt8]) -> Int32? {
        key.withUnsafeBufferPointer { find($0) }
    }

    func find(_ key: String) -> Int32? {
        var key = key
        return key.withUTF8 { find($0) }
    }

    /// Adds `key` if absent and returns its id.
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>) -> Int32 {
        if let id = find(key) { return id }
        storage.append(contentsOf: key)
        offsets.append(Int32(storage.count))
        let n = offsets.count - 1
        if n * 2 > slots.count {
            rebuildSlots(capacityFor: n)
        } else {
            let h = Self.hash(key)
            hashes.append(h)
            var slot = Int(h) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(n)
        }
        return Int32(n - 1)
    }

    /// The bytes of entry `id`.
    func bytes(_ id: Int) -> ArraySlice<UInt8> {
        storage[Int(offsets[id])..<Int(offsets[id + 1])]
    }

    func length(_ id: Int) -> Int { Int(offsets[id + 1] - offsets[id]) }
}
