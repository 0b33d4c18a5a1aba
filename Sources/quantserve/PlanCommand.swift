import Foundation
import QuantServe
import QuantServeJSON

/// `quantserve plan`: per level of a saved bench result, the replicas an autoscaler would run for a traffic profile,
/// the p99 time to first token reached, and the cost per day and per million tokens (docs/deploy.md).
struct PlanCommand: Command {
    static let name = "plan"
    static let summary = "replicas, p99 time to first token and cost per level for a traffic profile, from a saved bench"
    static let options: [OptionSpec] = [
        OptionSpec(name: "bench", valueName: "FILE", help: "a saved 'quantserve bench --save-result' file (its levels' prefill and decode curves)"),
        OptionSpec(name: "traffic", valueName: "FILE", help: "CSV 'seconds,rps,prompt_tokens,output_tokens': each row holds until the next (examples/traffic-day.csv)"),
        OptionSpec(name: "rps", valueName: "R", help: "constant traffic instead of --traffic: R requests per second"),
        OptionSpec(name: "prompt-tokens", valueName: "N", help: "with --rps: prompt tokens per request (default 500)"),
        OptionSpec(name: "output-tokens", valueName: "N", help: "with --rps: output tokens per request (default 200)"),
        OptionSpec(name: "duration", valueName: "S", help: "seconds simulated (default: a day for --traffic, an hour for --rps)"),
        OptionSpec(name: "p99-ttft-ms", valueName: "MS", help: "the time-to-first-token objective each level is judged against"),
        OptionSpec(name: "usd-per-hour", valueName: "X", help: "price of one replica's machine per hour (default 0.10)"),
        OptionSpec(name: "target-waiting", valueName: "N", help: "the autoscaler's target of waiting requests per replica (default 2, as deploy/kubernetes/hpa.yaml)"),
        OptionSpec(name: "target-busy", valueName: "F", help: "the autoscaler's target share of busy sequence slots (default: per level, the largest of 0.7, 0.6, 0.5, 0.42, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05 that meets the objective)"),
        OptionSpec(name: "min-replicas", valueName: "N", help: "default 1"),
        OptionSpec(name: "max-replicas", valueName: "N", help: "default 20"),
        OptionSpec(name: "concurrency", valueName: "K", help: "also print one replica's decode tok/s at K streams (default 4)"),
        OptionSpec(name: "svg", valueName: "FILE", help: "draw replicas and p99 TTFT over time per level"),
        OptionSpec(name: "json", valueName: nil, help: "print the plan as JSON"),
    ]

    struct Level {
        let name: String
        let replica: CapacitySimulation.Replica
        let peakRSS: Double
    }

