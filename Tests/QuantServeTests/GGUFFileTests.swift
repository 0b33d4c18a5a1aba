import XCTest
@testable import QuantServe

final class GGUFFileTests: XCTestCase {
    /// A valid file: two metadata keys, one F32 tensor [4, 2] and one F16 tensor [8].
    func validFile() -> GGUFBuilder {
        var b = GGUFBuilder()
        b.header(tensors: 2, kvs: 3)
        b.kvString("general.architecture", "llama")
        b.kvU32("llama.block_count", 2)
        b.kvStringArray("tokenizer.ggml.tokens", ["a", "b", "c"])
        b.tensorInfo("w", dims: [4, 2], type: 0, offset: 0)
        b.tensorInfo("h", dims: [8], type: 1, offset: 32)
        b.align()
        for i in 0..<8 { b.f32(Float(i)) }
        for _ in 0..<8 { b.bytes += [0x00, 0x3C] }  // fp16 1.0
        return b
    }

    func testReadsMetadataAndTensors() throws {
        let path = try validFile().write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.architecture, "llama")
        XCTAssertEqual(try file.int("llama.block_count"), 2)
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count, 3)
        XCTAssertEqual(file.metadataKeys, ["general.architecture", "llama.block_count", "tokenizer.ggml.tokens"])
        let w = try XCTUnwrap(file.tensor("w"))
        XCTAssertEqual(w.dimensions, [4, 2])
        XCTAssertEqual(w.rowCount, 2)
        XCTAssertEqual(try Dequantizer.dequantize(w, in: file), (0..<8).map(Float.init))
        XCTAssertEqual(try Dequantizer.dequantize(XCTUnwrap(file.tensor("h")), in: file), Array(repeating: 1, count: 8))
    }

    func testMissingMetadataIsNamed() throws {
        let path = try validFile().write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try GGUFFile(path: path)
        XCTAssertThrowsError(try file.int("llama.embedding_length")) { error in
            XCTAssertTrue("\(error)".contains("missing metadata 'llama.embedding_length'"), "\(error)")
        }
        XCTAssertThrowsError(try file.int("general.architecture")) { error in
            XCTAssertTrue("\(error)".contains("is not an integer"), "\(error)")
        }
    }

    /// Each corruption must give an error naming the file and the problem.
    func assertRejects(_ bytes: [UInt8], _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try GGUFBuilder(bytes: bytes).write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try GGUFFile(path: path), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(path), "error does not name the file: \(text)", file: file, line: line)
            XCTAssertTrue(text.contains(expected), "expected '\(expected)' in: \(text)", file: file, line: line)
        }
    }

    func testRejectsBadMagic() throws {
        var bytes = validFile().bytes
        bytes[0] = UInt8(ascii: "X")
        try assertRejects(bytes, "bad magic")
    }

    func testRejectsTruncatedFiles() throws {
        let bytes = validFile().bytes
        // Cut inside the header, the metadata, the tensor infos and the data.
        try assertRejects(Array(bytes[0..<10]), "truncated")
        try assertRejects(Array(bytes[0..<40]), "tensor count 2 is larger than the file can hold")
        try assertRejects(Array(bytes[0..<80]), "string length 17 for metadata key runs past the end of the file")
        try assertRejects(Array(bytes[0..<bytes.count - 20]), "runs past the end of the file")
    }

    func testRejectsHugeCounts() throws {
        var b = GGUFBuilder()
        b.header(tensors: 1 << 40, kvs: 0)
        try assertRejects(b.bytes, "tensor count")
        var c = GGUFBuilder()
        c.header(tensors: 0, kvs: 1)
        c.string("tokenizer.ggml.tokens"); c.i32(9); c.i32(8); c.u64(UInt64(1) << 60)
        try assertRejects(c.bytes, "larger than the file can hold")
        var d = GGUFBuilder()
        d.header(tensors: 0, kvs: 1)
        d.u64(UInt64.max)  // key length
        d.bytes += Array(repeating: 0, count: 16)
        try assertRejects(d.bytes, "runs past the end of the file")
    }

    func testRejectsBadTensorInfos() throws {
        func file(dims: [Int64], type: Int32, offset: UInt64) -> [UInt8] {
            var b = GGUFBuilder()
            b.header(tensors: 1, kvs: 0)
            b.tensorInfo("t", dims: dims, type: type, offset: offset)
            b.align()
            b.bytes += Array(repeating: 0, count: 64)
            return b.bytes
        }
        try assertRejects(file(dims: [4, 0], type: 0, offset: 0), "dimension 1 = 0")
        try assertRejects(file(dims: [4, -3], type: 0, offset: 0), "dimension 1 = -3")
        try assertRejects(file(dims: [4], type: 99, offset: 0), "unknown ggml type 99")
        try assertRejects(file(dims: [4], type: 0, offset: 7), "not aligned")
        try assertRejects(file(dims: [4], type: 0, offset: 64), "runs past the end")
        try assertRejects(file(dims: [Int64(Int32.max), Int64(Int32.max), 1 << 20], type: 0, offset: 0), "too many elements")
        try assertRejects(file(dims: [33], type: 8, offset: 0), "not a multiple of Q8_0's block size 32")
        try assertRejects(file(dims: [1, 1, 1, 1, 1], type: 0, offset: 0), "5 dimensions")
    }

    func testRejectsUnknownValueTypeAndVersion() throws {
        var b = GGUFBuilder()
        b.header(tensors: 0, kvs: 1)
        b.string("x"); b.i32(42)
        try assertRejects(b.bytes, "unknown value type 42")
        var v = GGUFBuilder()
        v.header(tensors: 0, kvs: 0, version: 9)
        try assertRejects(v.bytes, "unsupported GGUF version 9")
    }

    func testRejectsMissingAndEmptyFiles() throws {
        XCTAssertThrowsError(try GGUFFile(path: "/nonexistent/model.gguf")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/model.gguf: cannot open"), "\(error)")
        }
        try assertRejects([], "file is empty")
    }
}
