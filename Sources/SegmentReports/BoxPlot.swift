// Box plots as inline SVG: one box per class for one metric.
//
// Quartiles are numpy.percentile's default (method "linear": the value at position p (n - 1) of the sorted values,
// interpolated between its neighbours). Whiskers reach the most extreme values within 1.5 IQR of the box (Tukey);
// values beyond them are drawn as dots. Only finite values are drawn (NaN and infinite ones are counted in the
// caption).
import Foundation

/// The five numbers of a box and its outliers.
public struct BoxStats: Equatable, Sendable {
    public var q1: Double, median: Double, q3: Double
    /// Whisker ends: the smallest and largest values within [q1 - 1.5 IQR, q3 + 1.5 IQR].
    public var low: Double, high: Double
    public var outliers: [Double]
    public var count: Int

    /// nil when `values` has no finite value.
    public init?(_ values: [Double]) {
        let v = values.filter { $0.isFinite }.sorted()
        guard !v.isEmpty else { return nil }
        q1 = BoxStats.percentile(v, 0.25); median = BoxStats.percentile(v, 0.5); q3 = BoxStats.percentile(v, 0.75)
        let iqr = q3 - q1
        let (lo, hi) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr)
        low = v.first { $0 >= lo } ?? q1
        high = v.last { $0 <= hi } ?? q3
        outliers = v.filter { $0 < lo || $0 > hi }
        count = v.count
    }

    /// numpy.percentile(sorted, 100 p) with its default linear method; `sorted` ascending, not empty.
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        let position = p * Double(sorted.count - 1)
        let below = Int(position.rounded(.down))
        let above = min(below + 1, sorted.count - 1)
        let fraction = position - Double(below)
        // numpy's _lerp: a + (b - a) t, and b - (b - a) (1 - t) for t >= 0.5, which keeps it monotone and exact at the ends.
        let (a, b) = (sorted[below], sorted[above])
        let d = b - a
        return fraction >= 0.5 ? b - d * (1 - fraction) : a + d * fraction
    }
}

enum BoxPlot {
    /// An SVG of one box per entry (a class's values of `metric`), on a shared vertical axis. `colours` are the
    /// classes' overlay colours (r, g, b).
    static func svg(metric: String, unit: String, entries: [(key: String, name: String, values: [Double], colour: [UInt8])]) -> String {
        let stats = entries.map { BoxStats($0.values) }
        let finite = entries.flatMap { $0.values.filter { $0.isFinite } }
        guard !finite.isEmpty else {
            return "<p class=\"note\" data-metric=\"\(HTML.escape(metric))\">\(HTML.escape(metric)): no finite values to plot.</p>"
        }
        var lo = finite.min()!, hi = finite.max()!
        if metric == "Dice" || metric == "IoU" || metric == "thresholded_Jaccard" { lo = min(lo, 0); hi = max(hi, 1) }
        if hi == lo { hi = lo + 1 }
        let boxWidth = 46, gap = 34, left = 58, top = 24, plotHeight = 220, bottom = 56
        let width = left + entries.count * (boxWidth + gap) + gap
        let height = top + plotHeight + bottom
        func y(_ v: Double) -> Double { Double(top) + (hi - v) / (hi - lo) * Double(plotHeight) }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        var s = "<svg class=\"boxplot\" data-metric=\"\(HTML.escape(metric))\" xmlns=\"http://www.w3.org/2000/svg\" "
            + "width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\">"
        s += "<title>\(HTML.escape(metric)) per class</title>"
        s += "<text x=\"4\" y=\"14\">\(HTML.escape(metric))\(unit.isEmpty ? "" : " (\(HTML.escape(unit)))")</text>"
        // Axis with five ticks.
        s += "<line x1=\"\(left - 6)\" y1=\"\(top)\" x2=\"\(left - 6)\" y2=\"\(top + plotHeight)\" stroke=\"#444\"/>"
        for t in 0...4 {
            let v = lo + (hi - lo) * Double(t) / 4
            s += "<line x1=\"\(left - 10)\" y1=\"\(f(y(v)))\" x2=\"\(left - 6)\" y2=\"\(f(y(v)))\" stroke=\"#444\"/>"
            s += "<text x=\"\(left - 12)\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\">\(String(format: "%.3g", v))</text>"
            s += "<line x1=\"\(left - 6)\" y1=\"\(f(y(v)))\" x2=\"\(width)\" y2=\"\(f(y(v)))\" stroke=\"#eee\"/>"
        }
        for (i, e) in entries.enumerated() {
            let x0 = left + gap / 2 + i * (boxWidth + gap), xm = x0 + boxWidth / 2
            let colour = "rgb(\(e.colour[0]),\(e.colour[1]),\(e.colour[2]))"
            let excluded = e.values.count - e.values.filter { $0.isFinite }.count
            s += "<text x=\"\(xm)\" y=\"\(top + plotHeight + 16)\" text-anchor=\"middle\">\(HTML.escape(e.name))</text>"
            s += "<text x=\"\(xm)\" y=\"\(top + plotHeight + 30)\" text-anchor=\"middle\" fill=\"#666\">n=\(stats[i]?.count ?? 0)"
                + (excluded > 0 ? " (+\(excluded) not finite)" : "") + "</text>"
            guard let b = stats[i] else { continue }
            s += "<g class=\"box\" data-class=\"\(HTML.escape(e.key))\" data-q1=\"\(HTML.exact(b.q1))\" data-median=\"\(HTML.exact(b.median))\" "
                + "data-q3=\"\(HTML.exact(b.q3))\" data-low=\"\(HTML.exact(b.low))\" data-high=\"\(HTML.exact(b.high))\" "
                + "data-outliers=\"\(b.outliers.count)\" data-n=\"\(b.count)\">"
            s += "<line x1=\"\(xm)\" y1=\"\(f(y(b.high)))\" x2=\"\(xm)\" y2=\"\(f(y(b.q3)))\" stroke=\"#333\"/>"
            s += "<line x1=\"\(xm)\" y1=\"\(f(y(b.q1)))\" x2=\"\(xm)\" y2=\"\(f(y(b.low)))\" stroke=\"#333\"/>"
            for w in [b.low, b.high] {
                s += "<line x1=\"\(x0 + 10)\" y1=\"\(f(y(w)))\" x2=\"\(x0 + boxWidth - 10)\" y2=\"\(f(y(w)))\" stroke=\"#333\"/>"
            }
            s += "<rect x=\"\(x0)\" y=\"\(f(y(b.q3)))\" width=\"\(boxWidth)\" height=\"\(f(max(0.5, y(b.q1) - y(b.q3))))\" "
                + "fill=\"\(colour)\" fill-opacity=\"0.45\" stroke=\"#333\"/>"
            s += "<line x1=\"\(x0)\" y1=\"\(f(y(b.median)))\" x2=\"\(x0 + boxWidth)\" y2=\"\(f(y(b.median)))\" stroke=\"#000\" stroke-width=\"2\"/>"
            for o in b.outliers {
                s += "<circle cx=\"\(xm)\" cy=\"\(f(y(o)))\" r=\"2.5\" fill=\"none\" stroke=\"#333\"/>"
            }
            s += "</g>"
        }
        return s + "</svg>"
    }
}