    static func run(_ arguments: ParsedArguments) throws {
        let levels = try benchLevels(try arguments.required("bench"))
        let sloMs = try arguments.double("p99-ttft-ms", range: 1...3_600_000) ?? { throw UsageError("missing required option '--p99-ttft-ms'") }()
        let usdPerHour = try arguments.double("usd-per-hour", range: 0...1_000_000) ?? 0.10
        var traffic: [CapacitySimulation.Segment]
        var duration: Double
        switch (arguments.string("traffic"), try arguments.double("rps", range: 0...1_000_000)) {
        case (let file?, nil):
            traffic = try trafficFile(file)
            duration = 86_400
        case (nil, let rps?):
            traffic = [CapacitySimulation.Segment(start: 0, requestsPerSecond: rps,
                                                  promptTokens: try arguments.int("prompt-tokens", range: 0...1_000_000) ?? 500,
                                                  outputTokens: try arguments.int("output-tokens", range: 1...1_000_000) ?? 200)]
            duration = 3600
        default:
            throw UsageError("give one of '--traffic FILE' and '--rps R'")
        }
        duration = try arguments.double("duration", range: 60...(86_400 * 7)) ?? duration
        var scaler = CapacitySimulation.Autoscaler()
        scaler.targetWaiting = try arguments.double("target-waiting", range: 0.1...10_000) ?? scaler.targetWaiting
        scaler.targetBusy = try arguments.double("target-busy", range: 0.05...1) ?? scaler.targetBusy
        scaler.minReplicas = try arguments.int("min-replicas", range: 1...10_000) ?? scaler.minReplicas
        scaler.maxReplicas = try arguments.int("max-replicas", range: scaler.minReplicas...10_000) ?? max(scaler.minReplicas, scaler.maxReplicas)
        let concurrency = try arguments.int("concurrency", range: 1...4096) ?? 4

        // Per level: the cheapest autoscaler setting (the highest target share of busy slots) whose simulated p99
        // TTFT meets the objective, or the given one.
        let busyTargets = try arguments.double("target-busy", range: 0.05...1).map { [$0] } ?? [0.7, 0.6, 0.5, 0.42, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05]
        var rows: [JSONValue] = []
        var results: [(Level, CapacitySimulation.Result)] = []
        for level in levels {
            var chosen: (Double, CapacitySimulation.Result)?
            for target in busyTargets {
                var settings = scaler
                settings.targetBusy = target
                var simulation = CapacitySimulation(replica: level.replica, traffic: traffic, duration: duration, autoscaler: settings)
                simulation.step = duration > 7200 ? 0.25 : 0.05
                let r = simulation.run()
                chosen = (target, r)
                if r.p99TTFT * 1000 <= sloMs { break }
            }
            let (target, r) = chosen!
            results.append((level, r))
            let usd = r.replicaSeconds / 3600 * usdPerHour
            rows.append(["level": .string(level.name), "target_busy": JSONValue(target),
                         "replicas_min": JSONValue(r.replicasPerMinute.min() ?? 0),
                         "replicas_mean": JSONValue(r.meanReplicas), "replicas_max": JSONValue(r.replicasPerMinute.max() ?? 0),
                         "replica_hours": JSONValue(r.replicaSeconds / 3600), "requests": JSONValue(r.requests),
                         "p99_ttft_ms": JSONValue(r.p99TTFT * 1000), "meets_objective": JSONValue(r.p99TTFT * 1000 <= sloMs),
                         "usd": JSONValue(usd), "usd_per_day": JSONValue(usd * 86_400 / duration),
                         "usd_per_million_tokens": r.tokens > 0 ? JSONValue(usd / Double(r.tokens) * 1e6) : nil,
                         "replica_decode_tok_s_at_concurrency": JSONValue(level.replica.decodeTokensPerSecond(Double(concurrency))),
                         "replicas_per_minute": .array(r.replicasPerMinute.map { JSONValue($0) })])
        }
        if let svg = arguments.string("svg") {
            do { try plot(results, duration: duration, sloMs: sloMs).write(toFile: svg, atomically: true, encoding: .utf8) } catch {
                throw UsageError("cannot write '--svg' \(svg): \(error)")
            }
        }
        if arguments.flag("json") {
            print(JSONValue.object([("duration_s", JSONValue(duration)), ("p99_ttft_objective_ms", JSONValue(sloMs)),
                                    ("usd_per_hour", JSONValue(usdPerHour)), ("concurrency", JSONValue(concurrency)),
                                    ("levels", .array(rows))]).serialized)
            return
        }
        print(String(format: "Simulated %.0f s of traffic; an autoscaler on %.1f waiting requests or a share of busy sequence slots "
                     + "per replica (%d-%d replicas); objective p99 TTFT %.0f ms; $%.2f per replica-hour.", duration,
                     scaler.targetWaiting, scaler.minReplicas, scaler.maxReplicas, sloMs, usdPerHour))
        print("")
        print("| level | busy target | replicas min / mean / max | replica-hours | p99 TTFT | objective | USD per day | USD per 1M tokens | one replica at \(concurrency) streams |")
        print("|---|---|---|---|---|---|---|---|---|")
        for (row, (level, r)) in zip(rows, results) {
            let perMillion = row["usd_per_million_tokens"]?.number.map { String(format: "$%.4f", $0) } ?? "-"
            print(String(format: "| %@ | %.2f | %d / %.1f / %d | %.1f | %.0f ms | %@ | $%.2f | %@ | %.1f tok/s |", level.name,
                         row["target_busy"]?.number ?? 0,
                         r.replicasPerMinute.min() ?? 0, r.meanReplicas, r.replicasPerMinute.max() ?? 0, r.replicaSeconds / 3600,
                         r.p99TTFT * 1000, r.p99TTFT * 1000 <= sloMs ? "met" : "missed", row["usd_per_day"]?.number ?? 0,
                         perMillion, level.replica.decodeTokensPerSecond(Double(concurrency))))
        }
    }

    /// The levels of a saved bench result: each row's prefill rate, decode curve and load time.
    static func benchLevels(_ path: String) throws -> [Level] {
        guard let data = FileManager.default.contents(atPath: path) else { throw UsageError("cannot read '--bench' \(path)") }
        guard let value = try? JSONValue.parse(Array(data)), let list = value.array, !list.isEmpty else {
            throw UsageError("'--bench' \(path) is not a saved bench result (write one with 'quantserve bench --save-result FILE')")
        }
        return try list.enumerated().map { i, row in
            guard let name = row["quant"]?.string, let prefill = row["prefill_tok_s"]?.number, prefill > 0,
                  let aggregate = row["aggregate"]?.object, !aggregate.isEmpty else {
                throw UsageError("'--bench' \(path): row \(i) lacks quant, prefill_tok_s or aggregate")
            }
            var curve: [(sequences: Int, tokensPerSecond: Double)] = []
            for (k, v) in aggregate {
                guard let n = Int(k), n > 0, let rate = v.number, rate > 0 else {
                    throw UsageError("'--bench' \(path): row \(i) has a bad aggregate entry '\(k)'")
                }
                curve.append((n, rate))
            }
            let replica = CapacitySimulation.Replica(prefillTokensPerSecond: prefill, decodeCurve: curve,
                                                     startSeconds: (row["load_s"]?.number ?? 0) + 10,
                                                     maxSequences: curve.map(\.sequences).max() ?? 16)
            return Level(name: name, replica: replica, peakRSS: row["peak_rss_bytes"]?.number ?? 0)
        }
    }

