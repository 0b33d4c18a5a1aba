import CKernels
import Foundation

/// A Hugging Face model folder: `config.json`, `tokenizer.json` (+ `tokenizer_config.json`), and the weights in
/// `model.safetensors` or in shards listed by `model.safetensors.index.json`, memory-mapped. Float folders (F32, F16,
/// BF16) and pre-quantized ones (AutoAWQ GEMM, bitsandbytes NF4, QuantServe int8) are read; see `HFStoredMatrix`.
public struct HFModelFolder: TensorSource {
    public let path: String
    public let config: HFConfig
    let architecture: Architecture
    /// `model.safetensors` or `model.safetensors.index.json`, for messages about missing tensors.
    let weightsPath: String
    let files: [SafetensorsFile]
    private let index: [String: HFTensor]

    public init(path: String) throws {
        let folder = URL(fileURLWithPath: path)
        self.path = path
        config = try HFConfig(path: folder.appendingPathComponent("config.json").path)
        let supported = Architecture.registry.values.filter { $0.huggingFace != nil }.map(\.name).sorted()
        guard let architecture = Architecture.named(config.modelType), architecture.huggingFace != nil else {
            throw ModelFileError(path: config.path, "unsupported model_type '\(config.modelType)' (supported: \(supported.joined(separator: ", ")))")
        }
        self.architecture = architecture

        let single = folder.appendingPathComponent("model.safetensors").path
        let indexPath = folder.appendingPathComponent("model.safetensors.index.json").path
        var index: [String: HFTensor] = [:]
        if FileManager.default.fileExists(atPath: indexPath) {
            weightsPath = indexPath
            let json = try JSONFields(path: indexPath, what: "the shard index")
            guard let map = json.object["weight_map"] as? [String: String] else {
                throw json.error("'weight_map' must be an object of tensor name → shard file")
            }
            var shards: [String: SafetensorsFile] = [:]
            for shard in Set(map.values).sorted() {
                guard !shard.contains("/"), shard != "..", !shard.isEmpty else {
                    throw json.error("shard '\(shard)' is not a file name in the folder")
                }
                shards[shard] = try SafetensorsFile(path: folder.appendingPathComponent(shard).path)
            }
            for (name, shard) in map {
                let file = shards[shard]!
                guard let info = file.tensor(name) else {
                    throw json.error("tensor '\(name)' is mapped to \(shard), which does not hold it")
                }
                index[name] = HFTensor(file: file, info: info)
            }
            files = shards.keys.sorted().map { shards[$0]! }
        } else if FileManager.default.fileExists(atPath: single) {
            weightsPath = single
            let file = try SafetensorsFile(path: single)
            for info in file.tensors { index[info.name] = HFTensor(file: file, info: info) }
            files = [file]
        } else {
            throw ModelFileError(path: path, "no model.safetensors or model.safetensors.index.json in the folder")
        }
        self.index = index
    }

    public func configuration() throws -> ModelConfiguration {
        try architecture.huggingFace!(config)
    }

    public func tokenizerVocabulary() throws -> TokenizerVocabulary {
        var vocabulary = try HFTokenizerFiles(folder: path, config: config).vocabulary()
        if vocabulary.chatTemplate == nil { vocabulary.chatTemplate = architecture.defaultChatTemplate }
        return vocabulary
    }

    public var storedLevel: QuantLevel? { config.quantization.level }

    public var summary: String {
        var types: [String: Int] = [:]
        var bytes = 0
        for t in index.values {
            types[t.info.dtype.rawValue, default: 0] += 1
            bytes += t.info.byteRange.count
        }
        let quantization = switch config.quantization {
        case .none: "not quantized"
        case .awq(let g): "AWQ (GEMM, group \(g))"
        case .bitsandbytesNF4(let double): "bitsandbytes NF4\(double ? " (double-quantized absmax)" : "")"
        case .int8(let g): "int8 (group \(g))"
        }
        return "Hugging Face folder, model_type \(config.modelType), \(quantization), \(files.count) safetensors file(s), "
            + "\(index.count) tensors, " + String(format: "%.1f MiB", Double(bytes) / 1_048_576) + " ("
            + types.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
    }

    var cacheIdentity: String { fileIdentity([config.path] + files.map(\.path)) }

    /// The tensor stored under a Hugging Face name.
    func tensor(_ name: String) -> HFTensor? { index[name] }

    func missing(_ name: String) -> ModelFileError {
        ModelFileError(path: weightsPath, "missing tensor '\(name)'")
    }

    private func hfName(_ name: String) throws -> String {
        guard let hf = HFTensorNames.huggingFace(name) else { throw error("no Hugging Face name for tensor '\(name)'") }
        return hf
    }

    func contains(_ name: String) -> Bool {
        guard let hf = HFTensorNames.huggingFace(name) else { return false }
        return index[hf] != nil || (hf.hasSuffix(".weight") && index[String(hf.dropLast(7)) + ".qweight"] != nil)
    }

    func vector(_ name: String, count: Int) throws -> [Float] {
        let hf = try hfName(name)
        guard let t = index[hf] else { throw missing(hf) }
        try t.expectFloat(shape: [count])
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            t.readFloats(from: 0, count: count, into: out.baseAddress!)
            initialized = count
        }
    }

    func matrixRows(_ name: String, rows: Int, cols: Int) throws -> MatrixRows {
        try storedForm(try hfName(name), rows: rows, cols: cols).rows(cols: cols)
    }

    func storedMatrix(_ name: String, rows: Int, cols: Int, level: QuantLevel, format: MatrixFormat) throws -> WeightMatrix? {
        try storedForm(try hfName(name), rows: rows, cols: cols).weightMatrix(rows: rows, cols: cols, format: format)
    }
}

/// One tensor of a folder, with the file it lives in.
struct HFTensor: Sendable {
    let file: SafetensorsFile
    let info: SafetensorsTensorInfo

    var bytes: UnsafeRawBufferPointer { file.data(of: info) }
    var name: String { info.name }

    func error(_ problem: String) -> ModelFileError {
        ModelFileError(path: file.path, "tensor '\(info.name)' \(problem)")
    }

    func expect(_ dtypes: [SafetensorsDType], shape: [Int]) throws {
        guard dtypes.contains(info.dtype) else {
            throw error("has dtype \(info.dtype.rawValue), expected \(dtypes.map(\.rawValue).joined(separator: " or "))")
        }
        guard info.shape == shape else { throw error("has shape \(info.shape), expected \(shape)") }
    }

    func expectFloat(shape: [Int]) throws { try expect([.F32, .F16, .BF16], shape: shape) }

    /// Elements `start ..< start + count` of an F32, F16 or BF16 tensor as FP32.
    func readFloats(from start: Int, count: Int, into destination: UnsafeMutablePointer<Float>) {
        let base = bytes.baseAddress!
        switch info.dtype {
        case .F32:
            UnsafeMutableRawPointer(destination).copyMemory(from: base + start * 4, byteCount: count * 4)
        case .F16:
            qs_convert_fp16_to_fp32(destination, (base + start * 2).assumingMemoryBound(to: UInt16.self), Int64(count))
        case .BF16:
            qs_convert_bf16_to_fp32(destination, (base + start * 2).assumingMemoryBound(to: UInt16.self), Int64(count))
        default:
            preconditionFailure("readFloats on a \(info.dtype.rawValue) tensor (checked by the caller)")
        }
    }
}
