/// Holds generated text back while it could still turn into a stop string, so a stop string is never emitted,
/// even when it spans several tokens.
public struct StopStringMatcher: Sendable {
    public let stops: [String]
    private var held = ""

    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
    }

    /// Adds generated text. Returns the text that can be emitted now, and whether a stop string was completed
    /// (the text then ends before it, and everything after it is dropped).
    public mutating func append(_ text: String) -> (emit: String, stopped: Bool) {
        guard !stops.isEmpty else { return (text, false) }
        held += text
        var earliest: String.Index?
        for stop in stops {
            if let r = held.range(of: stop), earliest == nil || r.lowerBound < earliest! { earliest = r.lowerBound }
        }
        if let earliest {
            let emit = String(held[..<earliest])
            held = ""
            return (emit, true)
        }
        // Keep the longest tail of the text that is the start of some stop string.
        var keep = 0
        for stop in stops {
            for length in stride(from: min(stop.count - 1, held.count), to: keep, by: -1)
            where held.hasSuffix(stop.prefix(length)) {
                keep = length
                break
            }
        }
        let emit = String(held.dropLast(keep))
        held = String(held.suffix(keep))
        return (emit, false)
    }

    /// The text held back at the end of the generation (it turned out not to be a stop string).
    public mutating func flush() -> String {
        defer { held = "" }
        return held
    }
}
