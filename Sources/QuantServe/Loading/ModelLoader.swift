import Foundation

/// A model ready to run: its source, tokenizer and weights at the chosen quantization level.
public struct LoadedModel {
    /// The GGUF file or Hugging Face folder it was read from.
    public let source: any ModelSource
    public let tokenizer: any Tokenizer
    public let model: TransformerModel
    public let loadSeconds: Double
}

/// Opens models: GGUF files and Hugging Face folders (a path that is a directory).
public enum ModelLoader {
    /// Opens the model and reads the tokenizer only: no weights are touched.
    public static func tokenizer(path: String) throws -> (any ModelSource, any Tokenizer) {
        let source = try openModelSource(path: path)
        do {
            return (source, try makeTokenizer(vocabulary: try source.tokenizerVocabulary()))
        } catch let error as ModelFileError {
            throw error
        } catch {
            throw ModelFileError(path: path, "tokenizer: \(error)")
        }
    }

    /// - Parameters:
    ///   - level: the quantization level; nil for the source's own (a pre-quantized folder's) or else the default.
    ///   - calibrationText: text for the int4 level's AWQ search (default: the bundled calibration text).
    ///   - log: progress messages (the AWQ search).
    public static func load(path: String, level: QuantLevel?, context: ComputeContext, calibrationText: String? = nil,
                            log: (String) -> Void = { _ in }) throws -> LoadedModel {
        let start = DispatchTime.now()
        let (source, tokenizer) = try tokenizer(path: path)
        let model = try TransformerModel(source: source, level: level ?? source.defaultLevel, context: context,
                                         calibrationText: calibrationText, log: log)
        guard tokenizer.vocabularySize <= model.configuration.vocabularySize else {
            throw ModelFileError(path: path, "the tokenizer has \(tokenizer.vocabularySize) tokens but the embedding only \(model.configuration.vocabularySize)")
        }
        return LoadedModel(source: source, tokenizer: tokenizer, model: model,
                           loadSeconds: DispatchTime.now().seconds(since: start))
    }
}
