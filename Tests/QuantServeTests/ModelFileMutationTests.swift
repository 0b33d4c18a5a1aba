import Foundation
import XCTest
@testable import QuantServe

/// Thousands of corrupt variants of the tiny model files (bytes flipped or set to extremes in a GGUF's header,
/// metadata and tensor table, in a folder's config.json, tokenizer.json and safetensors header; files cut short) must
/// each either load or fail with an error that names the file: never crash, hang or allocate a size taken from an
/// unchecked field. Deterministic: the same variants every run. `QS_MUTANTS=N` (make fuzz) runs N of each kind.
final class ModelFileMutationTests: XCTestCase {
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

        static let extremes: [UInt64] = [0, 1, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x1_0000_0000,
                                         0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF]
        /// Text that breaks JSON numbers and strings in interesting ways.
        static let jsonPieces = ["-1", "0", "1e308", "99999999999999999999", "null", "\"\"", "[]", "{}", "1.5", "\"\\u0000\""]

        /// One corruption of `bytes` within `0 ..< limit` (the part that describes the rest), by kind `k`.
        mutating func mutate(_ bytes: inout [UInt8], limit: Int, kind k: Int, json: Bool) {
            let limit = max(1, min(limit, bytes.count))
            switch k % 4 {
            case 0:
                for _ in 0..<(1 + below(4)) { bytes[below(limit)] ^= UInt8(1 << below(8)) }
            case 1 where json:
                // Replace a number or literal with another kind of value.
                let at = below(limit)
                let piece = Array(Self.jsonPieces[below(Self.jsonPieces.count)].utf8)
                var end = at
                while end < bytes.count, end - at < 24, bytes[end] != UInt8(ascii: ","), bytes[end] != UInt8(ascii: "}") { end += 1 }
                bytes.replaceSubrange(at..<end, with: piece)
            case 1:
                let at = below(max(limit - 8, 1))
                withUnsafeBytes(of: Self.extremes[below(Self.extremes.count)].littleEndian) { v in
                    for k in 0..<min([1, 2, 4, 8][below(4)], bytes.count - at) { bytes[at + k] = v[k] }
                }
            case 2:
                bytes = Array(bytes[..<below(below(2) == 0 ? limit : bytes.count)])
            default:
                bytes[below(limit)] = [0, 0xFF, 0x80, 0x7F, 0x22, 0x5C][below(6)]
            }
        }
    }

    var variants: Int { Int(ProcessInfo.processInfo.environment["QS_MUTANTS"] ?? "") ?? 2400 }

    func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qs-mutants-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Loads `path` at fp16; an error must name `file` (the corrupted file's name).
    func loadOrFailCleanly(_ path: String, naming file: String, _ what: String, context: ComputeContext) -> Bool {
        do {
            _ = try ModelLoader.load(path: path, level: .fp16, context: context)
            return true
        } catch {
            let message = "\(error)"
            XCTAssertTrue(message.contains(file), "\(what): the error does not name \(file): \(message)")
            return false
        }
    }

    func testCorruptGGUFsLoadOrFailCleanly() throws {
        let path = try Fixtures.path("tiny-qwen2.gguf")
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // Everything before the first tensor's data: header, metadata, tensor table.
        let headerEnd = try GGUFFile(path: path).tensors.map(\.fileOffset).min()!
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let context = ComputeContext(threads: 1)
        var m = Mutator(state: 20261127)
        var refused = 0
        let started = Date()
        for i in 0..<variants {
            var bytes = original
            m.mutate(&bytes, limit: headerEnd, kind: i, json: false)
            let file = directory.appendingPathComponent("m\(i).gguf")
            try Data(bytes).write(to: file)
            if !loadOrFailCleanly(file.path, naming: "m\(i).gguf", "variant \(i)", context: context) { refused += 1 }
            try? FileManager.default.removeItem(at: file)
        }
        XCTAssertGreaterThan(refused, variants / 4, "most corruptions are noticed")
        print("GGUF mutants: \(variants) variants, \(variants - refused) loaded, \(refused) refused, "
              + String(format: "%.1f s", Date().timeIntervalSince(started)))
    }

    func testCorruptHuggingFaceFoldersLoadOrFailCleanly() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let context = ComputeContext(threads: 1)
        var m = Mutator(state: 11272026)
        var refused = 0
        let started = Date()
        // The plain folder and an AWQ one (packed tensors, quantization_config).
        for fixture in ["tiny-llama", "tiny-qwen2-awq"] {
            let source = URL(fileURLWithPath: try Fixtures.path("hf/\(fixture)"))
            let folder = directory.appendingPathComponent(fixture)
            try FileManager.default.copyItem(at: source, to: folder)
            let weights = [UInt8](try Data(contentsOf: folder.appendingPathComponent("model.safetensors")))
            // The safetensors header: an 8-byte length, then that much JSON.
            let headerEnd = 8 + Int(weights[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
            for i in 0..<(variants / 4) {
                let name = ["config.json", "tokenizer.json", "model.safetensors", "tokenizer_config.json"][i % 4]
                let url = folder.appendingPathComponent(name)
                let original = [UInt8](try Data(contentsOf: source.appendingPathComponent(name)))
                var bytes = original
                let isJSON = name.hasSuffix(".json")
                m.mutate(&bytes, limit: isJSON ? bytes.count : headerEnd, kind: i / 4, json: isJSON || m.below(2) == 0)
                try Data(bytes).write(to: url)
                // The error names the folder's file where the problem shows: usually the corrupted one, but a
                // config that unties the embeddings, say, is reported as a tensor missing from model.safetensors.
                if !loadOrFailCleanly(folder.path, naming: folder.path, "\(fixture) variant \(i) (\(name))", context: context) {
                    refused += 1
                }
                try Data(original).write(to: url)
            }
        }
        print("Hugging Face mutants: \(2 * (variants / 4)) variants, \(refused) refused, "
              + String(format: "%.1f s", Date().timeIntervalSince(started)))
        XCTAssertGreaterThan(refused, variants / 8)
    }
}
