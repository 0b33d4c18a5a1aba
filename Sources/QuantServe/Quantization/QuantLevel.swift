import Foundation
import CKernels

/// The precision weights are held at in memory, chosen with `--quant`.
public enum QuantLevel: String, Sendable, CaseIterable {
    case f32
    case fp16
    /// Symmetric int8, one fp16 scale per 32 values (llama.cpp's Q8_0 arrangement).
    case int8
    /// AWQ-style group-wise int4 (groups of 64, fp16 scales, 4-bit zero points), activation-aware scales.
    case int4
    /// The same format quantized by plain round-to-nearest, to measure what AWQ buys.
    case int4RTN = "int4-rtn"
    /// bitsandbytes NF4: code table, blocks of 64, f32 absmax.
    case nf4
    /// A GGUF file's own tensor types (Q4_K, Q5_0, Q6_K, Q8_0, ..., F16, F32), multiplied in place: no second
    /// rounding. The default for a quantized GGUF file.
    case native

    public static let `default` = QuantLevel.int8

    public static func parse(_ raw: String) throws -> QuantLevel {
        guard let level = QuantLevel(rawValue: raw) else {
            throw QuantError.unknownLevel(raw, known: allCases.map(\.rawValue))
        }
        return level
    }

    /// The int4 levels' group (values per scale and zero point): 64, which on the default model loses 2.4 points less
    /// HumanEval pass@1 than 128 and 0.027 less perplexity ratio for 0.01x fp16's bytes more (docs/quantization.md).
    /// QS_INT4_GROUP=128 or 32 overrides it, for measuring.
    static let int4Group: Int = {
        let raw = ProcessInfo.processInfo.environment["QS_INT4_GROUP"].flatMap { Int($0) }
        return [128, 64, 32].contains(raw ?? 0) ? raw! : 64
    }()

    /// The format of a matrix of this level with `cols` inputs. The output matrix (`isOutput`) stays at int8 under
    /// the 4-bit levels, as llama.cpp keeps it at 6-8 bits; shapes a format cannot tile fall back to int8.
    /// `native` has no format of its own: each matrix keeps its stored type (`TensorSource.nativeMatrix`).
    func format(cols: Int, isOutput: Bool) -> MatrixFormat {
        switch self {
        case .native: preconditionFailure("native matrices keep their stored type")
        case .f32: return MatrixFormat(kind: QS_FORMAT_F32, group: 1)
        case .fp16: return MatrixFormat(kind: QS_FORMAT_F16, group: 1)
        case .int8: return .int8(cols: cols)
        case .int4, .int4RTN:
            if isOutput { return .int8(cols: cols) }
            guard let group = [Self.int4Group, 64, 32].first(where: { cols % $0 == 0 }) else { return .int8(cols: cols) }
            return MatrixFormat(kind: QS_FORMAT_Q4, group: group)
        case .nf4:
            if isOutput || cols % 64 != 0 { return .int8(cols: cols) }
            return MatrixFormat(kind: QS_FORMAT_NF4, group: 64)
        }
    }
}

/// A concrete storage format of one matrix.
struct MatrixFormat: Sendable, Equatable {
    let kind: qs_format
    /// Values per scale along a row.
    let group: Int
    /// QS_FORMAT_NATIVE: the GGUF type of the blocks.
    var native: GGMLType? = nil

    static func native(_ type: GGMLType) -> MatrixFormat {
        MatrixFormat(kind: QS_FORMAT_NATIVE, group: 32, native: type)
    }

    static func int8(cols: Int) -> MatrixFormat {
        cols % 32 == 0 ? MatrixFormat(kind: QS_FORMAT_Q8, group: 32) : MatrixFormat(kind: QS_FORMAT_F16, group: 1)
    }

    var isQuantized: Bool { kind != QS_FORMAT_F32 && kind != QS_FORMAT_F16 }

    var name: String {
        switch kind {
        case QS_FORMAT_F32: "f32"
        case QS_FORMAT_F16: "fp16"
        case QS_FORMAT_Q8: "int8"
        case QS_FORMAT_Q4: "int4/g\(group)"
        case QS_FORMAT_NATIVE: native?.name ?? "native"
        default: "nf4"
        }
    }
}

extension qs_format: @retroactive Equatable {}

public enum QuantError: Error, CustomStringConvertible, Equatable {
    case unknownLevel(String, known: [String])

    public var description: String {
        switch self {
        case .unknownLevel(let raw, let known): "unknown quantization level '\(raw)' (known: \(known.joined(separator: ", ")))"
        }
    }
}
