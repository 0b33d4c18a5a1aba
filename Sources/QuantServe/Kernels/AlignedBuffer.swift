#if canImport(Glibc)
import Glibc
#endif

/// A block of 64-byte-aligned memory (2 MiB-aligned and huge-page backed when large), freed with the object.
/// `@unchecked Sendable`: written only while a model is being built, read-only once it is shared.
public final class AlignedBuffer: @unchecked Sendable {
    public let byteCount: Int
    public let pointer: UnsafeMutableRawPointer

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
    }

    public convenience init<T>(count: Int, of _: T.Type) {
        self.init(byteCount: count * MemoryLayout<T>.stride)
    }

    public func typed<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        pointer.assumingMemoryBound(to: T.self)
    }

    deinit { free(pointer) }
}
