import Foundation

/// A GGUF file as a model source: configuration from its metadata through the architecture registry, tensors under
/// their own names, dequantized from any supported GGML type.
extension GGUFFile: TensorSource {
    public func configuration() throws -> ModelConfiguration {
        guard let name = architecture else { throw error("missing metadata 'general.architecture'") }
        guard let architecture = Architecture.named(name) else {
            let known = Architecture.registry.keys.sorted().joined(separator: ", ")
            throw error("unsupported architecture '\(name)' (supported: \(known))")
        }
        return try architecture.configuration(self)
    }

    /// GGUF weights are never in one of the runtime's packed formats: every level quantizes on load.
    public var storedLevel: QuantLevel? { nil }

    public var summary: String {
        let bytes = tensors.reduce(0) { $0 + $1.byteCount }
        var types: [String: Int] = [:]
        for t in tensors { types[t.type.name, default: 0] += 1 }
        return "GGUF v\(version), \(tensors.count) tensors, "
            + String(format: "%.1f MiB", Double(bytes) / 1_048_576) + " of tensor data ("
            + types.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
    }

    var cacheIdentity: String { fileIdentity([path]) }

    func contains(_ name: String) -> Bool { tensor(name) != nil }

    /// The tensor `name` with GGUF dimensions `expected`, of a type the dequantizer reads.
    func checkedTensor(_ name: String, _ expected: [Int]) throws -> GGUFTensorInfo {
        guard let t = tensor(name) else { throw error("missing tensor '\(name)'") }
        guard t.dimensions == expected else {
            throw error("tensor '\(name)' has shape \(t.dimensions), expected \(expected)")
        }
        guard t.type.isDequantizable else {
            throw error("tensor '\(name)' has type \(t.type.name), which cannot be loaded (supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K)")
        }
        return t
    }

    func vector(_ name: String, count: Int) throws -> [Float] {
        try Dequantizer.dequantize(checkedTensor(name, [count]), in: self)
    }

    /// GGUF stores a `[rows, cols]` matrix as `ne = [cols, rows]`.
    func matrixRows(_ name: String, rows: Int, cols: Int) throws -> MatrixRows {
        let t = try checkedTensor(name, [cols, rows])
        let rowBytes = cols / t.type.blockSize * t.type.blockBytes
        return MatrixRows { range, destination in
            try Dequantizer.dequantize(t.type, from: data(of: t).baseAddress! + range.lowerBound * rowBytes,
                                       into: destination, count: range.count * cols)
        }
    }

    func storedMatrix(_ name: String, rows: Int, cols: Int, level: QuantLevel, format: MatrixFormat) throws -> WeightMatrix? {
        nil
    }

    func releasePages(_ name: String) {
        guard let t = tensor(name) else { return }
        file.releasePages(t.fileOffset..<(t.fileOffset + t.byteCount))
    }
}
