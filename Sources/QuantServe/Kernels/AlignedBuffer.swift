#if canImport(Glibc)
import Glibc
#endif

/// A block of 64-byte-aligned memory (2 MiB-aligned and huge-page backed when large), freed with the object;
/// or a read-only view of memory another object owns (a mapped checkpoint's tensor), kept alive with it.
/// `@unchecked Sendable`: written only while a model is being built, read-only once it is shared.
public final class AlignedBuffer: @unchecked Sendable {
    public let byteCount: Int
    public let pointer: UnsafeMutableRawPointer
    /// The owner of borrowed memory (never written through `pointer`); nil when this buffer allocated it.
    private let owner: AnyObject?

    /// `zeroed: false` skips the fill for memory the caller overwrites whole (weights), saving a pass over it.
    public init(byteCount: Int, zeroed: Bool = true) {
        self.byteCount = byteCount
        var raw: UnsafeMutableRawPointer?
        let alignment = byteCount >= 1 << 21 ? 1 << 21 : 64
        guard posix_memalign(&raw, alignment, max(byteCount, 64)) == 0, let raw else {
            fatalError("out of memory allocating \(byteCount) bytes")
        }
        if byteCount >= 1 << 21 { _ = madvise(raw, byteCount, MADV_HUGEPAGE) }
        if zeroed { memset(raw, 0, max(byteCount, 64)) }
        pointer = raw
        owner = nil
    }

    /// `byteCount` bytes at `pointer`, owned by `owner` (for example a `MappedFile`), read-only: the memory is
    /// neither copied nor freed here. Saves allocating (and the kernel zeroing) a copy of a pre-quantized tensor.
    init(borrowing pointer: UnsafeRawPointer, byteCount: Int, owner: AnyObject) {
        self.pointer = UnsafeMutableRawPointer(mutating: pointer)
        self.byteCount = byteCount
        self.owner = owner
    }

    public convenience init<T>(count: Int, of _: T.Type) {
        self.init(byteCount: count * MemoryLayout<T>.stride)
    }

    public func typed<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        pointer.assumingMemoryBound(to: T.self)
    }

    deinit { if owner == nil { free(pointer) } }
}
