import Foundation
import XCTest
@testable import QuantServe

/// Thousands of corrupt variants of a tiny GGUF (bytes flipped or set to extremes in the header, metadata and
/// tensor table; the file cut short) must each either load or fail with an error that names the file: never crash,
/// hang or allocate a size taken from an unchecked field. Deterministic: the same variants every run.
final class GGUFMutationTests: XCTestCase {
    /// SplitMix64: a fixed sequence of variants.
    struct Mutator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    }

    static let extremes: [UInt64] = [0, 1, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF,
                                     0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF]

    func testCorruptVariantsLoadOrFailCleanly() throws {
        let path = try Fixtures.path("tiny-qwen2.gguf")
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // Everything before the first tensor's data: header, metadata, tensor table.
        let headerEnd = try GGUFFile(path: path).tensors.map(\.fileOffset).min()!
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qs-mutants-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let context = ComputeContext(threads: 1)
        var m = Mutator(state: 20261127)
        var loaded = 0, refused = 0
        let variants = 2400
        let started = Date()
        for i in 0..<variants {
            var bytes = original
            let what: String
            switch i % 4 {
            case 0:
                let n = 1 + m.below(4)
                for _ in 0..<n { bytes[m.below(headerEnd)] ^= UInt8(1 << m.below(8)) }
                what = "\(n) bits flipped"
            case 1:
                let at = m.below(headerEnd - 8)
                withUnsafeBytes(of: Self.extremes[m.below(Self.extremes.count)].littleEndian) { v in
                    let width = [1, 2, 4, 8][m.below(4)]
                    for k in 0..<width { bytes[at + k] = v[k] }
                }
                what = "an extreme value at byte \(at)"
            case 2:
                bytes = Array(bytes[..<m.below(i % 8 == 2 ? headerEnd : bytes.count)])
                what = "cut to \(bytes.count) bytes"
            default:
                let at = m.below(headerEnd)
                bytes[at] = [0, 0xFF, 0x80, 0x7F][m.below(4)]
                what = "byte \(at) set"
            }
            let file = directory.appendingPathComponent("m\(i).gguf")
            try Data(bytes).write(to: file)
            do {
                _ = try ModelLoader.load(path: file.path, level: .fp16, context: context)
                loaded += 1
            } catch {
                refused += 1
                let message = "\(error)"
                XCTAssertFalse(message.isEmpty, "variant \(i) (\(what)): an empty error")
                XCTAssertTrue(message.contains(file.path) || message.contains("m\(i).gguf"),
                              "variant \(i) (\(what)): the error does not name the file: \(message)")
            }
            try? FileManager.default.removeItem(at: file)
        }
        XCTAssertEqual(loaded + refused, variants)
        XCTAssertGreaterThan(refused, variants / 4, "most corruptions are noticed")
        print("GGUF mutants: \(variants) variants, \(loaded) loaded, \(refused) refused, \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}
