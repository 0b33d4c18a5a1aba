import CKernels
import COpenBLAS
import Foundation

/// Activation-aware weight quantization (AWQ) for the int4 level: per-channel scales found by a grid search
/// over α on calibration activations, then a per-group clipping search, both minimising output error.
/// The facts are in shared/FORMATS.md; the search runs once per model and settings, then comes from the cache.
struct AWQSearch {
    let model: TransformerModel
    /// Where the search's time goes, by phase (logged after a search).
    let clock = PhaseClock()
    /// α is searched on AutoAWQ's grid {0, 1/20, ..., 19/20}, coarse to fine: every fourth point, then the two
    /// neighbours at 1/10 and then at 1/20 of the best so far (9 products instead of 20). Clip max × (1 - i/20),
    /// i < 10, every third i and then the neighbours of each group's best (`bestClips`).
    static let scaleGrid = 20, scaleCoarseStep = 4, clipGrid = 10, clipCoarseStep = 3
    /// Tokens whose outputs score each α (the products dominate the search's time); the channel statistics and
    /// the clipping search's covariances use every calibration token.
    static let scaleSearchTokens = 128
    /// GPTQ rounding after the search: off by default since 2026-11-27, because on HumanEval it cost the default model
    /// 7-9 of 164 problems against AWQ alone (whose rounding is to nearest) with 1,024 or 8,192 calibration tokens,
    /// while it lowered KLD on held-out text (docs/quantization.md). QS_INT4_GPTQ=1 turns it on, for measuring.
    static let gptq = GPTQ()
    static let usesGPTQ = ProcessInfo.processInfo.environment["QS_INT4_GPTQ"] == "1"
    /// Every setting that changes the result, part of the cache key.
    static var defaultSettings: String {
        // (Results of the earlier default group, 128, were keyed without it, and still are.)
        (QuantLevel.int4Group == 128 ? "" : "group=\(QuantLevel.int4Group),") + "grid=\(scaleGrid)/\(scaleCoarseStep),clip=\(clipGrid)/\(clipCoarseStep),scoreTokens=\(scaleSearchTokens)," + (usesGPTQ ? "gptq=\(gptq.damping)/\(gptq.maximumBlock)/actorder" : "nogptq")
    }

    /// Runs `tokens` through the (FP32) model and searches every layer.
    func run(tokens: [Int32], key: String) throws -> AWQResult {
        let captures = try clock.measure("capture") { try capture(tokens: tokens) }
        let layers = (0..<model.configuration.layerCount).map { searchLayer($0, captures: captures[$0], tokens: tokens.count) }
        return AWQResult(key: key, layers: layers)
    }

    /// The inputs of every linear layer over the calibration tokens: [layer][point] -> [tokens, width].
    private func capture(tokens: [Int32]) throws -> [[ActivationPoint: [Float]]] {
        var captures = Array(repeating: [ActivationPoint: [Float]](), count: model.configuration.layerCount)
        model.observer = { point, layer, values, n in
            captures[layer][point, default: []].append(contentsOf: UnsafeBufferPointer(start: values, count: n * self.width(point)))
        }
        defer { model.observer = nil }
        let window = min(512, model.configuration.contextLength)
        let cache = model.makeCache(capacity: window)
        var start = 0
        while start < tokens.count {
            cache.reset()
            _ = try model.forward(Array(tokens[start..<min(tokens.count, start + window)]), cache: cache)
            start += window
        }
        return captures
    }

    private func width(_ point: ActivationPoint) -> Int {
        let c = model.configuration
        switch point {
        case .attentionInput, .mlpInput: return c.hiddenSize
        case .attentionOutput: return c.qDim
        case .downInput: return c.intermediateSize
        }
    }

