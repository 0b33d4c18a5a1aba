import Foundation
import XCTest
@testable import QuantServe

/// A mapped model file's pages leave the resident set once a loader has consumed them, and read back the same.
final class MappedFileTests: XCTestCase {
    /// This process's file-backed resident memory (RssFile), in bytes.
    func residentFileBytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("RssFile:") })
        return try XCTUnwrap(Int(line.split(separator: " ")[1])) * 1024
    }

    func testReleasedPagesLeaveTheResidentSetAndReadBackTheSame() throws {
        let size = 64 << 20
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qs-mapped-\(UUID())")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 12) }).write(to: url)
        let file = try MappedFile(path: url.path)
        func checksum() -> UInt64 { file.bytes.reduce(into: UInt64(0)) { $0 = $0 &* 1_000_003 &+ UInt64($1) } }
        let before = checksum()
        let touched = try residentFileBytes()
        file.releasePages(4097..<(size - 5000))
        let released = try residentFileBytes()
        XCTAssertGreaterThan(touched - released, size - (1 << 20), "the released range left the resident set")
        XCTAssertEqual(checksum(), before, "released pages read back from the file")
        file.releasePages(0..<0)
        file.releasePages(size - 10..<size + 10)  // out of bounds: ignored
    }

    func testAGGUFTensorsPagesAreReleasedByName() throws {
        // The default model's embedding (~100 MiB): large enough that other file pages faulting meanwhile are noise.
        let path = Fixtures.repositoryRoot.appendingPathComponent("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("the default model is not fetched") }
        let gguf = try GGUFFile(path: path)
        let t = try XCTUnwrap(gguf.tensor("token_embd.weight"))
        let sum = gguf.data(of: t).reduce(0) { $0 &+ Int($1) }
        XCTAssertGreaterThan(sum, 0, "every page read")
        let touched = try residentFileBytes()
        gguf.releasePages(t.name)
        XCTAssertGreaterThan(touched - (try residentFileBytes()), t.byteCount * 9 / 10)
        gguf.releasePages("no.such.tensor")
    }
}
