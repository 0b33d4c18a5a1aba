import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A whole file mapped read-only into memory.
/// `@unchecked Sendable`: the mapping is immutable for the object's life and unmapped only in `deinit`.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ModelFileError(path: path, "cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ModelFileError(path: path, "cannot stat (\(String(cString: strerror(errno))))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw ModelFileError(path: path, "not a regular file") }
        let size = Int(info.st_size)
        guard size > 0 else { throw ModelFileError(path: path, "file is empty") }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw ModelFileError(path: path, "cannot map (\(String(cString: strerror(errno))))")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    /// Drops the pages of `range` from this process's resident set (MADV_DONTNEED): they stay in the page cache and
    /// come back on the next read, so a loader that has consumed a tensor does not keep the file's copy of it
    /// resident next to its own. Pages are rounded outwards: a neighbour's shared page is simply read again.
    public func releasePages(_ range: Range<Int>) {
        guard !range.isEmpty, range.lowerBound >= 0, range.upperBound <= bytes.count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let base = Int(bitPattern: bytes.baseAddress!)
        let start = (base + range.lowerBound) / page * page
        let end = min((base + range.upperBound + page - 1) / page * page, (base + bytes.count + page - 1) / page * page)
        madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_DONTNEED)
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
    }
}