    private func searchLayer(_ l: Int, captures: [ActivationPoint: [Float]], tokens n: Int) -> AWQLayer {
        let c = model.configuration
        let layer = model.weights.layers[l]
        var wq = copy(layer.wq), wk = copy(layer.wk)
        var wv = copy(layer.wv), wo = copy(layer.wo)
        var gate = copy(layer.gate), up = copy(layer.up), down = copy(layer.down)
        var xAttention = captures[.attentionInput]!, xOutput = captures[.attentionOutput]!
        var xMLP = captures[.mlpInput]!, xDown = captures[.downInput]!

        let (attentionScales, mlpScales, downScales, outputScales) = clock.measure("scales") {
            (bestScales(x: xAttention, n: n, weights: [wq, wk, wv]),
             bestScales(x: xMLP, n: n, weights: [gate, up], gated: true),
             bestScales(x: xDown, n: n, weights: [down]),
             c.qDim == c.kvDim ? bestScales(x: xOutput, n: n, weights: [wo]) : nil)
        }

        // Apply them, as the loader will: weights' columns × s, inputs ÷ s, and the producer of a scaled input ÷ s.
        // Every folding stays exact with Gemma's extra norms: attn_norm and ffn_norm still directly precede Q/K/V and
        // gate/up (the Q/K norms act on the products' outputs, the post norms on O's and down's outputs, all
        // unchanged by a scale folded into their inputs); up's rows scale act(gate) · up linearly into down; V's
        // rows reach O linearly (softmax weights are per position, not per channel).
        wq.scaleColumns(by: attentionScales)
        wk.scaleColumns(by: attentionScales)
        wv.scaleColumns(by: attentionScales)
        xAttention.scaleColumns(dividingBy: attentionScales)
        gate.scaleColumns(by: mlpScales)
        up.scaleColumns(by: mlpScales)
        xMLP.scaleColumns(dividingBy: mlpScales)
        down.scaleColumns(by: downScales)
        up.scaleRows(dividingBy: downScales)
        xDown.scaleColumns(dividingBy: downScales)
        if let outputScales {
            wo.scaleColumns(by: outputScales)
            wv.scaleRows(dividingBy: outputScales)
            xOutput.scaleColumns(dividingBy: outputScales)
        }
        // Q and K are not clipped, as in AutoAWQ: attention scores are sensitive to it.
        let clips: [String: [Float]] = clock.measure("clipping") { [
            "v": bestClips(x: xAttention, n: n, w: wv), "o": bestClips(x: xOutput, n: n, w: wo),
            "gate": bestClips(x: xMLP, n: n, w: gate), "up": bestClips(x: xMLP, n: n, w: up),
            "down": bestClips(x: xDown, n: n, w: down),
        ] }
        var result = AWQLayer(attentionScales: attentionScales, outputScales: outputScales, mlpScales: mlpScales,
                              downScales: downScales, clips: clips)
        // GPTQ rounding of every int4 linear on its scaled inputs, each group clamped as the clipping search chose
        // (a shape the loader keeps at int8 is left to it); one factorisation per set of inputs.
        let byInput: [([Float], [(String, Matrix)])] = [
            (xAttention, [("q", wq), ("k", wk), ("v", wv)]), (xOutput, [("o", wo)]),
            (xMLP, [("gate", gate), ("up", up)]), (xDown, [("down", down)]),
        ]
        for (x, linears) in byInput where AWQSearch.usesGPTQ {
            let k = linears[0].1.cols, format = QuantLevel.int4.format(cols: k, isOutput: false)
            guard format.kind == QS_FORMAT_Q4, let f = clock.measure("gptq factorisation", {
                AWQSearch.gptq.factorise(inputs: x, n: n, k: k, group: format.group)
            }) else { continue }
            clock.measure("gptq rounding") {
                for (name, w) in linears {
                    result.rounded[name] = AWQSearch.gptq.quantize(w, factorisation: f, group: format.group,
                                                                   clip: clips[name], pool: model.context.pool)
                }
            }
        }
        return result
    }

    private func copy(_ w: WeightMatrix) -> Matrix {
        precondition(w.format.kind == QS_FORMAT_F32, "AWQ searches on FP32 weights")
        return Matrix(rows: w.rows, cols: w.cols, values: Array(UnsafeBufferPointer(start: w.data.typed(Float.self), count: w.rows * w.cols)))
    }

    /// The α whose scales give the lowest output MSE after int4 quantization (identity included as a candidate,
    /// so the result is never worse than round-to-nearest on the calibration data).
    /// The int4 group size of a matrix with `cols` inputs: the loader's choice, so clips line up with its groups.
    static func group(cols: Int) -> Int {
        let format = QuantLevel.int4.format(cols: cols, isOutput: false)
        return format.kind == QS_FORMAT_Q4 ? format.group : 32
    }

