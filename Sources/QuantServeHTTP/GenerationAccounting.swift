import QuantServe

extension APIServer {
    /// A finished request in the key's usage, the report, and (a deterministic live answer) the response cache.
    func accountFor(_ final: GenerationSession.State, model: ServedModel, engine: Engine, keyName: String?,
                    cacheKey: ResponseCache.Key?, cached: ResponseCache.Answer?) {
        var prompt = 0, cachedPrompt = 0
        for c in final.choices where c.countsPrompt { prompt += c.promptTokens; cachedPrompt += c.cachedTokens }
        let completion = final.choices.reduce(0) { $0 + $1.completionTokens }
        let seconds = final.choices.reduce(0) { $0 + $1.engineSeconds }
        let usd = metrics.cost(engineSeconds: seconds)
        // A cached answer costs nothing and uses none of the key's budget.
        if let keyName, cached == nil { keys.charge(keyName, promptTokens: prompt, completionTokens: completion, usd: usd) }
        let prefillSecondsPerToken = engine.metrics.prefillSecondsPerToken
        report.record(model.name) { b in
            b.requests += 1
            if final.failure != nil { b.failed += 1 }
            b.promptTokens += prompt
            b.completionTokens += completion
            b.engineSeconds += seconds
            b.usd += usd
            if let keyName { b.keys[keyName, default: 0] += 1 }
            if let cached {
                b.responseCacheHits += 1
                b.responseCacheSavedSeconds += cached.engineSeconds
            } else {
                if cacheKey != nil { b.responseCacheMisses += 1 }
                b.prefixCachedTokens += cachedPrompt
                b.prefixCacheSavedSeconds += Double(cachedPrompt) * prefillSecondsPerToken
            }
        }
        if let cacheKey, let responseCache, cached == nil, final.failure == nil,
           final.choices.allSatisfy({ $0.finish == .stop || $0.finish == .length }) {
            responseCache.store(cacheKey, ResponseCache.Answer(
                choices: final.choices.map { ResponseCache.Choice(tokens: $0.tokens, finalText: $0.finalText,
                                                                  finishReason: $0.finish!, promptTokens: $0.promptTokens) },
                engineSeconds: seconds))
        }
    }
}
