import QuantServeJSON

/// Typed access to a request's JSON object: every wrong type or value is a 400 naming the field. `null` counts as
/// absent, as in OpenAI's API.
struct RequestFields {
    let object: JSONValue

    init(body: [UInt8]) throws(APIError) {
        guard String(validating: body, as: UTF8.self) != nil else {
            throw APIError.invalid("the request body is not valid UTF-8", code: "invalid_utf8")
        }
        let value: JSONValue
        do { value = try JSONValue.parse(body) } catch {
            throw APIError.invalid("the request body is not valid JSON: \(error)", code: "invalid_json")
        }
        guard case .object = value else {
            throw APIError.invalid("the request body must be a JSON object, got \(value.kind)", code: "invalid_json")
        }
        object = value
    }

    /// The field, nil when absent or null.
    subscript(_ name: String) -> JSONValue? {
        guard let v = object[name], !v.isNull else { return nil }
        return v
    }

    func string(_ name: String) throws(APIError) -> String? {
        guard let v = self[name] else { return nil }
        guard let s = v.string else { throw .wrongType(name, expected: "a string", got: v) }
        return s
    }

    func bool(_ name: String) throws(APIError) -> Bool? {
        guard let v = self[name] else { return nil }
        guard let b = v.bool else { throw .wrongType(name, expected: "a boolean", got: v) }
        return b
    }

    func int(_ name: String, in range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let v = self[name] else { return nil }
        guard let n = v.number else { throw .wrongType(name, expected: "an integer", got: v) }
        guard let i = Int(exactly: n) else { throw .wrongType(name, expected: "an integer", got: v) }
        guard range.contains(i) else { throw .outOfRange(name, "in \(range.lowerBound)...\(range.upperBound)", got: "\(i)") }
        return i
    }

    /// A number within `range`; `openLower` excludes the lower bound.
    func number(_ name: String, in range: ClosedRange<Double>, openLower: Bool = false) throws(APIError) -> Float? {
        guard let v = self[name] else { return nil }
        guard let n = v.number else { throw .wrongType(name, expected: "a number", got: v) }
        guard range.contains(n), !(openLower && n == range.lowerBound) else {
            let lower = openLower ? "(\(range.lowerBound)" : "[\(range.lowerBound)"
            throw .outOfRange(name, "in \(lower), \(range.upperBound)]", got: "\(n)")
        }
        return Float(n)
    }
}
