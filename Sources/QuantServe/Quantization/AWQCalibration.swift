import Foundation

/// Runs the AWQ search for a model file, or reads its result from the cache.
enum AWQCalibration {
    /// Calibration tokens used: two 512-token windows for the channel statistics and clipping covariances
    /// (QS_CALIBRATION_TOKENS=N for measuring).
    static let tokenCount = ProcessInfo.processInfo.environment["QS_CALIBRATION_TOKENS"].flatMap { Int($0) }.map { min(max($0, 64), 65536) } ?? 1024

    /// The calibration text shipped with the package (prose and Python source, none of it in the held-out set).
    static func defaultText() throws -> String {
        guard let url = Bundle.module.url(forResource: "calibration", withExtension: "txt"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw ModelFileError(path: "calibration.txt", "the bundled calibration text is missing")
        }
        return text
    }

    static var cacheDirectory: URL {
        if let custom = ProcessInfo.processInfo.environment["QUANTSERVE_CACHE"], !custom.isEmpty {
            return URL(fileURLWithPath: custom)
        }
        let base = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("quantserve")
    }

    /// The search result for `source`: from the cache when the key (source files' identity and every setting) matches.
    /// The cache is two files: `awq-KEY.safetensors` (scales, clipping bounds and the rounded int4 matrices) and
    /// `awq-KEY.json` (key, version, layer count), the JSON written last so that it is only found beside a complete
    /// file.
    static func result(source: any TensorSource, tokenizer: any Tokenizer, calibrationText: String?,
                       context: ComputeContext, log: (String) -> Void) throws -> AWQResult {
        let text = try calibrationText ?? defaultText()
        let tokens = Array(tokenizer.encode(text, addSpecial: true, parseSpecial: false).prefix(tokenCount))
        guard tokens.count >= 64 else {
            throw ModelFileError(path: source.path, "the calibration text gives \(tokens.count) tokens; AWQ needs at least 64")
        }
        let identity = [
            source.cacheIdentity,
            "tokens=\(tokens.map(String.init).joined(separator: ","))", "v\(AWQResult.formatVersion)",
            AWQSearch.defaultSettings,
        ].joined(separator: "|")
        let key = String(fnv1a(identity), radix: 16)
        let url = cacheDirectory.appendingPathComponent("awq-\(key).json")
        let roundedURL = cacheDirectory.appendingPathComponent("awq-\(key).safetensors")
        if let data = try? Data(contentsOf: url), var cached = try? JSONDecoder().decode(AWQResult.self, from: data),
           cached.key == key, cached.version == AWQResult.formatVersion,
           cached.layers.count == (try? source.configuration().layerCount),
           let layers = AWQResultFile.read(path: roundedURL.path, layerCount: cached.layers.count) {
            cached.layers = layers
            return cached
        }
        log("awq: searching scales and clipping, then GPTQ rounding, on \(tokens.count) calibration tokens (cached in \(url.path))")
        let start = Date()
        let fp32 = try TransformerModel(source: source, level: .f32, awq: nil, context: context)
        let search = AWQSearch(model: fp32)
        let result = try search.run(tokens: tokens, key: key)
        log(String(format: "awq: search took %.1f s (%@)", Date().timeIntervalSince(start), search.clock.summary))
        // A cache that cannot be written costs the next start another search, nothing else.
        try? FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        if (try? AWQResultFile.write(result.layers, to: roundedURL.path)) != nil,
           let data = try? JSONEncoder().encode(result) {
            try? data.write(to: url, options: .atomic)
        }
        return result
    }

    /// 64-bit FNV-1a: a stable file name for a cache key (the full key is checked inside the file too).
    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
