import Foundation
import QuantServe

struct QuantizeCommand: Command {
    static let name = "quantize"
    static let summary = "write a model at a quantization level as a Hugging Face folder (config.json, tokenizer, safetensors)"
    static let options: [OptionSpec] = [
        .model,
        OptionSpec(name: "quant", valueName: "LEVEL", help: "fp16, int8, int4 (AWQ, GEMM layout), int4-rtn, nf4 (bitsandbytes) or f32"),
        OptionSpec(name: "out", valueName: "DIR", help: "folder to write (created; must be empty unless --force)"),
        OptionSpec(name: "force", valueName: nil, help: "write into a non-empty folder, replacing its checkpoint files"),
        .calibration,
        .threads,
    ]

    static func run(_ arguments: ParsedArguments) throws {
        let path = try arguments.required("model")
        let level = try parseLevel(try arguments.required("quant"))
        guard level != .native else {
            throw UsageError("'--quant native' has nothing to convert: a GGUF file already is its native model (serve it "
                             + "as it is), and a Hugging Face folder has no GGUF block types; choose fp16, int8, int4, int4-rtn, nf4 or f32")
        }
        let out = try arguments.required("out")
        let threads = try arguments.int("threads", range: 1...1024) ?? ComputeContext.defaultThreadCount
        let start = Date()
        let source = try openModelSource(path: path)
        try CheckpointWriter.write(source: source, level: level, to: out, overwrite: arguments.flag("force"),
                                   context: ComputeContext(threads: threads),
                                   calibrationText: try calibrationText(arguments), log: logToStderr)
        logToStderr(String(format: "wrote %@ at %@ in %.1f s", out, level.rawValue, Date().timeIntervalSince(start)))
    }
}