    /// `seconds,rps,prompt_tokens,output_tokens` rows (a header line is allowed; `#` starts a comment).
    static func trafficFile(_ path: String) throws -> [CapacitySimulation.Segment] {
        guard let data = FileManager.default.contents(atPath: path) else { throw UsageError("cannot read '--traffic' \(path)") }
        var segments: [CapacitySimulation.Segment] = []
        for (n, raw) in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0].trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("seconds") { continue }
            let f = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 4, let start = Double(f[0]), start >= 0, let rps = Double(f[1]), rps >= 0, rps.isFinite,
                  let prompt = Int(f[2]), prompt >= 0, let output = Int(f[3]), output >= 1 else {
                throw UsageError("'--traffic' \(path) line \(n + 1): expected 'seconds,rps,prompt_tokens,output_tokens', got '\(line)'")
            }
            segments.append(CapacitySimulation.Segment(start: start, requestsPerSecond: rps, promptTokens: prompt, outputTokens: output))
        }
        guard !segments.isEmpty else { throw UsageError("'--traffic' \(path) has no rows") }
        return segments
    }

    /// Two panels over time: replicas per level, and p99 TTFT per minute per level against the objective.
    static func plot(_ results: [(Level, CapacitySimulation.Result)], duration: Double, sloMs: Double) -> String {
        let w = 760.0, h = 520.0, left = 70.0, right = 130.0, panel = 190.0, gap = 70.0, top = 40.0
        let colors = ["#1f6feb", "#d1242f", "#1a7f37", "#8250df", "#bf8700", "#57606a"]
        let minutes = max(1, results.map { $0.1.replicasPerMinute.count }.max() ?? 1)
        let maxReplicas = Double(max(1, results.flatMap { $0.1.replicasPerMinute }.max() ?? 1))
        let maxTTFT = max(sloMs, results.flatMap { $0.1.p99TTFTPerMinute.compactMap { $0.map { $0 * 1000 } } }.max() ?? 1) * 1.1
        func x(_ m: Int) -> Double { left + Double(m) / Double(minutes) * (w - left - right) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        for (p, title) in [(0, "replicas"), (1, "p99 time to first token (ms)")].map({ ($0.0, $0.1) }) {
            let y0 = top + Double(p) * (panel + gap)
            svg += "<text x=\"\(left)\" y=\"\(y0 - 10)\" font-weight=\"bold\">\(title)</text>\n"
            svg += "<line x1=\"\(left)\" y1=\"\(y0 + panel)\" x2=\"\(w - right)\" y2=\"\(y0 + panel)\" stroke=\"#888\"/>\n"
            svg += "<line x1=\"\(left)\" y1=\"\(y0)\" x2=\"\(left)\" y2=\"\(y0 + panel)\" stroke=\"#888\"/>\n"
            let top = p == 0 ? maxReplicas : maxTTFT
            for k in 0...4 {
                let v = top * Double(k) / 4, y = y0 + panel - Double(k) / 4 * panel
                svg += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\" fill=\"#555\">\(p == 0 ? String(format: "%.1f", v) : String(format: "%.0f", v))</text>\n"
            }
            for k in 0...4 {
                let m = minutes * k / 4
                svg += "<text x=\"\(x(m))\" y=\"\(y0 + panel + 16)\" text-anchor=\"middle\" fill=\"#555\">\(String(format: "%.1f h", Double(m) / 60))</text>\n"
            }
            if p == 1 {
                let y = y0 + panel - sloMs / maxTTFT * panel
                svg += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(w - right)\" y2=\"\(y)\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n"
                svg += "<text x=\"\(w - right + 6)\" y=\"\(y + 4)\" fill=\"#555\">objective</text>\n"
            }
            for (i, (level, r)) in results.enumerated() {
                let color = colors[i % colors.count]
                var points: [String] = []
                if p == 0 {
                    for (m, n) in r.replicasPerMinute.enumerated() { points.append("\(x(m)),\(y0 + panel - Double(n) / maxReplicas * panel)") }
                } else {
                    for (m, v) in r.p99TTFTPerMinute.enumerated() { if let v { points.append("\(x(m)),\(y0 + panel - v * 1000 / maxTTFT * panel)") } }
                }
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(points.joined(separator: " "))\"/>\n"
                if p == 0 { svg += "<text x=\"\(w - right + 6)\" y=\"\(y0 + 14 + Double(i) * 16)\" fill=\"\(color)\">\(level.name)</text>\n" }
            }
        }
        return svg + "</svg>\n"
    }
}
