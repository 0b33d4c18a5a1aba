import Foundation

/// Where a model comes from: a GGUF file or a Hugging Face folder. Gives the configuration, the tokenizer's
/// vocabulary and (to the loader, through `TensorSource`) the weights under GGUF's tensor names.
public protocol ModelSource: Sendable {
    /// The file or folder, for messages.
    var path: String { get }
    func configuration() throws -> ModelConfiguration
    func tokenizerVocabulary() throws -> TokenizerVocabulary
    /// The level the weights are stored pre-quantized at (an AWQ, NF4 or int8 folder), nil for float weights.
    var storedLevel: QuantLevel? { get }
    /// The level to run at when the user names none.
    var defaultLevel: QuantLevel { get }
    /// One line for `inspect`: the format, the tensors and their types.
    var summary: String { get }
}

extension ModelSource {
    /// A pre-quantized folder's own level, otherwise the default.
    public var defaultLevel: QuantLevel { storedLevel ?? .default }

    func error(_ problem: String) -> ModelFileError { ModelFileError(path: path, problem) }
}

/// Opens a model: a directory is a Hugging Face folder, anything else a GGUF file.
public func openModelSource(path: String) throws -> any ModelSource {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        return try HFModelFolder(path: path)
    }
    return try GGUFFile(path: path)
}

/// The weights of a model source, by GGUF tensor name (`blk.3.attn_q.weight`); each source maps the names to its own.
protocol TensorSource: ModelSource {
    func contains(_ name: String) -> Bool
    /// A 1-D tensor of `count` values as FP32.
    func vector(_ name: String, count: Int) throws -> [Float]
    /// A `[rows, cols]` matrix (Hugging Face `[out, in]`), readable as FP32 rows whatever its stored type.
    func matrixRows(_ name: String, rows: Int, cols: Int) throws -> MatrixRows
    /// The matrix as stored, when its stored packing is `format`'s kind under `level` and can be used without
    /// re-quantizing; nil when it must go through FP32.
    func storedMatrix(_ name: String, rows: Int, cols: Int, level: QuantLevel, format: MatrixFormat) throws -> WeightMatrix?
    /// The matrix in its stored type (the `native` level): quantized blocks as they are, F16 and F32 as themselves.
    func nativeMatrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix
    /// What identifies the weights' contents for the AWQ cache (paths, sizes, modification times).
    var cacheIdentity: String { get }
    /// Called once a matrix has been read into its own storage: the source may drop its mapped pages from the
    /// resident set (they are read again if asked for), so loading holds the file's copy of one tensor at a time.
    func releasePages(_ name: String)
}

extension TensorSource {
    func releasePages(_ name: String) {}

    func nativeMatrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
        throw error("the native level keeps a GGUF file's own tensor types, and this is not a GGUF file: choose --quant "
                    + QuantLevel.allCases.filter { $0 != .native }.map(\.rawValue).joined(separator: ", "))
    }
}

/// Reads rows of a stored matrix as FP32: `read(rows, destination)` fills `rows.count * cols` floats.
struct MatrixRows: Sendable {
    let read: @Sendable (_ rows: Range<Int>, _ destination: UnsafeMutablePointer<Float>) throws -> Void
}

extension ModelSource {
    /// The weights of this source, if it is one the engine can read (every source made by `openModelSource`).
    func tensors() throws -> any TensorSource {
        guard let source = self as? any TensorSource else { throw error("this model source has no readable tensors") }
        return source
    }
}

/// Path, size and modification time of files, for cache keys.
func fileIdentity(_ paths: [String]) -> String {
    paths.map { path in
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        return [URL(fileURLWithPath: path).standardizedFileURL.path, "\(attributes?[.size] ?? 0)",
                "\((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"].joined(separator: "|")
    }.joined(separator: "|")
}
