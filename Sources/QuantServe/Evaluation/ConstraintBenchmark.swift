import Dispatch

/// What structured output costs per generated token: the mask of a JSON answer's every step on this tokenizer's
/// vocabulary (the allowed set found by the trie walk, then written into the logits), timed over a realistic
/// object's tokens — keys, free strings, numbers, arrays, nesting.
public enum ConstraintBenchmark {
    static let sample = #"{"name": "Fluffy the Third", "age": 4, "weight_kg": 5.25, "vaccinated": true, "#
        + #""favourite_foods": ["tuna", "chicken liver", "cream"], "owner": {"name": "Ada Lovelace", "#
        + #""address": "12 Analytical Way, London", "phone": null}, "notes": "Sleeps all day; hunts at night.\nLoves boxes."}"#

    /// Mean milliseconds of one step's mask (a vocabulary trie is built first and not counted).
    public static func jsonMaskMilliseconds(tokenizer: any Tokenizer, rounds: Int = 3) -> Double {
        let trie = VocabularyTrie(tokenizer: tokenizer)
        let tokens = tokenizer.encode(sample, addSpecial: false, parseSpecial: false)
        var logits = [Float](repeating: 0, count: tokenizer.vocabularySize)
        var total = 0.0, steps = 0
        for _ in 0..<rounds {
            var constraint = JSONObjectConstraint(trie: trie, automaton: JSONAutomaton())
            for t in tokens {
                let start = DispatchTime.now()
                logits.withUnsafeMutableBufferPointer { constraint.mask($0) }
                total += DispatchTime.now().seconds(since: start)
                steps += 1
                constraint.accept(t)
            }
        }
        return steps > 0 ? total / Double(steps) * 1000 : 0
    }
}
