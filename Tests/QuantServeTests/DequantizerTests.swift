import XCTest
@testable import QuantServe

/// Known blocks from real GGUF tensors (and gguf-py's quantizer), dequantized by gguf-py: our C dequantizers must agree.
final class DequantizerTests: XCTestCase {
    struct Block: Decodable {
        let type: String
        let ggml_type: Int32
        let bytes_hex: String
        let values: [ReferenceFloat]
    }

    /// A number, or "inf" / "-inf" / "nan" (JSON has no literal for them).
    struct ReferenceFloat: Decodable {
        let value: Float
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode(Float.self) { value = v; return }
            switch try c.decode(String.self) {
            case "inf": value = .infinity
            case "-inf": value = -.infinity
            case "nan": value = .nan
            case let s: throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a float: \(s)")
            }
        }
    }

    func testEveryTypeMatchesReferenceBlocks() throws {
        let blocks: [Block] = try Fixtures.json("dequant-blocks.json")
        var seen = Set<String>()
        for block in blocks {
            let type = try XCTUnwrap(GGMLType(rawValue: block.ggml_type), block.type)
            var bytes: [UInt8] = []
            var hex = block.bytes_hex[...]
            while hex.count >= 2 {
                bytes.append(UInt8(hex.prefix(2), radix: 16)!)
                hex = hex.dropFirst(2)
            }
            XCTAssertEqual(bytes.count, block.values.count / type.blockSize * type.blockBytes, block.type)
            var out = [Float](repeating: .nan, count: block.values.count)
            try bytes.withUnsafeBytes { raw in
                try Dequantizer.dequantize(type, from: raw.baseAddress!, into: &out, count: out.count)
            }
            for (i, expected) in block.values.map(\.value).enumerated() {
                if expected.isNaN {
                    XCTAssertTrue(out[i].isNaN, "\(block.type)[\(i)]")
                } else if expected.isInfinite {
                    XCTAssertEqual(out[i], expected, "\(block.type)[\(i)]")
                } else {
                    XCTAssertEqual(out[i], expected, accuracy: 1e-6 * max(1, abs(expected)), "\(block.type)[\(i)]")
                }
            }
            seen.insert(block.type)
        }
        XCTAssertEqual(seen, ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
    }

    func testUnsupportedTypeIsAnError() {
        var out = [Float](repeating: 0, count: 256)
        let bytes = [UInt8](repeating: 0, count: 256)
        XCTAssertThrowsError(try Dequantizer.dequantize(.q8_K, from: bytes, into: &out, count: 256)) { error in
            XCTAssertTrue("\(error)".contains("Q8_K cannot be dequantized"), "\(error)")
        }
    }
}