    /// `gated`: the weights are [gate; up] and the loss is taken on silu(gate) * up, the MLP's inner activation,
    /// closer to AutoAWQ's block-output objective than the two linear outputs apart.
    private func bestScales(x: [Float], n: Int, weights: [Matrix], gated: Bool = false) -> [Float] {
        let k = weights[0].cols
        let group = AWQSearch.group(cols: k)
        let w = Matrix(rows: weights.reduce(0) { $0 + $1.rows }, cols: k, values: weights.flatMap(\.values))
        var xMean = [Float](repeating: 0, count: k)
        for t in 0..<n { for j in 0..<k { xMean[j] += abs(x[t * k + j]) } }
        for j in 0..<k { xMean[j] /= Float(n) }
        // Per-channel mean of |w| normalised by its group's max, as AutoAWQ's w_mean.
        var wMean = [Float](repeating: 0, count: k)
        for r in 0..<w.rows {
            for g in 0..<(k / group) {
                let base = r * k + g * group
                var m: Float = 1e-12
                for j in 0..<group { m = max(m, abs(w.values[base + j])) }
                for j in 0..<group { wMean[g * group + j] += abs(w.values[base + j]) / m }
            }
        }
        for j in 0..<k { wMean[j] /= Float(w.rows) }

        // Channel statistics above use every token; the α losses a leading subset.
        let n = min(n, AWQSearch.scaleSearchTokens)
        var reference = w.product(x, n: n)
        if gated { reference = gate(reference, n: n, width: w.rows / 2) }
        var scratch = SearchScratch(weights: w.values.count, outputs: n * w.rows)
        var best = [Float](repeating: 1, count: k)
        var bestLoss = loss(scales: nil, w: w, x: x, n: n, reference: reference, gated: gated, scratch: &scratch)
        var evaluated: [Int: Double] = [:]
        func evaluate(_ i: Int) {
            guard (0..<AWQSearch.scaleGrid).contains(i), evaluated[i] == nil else { return }
            let alpha = Float(i) / Float(AWQSearch.scaleGrid)
            var s = (0..<k).map { j in max(pow(xMean[j], alpha) / (pow(wMean[j], 1 - alpha) + 1e-4), 1e-4) }
            let norm = (s.max()! * s.min()!).squareRoot()
            for j in 0..<k { s[j] /= norm }
            let l = loss(scales: s, w: w, x: x, n: n, reference: reference, gated: gated, scratch: &scratch)
            evaluated[i] = l
            if l < bestLoss { bestLoss = l; best = s }
        }
        for i in stride(from: 0, to: AWQSearch.scaleGrid, by: AWQSearch.scaleCoarseStep) { evaluate(i) }
        var step = AWQSearch.scaleCoarseStep / 2
        while step >= 1 {
            // The best grid point so far (the identity, not on the grid, refines around α = 0).
            let centre = evaluated.min { $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key) }!.key
            evaluate(centre - step)
            evaluate(centre + step)
            step /= 2
        }
        return best
    }

    /// Buffers reused across the candidates of one search.
    private struct SearchScratch {
        var quantized: [Float]
        var output: [Float]
        init(weights: Int, outputs: Int) {
            quantized = [Float](repeating: 0, count: weights)
            output = [Float](repeating: 0, count: outputs)
        }
    }

    /// Output MSE of Q(W·diag(s))·diag(1/s) against the FP32 product (s nil: plain round-to-nearest).
    private func loss(scales s: [Float]?, w: Matrix, x: [Float], n: Int, reference: [Float], gated: Bool,
                      scratch: inout SearchScratch) -> Double {
        let group = AWQSearch.group(cols: w.cols)
        scratch.quantized.withUnsafeMutableBufferPointer { q in
            qs_fake_quantize_q4(model.context.pool, q.baseAddress, w.values, s, Int64(w.rows), Int64(w.cols), Int64(group), nil)
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(w.rows), Int32(w.cols), 1, x, Int32(w.cols),
                    scratch.quantized, Int32(w.cols), 0, &scratch.output, Int32(w.rows))
        let output = gated ? gate(scratch.output, n: n, width: w.rows / 2) : scratch.output
        return qs_squared_error(output, reference, Int64(reference.count)) / Double(reference.count)
    }

    /// [n, 2·width] rows of [gate | up] -> [n, width] rows of act(gate) · up, with the model's activation.
    private func gate(_ y: [Float], n: Int, width: Int) -> [Float] {
        AWQSearch.gate(y, n: n, width: width, activation: model.configuration.activation)
    }

    static func gate(_ y: [Float], n: Int, width: Int, activation: MLPActivation) -> [Float] {
        var out = [Float](repeating: 0, count: n * width)
        for t in 0..<n {
            for j in 0..<width {
                let g = y[t * 2 * width + j], u = y[t * 2 * width + width + j]
                switch activation {
                case .silu: out[t * width + j] = g / (1 + exp(-g)) * u
                case .geluTanh: out[t * width + j] = 0.5 * g * (1 + tanh(0.7978845608 * (g + 0.044715 * g * g * g))) * u
                }
            }
        }
        return out
    }

    /// Per (row, group): the clipping bound max|w|·(1 - i/20), i < 10, with the lowest output error, measured
    /// through each group's input covariance C_g = X_gᵀX_g: error = d C_g dᵀ with d the row's quantization error.
    /// Coarse to fine: every third bound (i = 0, 3, 6, 9) for all groups, then each group's two neighbours of its
    /// best (6 passes over the matrix instead of 10; the same choice wherever a group's error is unimodal in i).
    private func bestClips(x: [Float], n: Int, w: Matrix) -> [Float] {
        let k = w.cols, group = AWQSearch.group(cols: k), groups = k / group
        // Input covariance of each group of channels.
        let covariance = (0..<groups).map { g in GPTQ.covariance(x, n: n, k: k, columns: g * group, width: group) }
        var maxAbs = [Float](repeating: 0, count: w.rows * groups)
        for r in 0..<w.rows {
            for g in 0..<groups {
                var m: Float = 0
                for j in 0..<group { m = max(m, abs(w.values[r * k + g * group + j])) }
                maxAbs[r * groups + g] = m
            }
        }
        var bestStep = [Int](repeating: 0, count: w.rows * groups)
        var bestError = [Float](repeating: .infinity, count: w.rows * groups)
        var clip = maxAbs
        var difference = [Float](repeating: 0, count: w.values.count)
        var weighted = [Float](repeating: 0, count: w.rows * group)
        var error = [Float](repeating: 0, count: w.rows * groups)
        // Tries step(j) for every (row, group) j at once (nil: leave j as it is).
        func evaluate(_ step: (Int) -> Int?) {
            var tried = [Bool](repeating: false, count: clip.count)
            for j in clip.indices {
                guard let i = step(j), (0..<AWQSearch.clipGrid).contains(i) else { continue }
                clip[j] = maxAbs[j] * (1 - Float(i) / 20)
                tried[j] = true
            }
            guard tried.contains(true) else { return }
            difference.withUnsafeMutableBufferPointer { d in
                qs_fake_quantize_q4(model.context.pool, d.baseAddress, w.values, nil, Int64(w.rows), Int64(k), Int64(group), clip)
                cblas_saxpy(Int32(d.count), -1, w.values, 1, d.baseAddress, 1)
            }
            // error[r, g] = D_g[r] · (D_g C_g)[r], D_g the group's columns of the difference (stride k).
            difference.withUnsafeBufferPointer { d in
                error.withUnsafeMutableBufferPointer { e in
                    for g in 0..<groups {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(w.rows), Int32(group), Int32(group), 1,
                                    d.baseAddress! + g * group, Int32(k), covariance[g], Int32(group), 0, &weighted, Int32(group))
                        qs_row_dots(e.baseAddress! + g, Int64(groups), d.baseAddress! + g * group, Int64(k), weighted,
                                    Int64(group), Int64(w.rows), Int64(group))
                    }
                }
            }
            for j in clip.indices where tried[j] && error[j] < bestError[j] {
                let i = step(j)!
                bestError[j] = error[j]
                bestStep[j] = i
            }
        }
        let coarse = AWQSearch.clipCoarseStep
        for i in stride(from: 0, to: AWQSearch.clipGrid, by: coarse) { evaluate { _ in i } }
        let coarseBest = bestStep
        for offset in 1...(coarse / 2) {
            evaluate { coarseBest[$0] - offset }
            evaluate { coarseBest[$0] + offset }
        }
        return zip(maxAbs, bestStep).map { m, i in m * (1 - Float(i) / 20) }
    }

}

/// A plain row-major FP32 matrix for the search's arithmetic.
struct Matrix {
    let rows: Int
    let cols: Int
    var values: [Float]

    /// x [n, cols] @ selfᵀ -> [n, rows]
    func product(_ x: [Float], n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: n * rows)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(rows), Int32(cols), 1, x, Int32(cols),
                    values, Int32(cols), 0, &out, Int32(rows))
        return out
    }

    mutating func scaleColumns(by s: [Float]) { values.scaleColumns(by: s) }
    mutating func scaleColumns(dividingBy s: [Float]) { values.scaleColumns(dividingBy: s) }
    mutating func scaleRows(dividingBy s: [Float]) {
        for r in 0..<rows { let inv = 1 / s[r]; for j in 0..<cols { values[r * cols + j] *= inv } }
    }
}

extension [Float] {
    /// Treats the array as rows of `s.count` and multiplies column j by s[j].
    mutating func scaleColumns(by s: [Float]) {
        let k = s.count
        withUnsafeMutableBufferPointer { v in
            for r in 0..<(v.count / k) { for j in 0..<k { v[r * k + j] *= s[j] } }
        }
    }

    mutating func scaleColumns(dividingBy s: [Float]) { scaleColumns(by: s.map { 1 / $0 }) }
}
