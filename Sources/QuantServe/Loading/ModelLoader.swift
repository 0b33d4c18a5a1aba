import Foundation

/// A model ready to run: its file, tokenizer and weights at the chosen quantization level.
public struct LoadedModel {
    public let file: GGUFFile
    public let tokenizer: any Tokenizer
    public let model: TransformerModel
    public let loadSeconds: Double
}

/// Opens model files. (GGUF now; Hugging Face folders join with the quantization levels.)
public enum ModelLoader {
    /// Opens the file and reads the tokenizer only: no weights are touched.
    public static func tokenizer(path: String) throws -> (GGUFFile, any Tokenizer) {
        let file = try GGUFFile(path: path)
        do {
            return (file, try makeTokenizer(vocabulary: try file.tokenizerVocabulary()))
        } catch let error as ModelFileError {
            throw error
        } catch {
            throw ModelFileError(path: path, "tokenizer: \(error)")
        }
    }

    /// - Parameters:
    ///   - calibrationText: text for the int4 level's AWQ search (default: the bundled calibration text).
    ///   - log: progress messages (the AWQ search).
    public static func load(path: String, level: QuantLevel, context: ComputeContext, calibrationText: String? = nil,
                            log: (String) -> Void = { _ in }) throws -> LoadedModel {
        let start = DispatchTime.now()
        let (file, tokenizer) = try tokenizer(path: path)
        let model = try TransformerModel(file: file, level: level, context: context, calibrationText: calibrationText,
                                         log: log)
        guard tokenizer.vocabularySize <= model.configuration.vocabularySize else {
            throw file.error("the tokenizer has \(tokenizer.vocabularySize) tokens but the embedding only \(model.configuration.vocabularySize)")
        }
        return LoadedModel(file: file, tokenizer: tokenizer, model: model,
                           loadSeconds: DispatchTime.now().seconds(since: start))
    }
}
