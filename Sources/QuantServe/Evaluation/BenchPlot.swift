import Foundation

/// `quantserve bench --plot FILE.svg`: two charts in one SVG picture. Left, aggregate decode throughput against
/// concurrency, a line per level; right, quality loss (perplexity above fp16's, in percent) against peak memory, a
/// point per level. Plain SVG 1.1 with axes, ticks, units and a legend, readable in any browser.
public enum BenchPlot {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    static let width = 980.0, height = 470.0
    static let plotTop = 70.0, plotHeight = 300.0, plotWidth = 380.0
    static let leftPanelX = 80.0, rightPanelX = 570.0

    public static func svg(_ rows: [LevelReport], title: String) -> String {
        var out = [
            #"<?xml version="1.0" encoding="UTF-8"?>"#,
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" viewBox="0 0 \#(Int(width)) \#(Int(height))" font-family="sans-serif" font-size="12">"#,
            #"<rect x="0" y="0" width="\#(Int(width))" height="\#(Int(height))" fill="white"/>"#,
            text(width / 2, 28, escape(title), size: 16, anchor: "middle", weight: "bold"),
        ]
        out += throughputPanel(rows)
        out += qualityPanel(rows)
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: the panels

    static func throughputPanel(_ rows: [LevelReport]) -> [String] {
        let concurrencies = Array(Set(rows.flatMap { $0.aggregate.keys.compactMap(Int.init) })).sorted()
        let yMax = niceCeiling(rows.flatMap { $0.aggregate.values }.max() ?? 1)
        var out = frame(x0: leftPanelX, title: "Aggregate decode throughput",
                        xLabel: "concurrent sequences", yLabel: "tokens / second")
        // Concurrencies are evenly spaced (they are usually powers of two or four: a log scale).
        func x(_ i: Int) -> Double {
            concurrencies.count == 1 ? leftPanelX + plotWidth / 2
                : leftPanelX + 20 + Double(i) * (plotWidth - 40) / Double(concurrencies.count - 1)
        }
        for (i, c) in concurrencies.enumerated() {
            out.append(line(x(i), plotTop + plotHeight, x(i), plotTop + plotHeight + 5))
            out.append(text(x(i), plotTop + plotHeight + 18, "\(c)", anchor: "middle"))
        }
        out += yTicks(x0: leftPanelX, from: 0, to: yMax)
        func y(_ v: Double) -> Double { plotTop + plotHeight - v / yMax * plotHeight }
        for (k, r) in rows.enumerated() {
            let color = palette[k % palette.count]
            let points = concurrencies.enumerated().compactMap { i, c in r.aggregate[String(c)].map { (x(i), y($0)) } }
            if points.count > 1 {
                let coordinates = points.map { String(format: "%.1f,%.1f", $0.0, $0.1) }.joined(separator: " ")
                out.append(#"<polyline points="\#(coordinates)" fill="none" stroke="\#(color)" stroke-width="2.5"/>"#)
            }
            for p in points { out.append(circle(p.0, p.1, color)) }
            // Legend, top left inside the plot.
            let ly = plotTop + 16 + Double(k) * 18
            out.append(#"<rect x="\#(fmt(leftPanelX + 12))" y="\#(fmt(ly - 9))" width="14" height="10" fill="\#(color)"/>"#)
            out.append(text(leftPanelX + 32, ly, escape(r.quant)))
        }
        return out
    }

    static func qualityPanel(_ rows: [LevelReport]) -> [String] {
        var out = frame(x0: rightPanelX, title: "Quality loss against memory",
                        xLabel: "peak memory (MiB, resident)", yLabel: "perplexity above fp16 (%)")
        let measured = rows.enumerated().compactMap { k, r in r.qualityLossPercent.map { (k, r, $0) } }
        guard !measured.isEmpty else {
            out.append(text(rightPanelX + plotWidth / 2, plotTop + plotHeight / 2,
                            "quality not measured: run bench with --quality", anchor: "middle"))
            return out
        }
        let memories = rows.map { Double($0.peak_rss_bytes) / 1_048_576 }
        let xMax = niceCeiling(memories.max() ?? 1)
        let yLow = min(0, niceFloor(measured.map(\.2).min() ?? 0))
        let yHigh = max(niceCeiling(measured.map(\.2).max() ?? 1), yLow + 1)
        out += yTicks(x0: rightPanelX, from: yLow, to: yHigh)
        for v in ticks(from: 0, to: xMax) {
            let x = rightPanelX + v / xMax * plotWidth
            out.append(line(x, plotTop + plotHeight, x, plotTop + plotHeight + 5))
            out.append(text(x, plotTop + plotHeight + 18, label(v), anchor: "middle"))
        }
        func y(_ v: Double) -> Double { plotTop + plotHeight - (v - yLow) / (yHigh - yLow) * plotHeight }
        if yLow < 0 {
            out.append(#"<line x1="\#(fmt(rightPanelX))" y1="\#(fmt(y(0)))" x2="\#(fmt(rightPanelX + plotWidth))" y2="\#(fmt(y(0)))" stroke="rgb(153,153,153)" stroke-dasharray="4 3"/>"#)
        }
        for (k, r, loss) in measured {
            let color = palette[k % palette.count]
            let x = rightPanelX + memories[k] / xMax * plotWidth
            out.append(circle(x, y(loss), color, radius: 6))
            // Labels right of the point, or left of it near the right edge.
            let nearEdge = x > rightPanelX + plotWidth * 0.7
            out.append(text(nearEdge ? x - 9 : x + 9, y(loss) - 8, escape(r.quant) + String(format: " (%+.1f%%)", loss),
                            anchor: nearEdge ? "end" : "start", color: color))
        }
        return out
    }

    // MARK: drawing

    static func frame(x0: Double, title: String, xLabel: String, yLabel: String) -> [String] {
        let bottom = plotTop + plotHeight
        return [
            text(x0 + plotWidth / 2, plotTop - 16, title, size: 14, anchor: "middle", weight: "bold"),
            #"<rect x="\#(fmt(x0))" y="\#(fmt(plotTop))" width="\#(fmt(plotWidth))" height="\#(fmt(plotHeight))" fill="none" stroke="rgb(51,51,51)"/>"#,
            text(x0 + plotWidth / 2, bottom + 40, xLabel, anchor: "middle"),
            #"<text x="\#(fmt(x0 - 52))" y="\#(fmt(plotTop + plotHeight / 2))" text-anchor="middle" transform="rotate(-90 \#(fmt(x0 - 52)) \#(fmt(plotTop + plotHeight / 2)))">\#(yLabel)</text>"#,
        ]
    }

    static func yTicks(x0: Double, from low: Double, to high: Double) -> [String] {
        ticks(from: low, to: high).flatMap { v -> [String] in
            let y = plotTop + plotHeight - (v - low) / (high - low) * plotHeight
            return [#"<line x1="\#(fmt(x0))" y1="\#(fmt(y))" x2="\#(fmt(x0 + plotWidth))" y2="\#(fmt(y))" stroke="rgb(229,229,229)"/>"#,
                    line(x0 - 5, y, x0, y), text(x0 - 8, y + 4, label(v), anchor: "end")]
        }
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double) -> String {
        #"<line x1="\#(fmt(x1))" y1="\#(fmt(y1))" x2="\#(fmt(x2))" y2="\#(fmt(y2))" stroke="rgb(51,51,51)"/>"#
    }

    static func circle(_ x: Double, _ y: Double, _ color: String, radius: Double = 4.5) -> String {
        #"<circle cx="\#(fmt(x))" cy="\#(fmt(y))" r="\#(fmt(radius))" fill="\#(color)"/>"#
    }

    static func text(_ x: Double, _ y: Double, _ content: String, size: Int = 12, anchor: String = "start",
                     weight: String = "normal", color: String = "#222222") -> String {
        #"<text x="\#(fmt(x))" y="\#(fmt(y))" font-size="\#(size)" text-anchor="\#(anchor)" font-weight="\#(weight)" fill="\#(color)">\#(content)</text>"#
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    static func label(_ v: Double) -> String {
        v == v.rounded() ? String(format: "%.0f", v) : String(format: "%g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    // MARK: scales

    /// A step of 1, 2 or 5 times a power of ten giving about five intervals over `range`.
    static func niceStep(_ range: Double) -> Double {
        guard range > 0, range.isFinite else { return 1 }
        let raw = range / 5
        let power = pow(10, floor(log10(raw)))
        let fraction = raw / power
        return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power
    }

    static func niceCeiling(_ v: Double) -> Double {
        guard v > 0, v.isFinite else { return 1 }
        let step = niceStep(v)
        return (v / step).rounded(.up) * step
    }

    static func niceFloor(_ v: Double) -> Double { v >= 0 ? 0 : -niceCeiling(-v) }

    static func ticks(from low: Double, to high: Double) -> [Double] {
        let step = niceStep(high - low)
        var values: [Double] = []
        var v = (low / step).rounded(.up) * step
        while v <= high + step * 1e-9 && values.count < 20 {
            values.append(abs(v) < step * 1e-9 ? 0 : v)
            v += step
        }
        return values
    }
}
