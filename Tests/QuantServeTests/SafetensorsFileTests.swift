import Foundation
import XCTest
@testable import QuantServe

/// The safetensors reader on a file written by the `safetensors` package, and on broken ones.
final class SafetensorsFileTests: XCTestCase {
    struct Expected: Decodable {
        struct Tensor: Decodable { let dtype: String; let shape: [Int]; let values: [Double] }
        let metadata: [String: String]
        let tensors: [String: Tensor]
    }

    func testReadsAFileWrittenByThePeerLibrary() throws {
        let expected: Expected = try Fixtures.json("peer.safetensors.json")
        let file = try SafetensorsFile(path: try Fixtures.path("peer.safetensors"))
        XCTAssertEqual(file.metadata, expected.metadata)
        XCTAssertEqual(Set(file.tensors.map(\.name)), Set(expected.tensors.keys))
        for (name, e) in expected.tensors {
            let t = try XCTUnwrap(file.tensor(name))
            XCTAssertEqual(t.dtype.rawValue, e.dtype, name)
            XCTAssertEqual(t.shape, e.shape, name)
            let raw = file.data(of: t)
            switch t.dtype {
            case .F32, .F16, .BF16:
                XCTAssertEqual(try file.floats(name).map(Double.init), e.values, name)
            case .I32:
                XCTAssertEqual((0..<t.elementCount).map { Double(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }, e.values)
            case .I8:
                XCTAssertEqual((0..<t.elementCount).map { Double(raw.load(fromByteOffset: $0, as: Int8.self)) }, e.values)
            case .U8:
                XCTAssertEqual(raw.map(Double.init), e.values)
            default:
                XCTFail("unexpected dtype \(t.dtype)")
            }
        }
        XCTAssertThrowsError(try file.floats("model.layers.0.int8.weight")) {
            XCTAssertTrue("\($0)".contains("not a floating-point type"), "\($0)")
        }
        XCTAssertThrowsError(try file.floats("missing")) { XCTAssertTrue("\($0)".contains("missing tensor 'missing'")) }
    }

    func write(header: String, data: Int) throws -> String {
        var bytes = [UInt8]()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes += $0 }
        bytes += Array(header.utf8)
        bytes += [UInt8](repeating: 0, count: data)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qs-\(UUID()).safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func assertRejects(header: String, data: Int = 16, _ message: String, line: UInt = #line) throws {
        let path = try write(header: header, data: data)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try SafetensorsFile(path: path), line: line) { error in
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains(message), "\(error)", line: line)
        }
    }

    func testRejectsCorruptHeaders() throws {
        try assertRejects(header: "not json", "not a JSON object")
        try assertRejects(header: #"{"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 2]}}"#, "unknown dtype")
        try assertRejects(header: #"{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, "invalid shape")
        try assertRejects(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 64]}}"#, "outside the 16 bytes")
        try assertRejects(header: #"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, "needs 12")
        try assertRejects(header: #"{"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}}"#,
                          "more than can be counted")
        try assertRejects(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#,
                          "overlap")
        try assertRejects(header: #"{"__metadata__": {"k": 1}}"#, "__metadata__ must map strings to strings")
        // A header length past the end of the file.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qs-\(UUID()).safetensors").path
        var bytes = [UInt8]()
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { bytes += $0 }
        try Data(bytes + [0, 0]).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try SafetensorsFile(path: path)) { XCTAssertTrue("\($0)".contains("runs past the end"), "\($0)") }
    }
}
