import Foundation

/// Typed, checked access to a JSON object read from a file, every error naming the file and the key.
struct JSONFields {
    let path: String
    let object: [String: Any]
    /// Prefix for nested keys in messages (`quantization_config.`).
    var keyPrefix = ""

    /// Reads and parses a JSON object from `path`; `what` says what the file is for, in the missing-file message.
    init(path: String, what: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw ModelFileError(path: path, "missing (\(what))") }
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelFileError(path: path, "cannot read") }
        try self.init(path: path, data: data)
    }

    init(path: String, data: Data) throws {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw ModelFileError(path: path, "not valid JSON")
        }
        guard let object = parsed as? [String: Any] else { throw ModelFileError(path: path, "not a JSON object") }
        self.init(path: path, object: object)
    }

    init(path: String, object: [String: Any], keyPrefix: String = "") {
        self.path = path
        self.object = object
        self.keyPrefix = keyPrefix
    }

    func error(_ problem: String) -> ModelFileError { ModelFileError(path: path, problem) }

    func has(_ key: String) -> Bool { object[key] != nil && !(object[key] is NSNull) }

    func int(_ key: String) throws -> Int {
        guard has(key) else { throw error("'\(keyPrefix)\(key)' is missing") }
        return try optionalInt(key)!
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard has(key) else { return nil }
        if let n = object[key] as? NSNumber, !isBool(n), let v = Int(exactly: n.doubleValue) { return v }
        throw error("'\(keyPrefix)\(key)' must be an integer, got \(describe(object[key]))")
    }

    func optionalDouble(_ key: String) throws -> Double? {
        guard has(key) else { return nil }
        if let n = object[key] as? NSNumber, !isBool(n), n.doubleValue.isFinite { return n.doubleValue }
        throw error("'\(keyPrefix)\(key)' must be a number, got \(describe(object[key]))")
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard has(key) else { return nil }
        if let n = object[key] as? NSNumber, isBool(n) { return n.boolValue }
        throw error("'\(keyPrefix)\(key)' must be true or false, got \(describe(object[key]))")
    }

    func string(_ key: String) throws -> String {
        guard has(key) else { throw error("'\(keyPrefix)\(key)' is missing") }
        return try optionalString(key)!
    }

    func optionalString(_ key: String) throws -> String? {
        guard has(key) else { return nil }
        guard let s = object[key] as? String else {
            throw error("'\(keyPrefix)\(key)' must be a string, got \(describe(object[key]))")
        }
        return s
    }

    func optionalObject(_ key: String) throws -> JSONFields? {
        guard has(key) else { return nil }
        guard let o = object[key] as? [String: Any] else {
            throw error("'\(keyPrefix)\(key)' must be an object, got \(describe(object[key]))")
        }
        return JSONFields(path: path, object: o, keyPrefix: keyPrefix + key + ".")
    }

    private func isBool(_ n: NSNumber) -> Bool {
        // JSONSerialization gives booleans as NSNumbers of type "c" and numbers as "i", "q" or "d".
        String(cString: n.objCType) == "c"
    }

    func describe(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: "null"
        case let s as String: "\"\(s)\""
        case let n as NSNumber: isBool(n) ? (n.boolValue ? "true" : "false") : "\(n)"
        case is [Any]: "an array"
        case is [String: Any]: "an object"
        default: "\(value!)"
        }
    }
}
