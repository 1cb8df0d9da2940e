// The HTML page of `segment score --html`: a per-class summary (mean, median, worst), a box plot per class, and a
// per-case table (worst cases first, sortable by any column) with each case's overlay.
import Foundation

/// What the score page shows, built by SegmentMetrics from its report (so this module needs no scoring types).
public struct ScorePage: Sendable {
    public struct Class: Sendable {
        /// The report's key ("1", or a region's "1+2") and the name shown.
        public var key: String
        public var name: String
        /// The overlay colour of the class (r, g, b), for the box plot.
        public var colour: [UInt8]
        /// The report's mean per metric (finite values over cases), shown as it is in the JSON report.
        public var mean: [String: Double]
        public init(key: String, name: String, colour: [UInt8], mean: [String: Double]) {
            self.key = key; self.name = name; self.colour = colour; self.mean = mean
        }
    }
    public struct Case: Sendable {
        public var name: String
        /// Metric values by class key, then metric name.
        public var values: [String: [String: Double]]
        public var picture: HTMLPicture?
        /// Why there is no picture, when there is none.
        public var pictureNote: String?
        public init(name: String, values: [String: [String: Double]], picture: HTMLPicture?, pictureNote: String?) {
            self.name = name; self.values = values; self.picture = picture; self.pictureNote = pictureNote
        }
    }
    public var title: String
    /// Lines under the title (tool, policy, units, inputs), as plain text.
    public var meta: [String]
    public var classes: [Class]
    /// The metrics of the table and summary, e.g. Dice, IoU, HD, HD95, ASSD.
    public var metrics: [String]
    /// Distance unit ("mm", "pixel", "voxel", "mixed").
    public var units: String
    public var cases: [Case]
    public var failures: [(name: String, error: String)]
    /// Definitions the numbers follow (name -> text), listed at the end.
    public var definitions: [String: String]
    /// How the overlays were drawn (which slice, what colours), shown above the table.
    public var pictureLegend: String

    public init(title: String, meta: [String], classes: [Class], metrics: [String], units: String, cases: [Case],
                failures: [(name: String, error: String)], definitions: [String: String], pictureLegend: String) {
        self.title = title; self.meta = meta; self.classes = classes; self.metrics = metrics; self.units = units
        self.cases = cases; self.failures = failures; self.definitions = definitions; self.pictureLegend = pictureLegend
    }

    /// Metrics where a higher value is better (the others are distances: lower is better).
    static func higherIsBetter(_ metric: String) -> Bool { ["Dice", "IoU", "thresholded_Jaccard"].contains(metric) }

    static func decimals(_ metric: String) -> Int { higherIsBetter(metric) ? 4 : 2 }

    /// The case's mean Dice over classes (finite values), the default order of the table: lowest first.
    static func meanDice(_ c: Case, keys: [String]) -> Double {
        let v = keys.compactMap { c.values[$0]?["Dice"] }.filter { $0.isFinite }
        return v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
    }

    /// Median over the finite values (as the means are), and the worst value over all defined ones (an infinite
    /// distance is the worst): NaN when there is none.
    static func medianAndWorst(_ values: [Double], metric: String) -> (median: Double, worst: Double) {
        let finite = values.filter { $0.isFinite }.sorted()
        let median = finite.isEmpty ? Double.nan : BoxStats.percentile(finite, 0.5)
        let defined = values.filter { !$0.isNaN }
        let worst = defined.isEmpty ? Double.nan : higherIsBetter(metric) ? defined.min()! : defined.max()!
        return (median, worst)
    }

    public func render() -> String {
        let keys = classes.map(\.key)
        var b = "<h1>\(HTML.escape(title))</h1>\n"
        for line in meta { b += "<p class=\"meta\">\(HTML.escape(line))</p>\n" }
        b += "<p class=\"meta\" id=\"counts\" data-cases=\"\(cases.count)\" data-failed=\"\(failures.count)\">"
            + "\(cases.count) case(s) scored, \(failures.count) failed.</p>\n"

        // Summary per class.
        b += "<h2>Per class</h2>\n<p class=\"note\">Mean and median over the cases' finite values (NaN and infinite "
            + "values are left out, as in the JSON report's means); worst: the lowest Dice or IoU, the largest distance "
            + "(∞ when a mask was empty). Distances in \(HTML.escape(units)).</p>\n"
        b += "<table id=\"summary\"><thead><tr><th>class</th><th>metric</th><th>mean</th><th>median</th><th>worst</th></tr></thead><tbody>\n"
        for cl in classes {
            for (i, m) in metrics.enumerated() {
                let values = cases.compactMap { $0.values[cl.key]?[m] }
                let (median, worst) = ScorePage.medianAndWorst(values, metric: m)
                let d = ScorePage.decimals(m)
                b += "<tr data-class=\"\(HTML.escape(cl.key))\" data-metric=\"\(HTML.escape(m))\">"
                if i == 0 {
                    b += "<th rowspan=\"\(metrics.count)\"><span class=\"swatch\" style=\"background:rgb(\(cl.colour[0]),\(cl.colour[1]),\(cl.colour[2]))\"></span>"
                        + "\(HTML.escape(cl.name))</th>"
                }
                b += "<td>\(HTML.escape(m))</td>"
                b += HTML.numberCell(cl.mean[m] ?? .nan, decimals: d, extra: " data-stat=\"mean\"")
                b += HTML.numberCell(median, decimals: d, extra: " data-stat=\"median\"")
                b += HTML.numberCell(worst, decimals: d, extra: " data-stat=\"worst\"")
                b += "</tr>\n"
            }
        }
        b += "</tbody></table>\n"

        // Box plots: Dice and HD95 (the two numbers papers report), one box per class.
        b += "<h2>Distribution per class</h2>\n<p class=\"note\">Box: quartiles (numpy.percentile's default linear "
            + "interpolation); whiskers: the most extreme values within 1.5 × IQR of the box; dots: values beyond. "
            + "Finite values only.</p>\n<div>"
        for m in ["Dice", "HD95"] where metrics.contains(m) {
            b += BoxPlot.svg(metric: m, unit: ScorePage.higherIsBetter(m) ? "" : units,
                             entries: classes.map { cl in (cl.key, cl.name, cases.compactMap { $0.values[cl.key]?[m] }, cl.colour) })
        }
        b += "</div>\n"

        // Cases, worst first.
        let ordered = cases.enumerated().sorted { x, y in
            let (a, c) = (ScorePage.meanDice(x.element, keys: keys), ScorePage.meanDice(y.element, keys: keys))
            if a.isNaN != c.isNaN { return c.isNaN }
            if !a.isNaN && a != c { return a < c }
            return x.offset < y.offset
        }.map(\.element)
        b += "<h2>Cases</h2>\n<p class=\"note\">Worst first (by the mean Dice over classes); click a column to sort by "
            + "it (first click: worst first, again: reversed). \(HTML.escape(pictureLegend))</p>\n"
        b += "<table id=\"cases\" class=\"sortable\"><thead><tr><th data-sort=\"text\" data-col=\"case\" data-worst=\"asc\">case</th>"
        b += "<th data-sort=\"num\" data-col=\"mean_Dice\" data-worst=\"asc\" class=\"sorted-asc\">mean Dice</th>"
        for cl in classes {
            for m in metrics {
                b += "<th data-sort=\"num\" data-col=\"\(HTML.escape(cl.key + ":" + m))\" data-worst=\"\(ScorePage.higherIsBetter(m) ? "asc" : "desc")\">"
                    + "\(HTML.escape(cl.name))<br>\(HTML.escape(m))</th>"
            }
        }
        b += "<th>overlay</th></tr></thead><tbody>\n"
        for c in ordered {
            b += "<tr data-case=\"\(HTML.escape(c.name))\"><td data-col=\"case\" data-value=\"\(HTML.escape(c.name))\">\(HTML.escape(c.name))</td>"
            b += HTML.numberCell(ScorePage.meanDice(c, keys: keys), decimals: 4, column: "mean_Dice")
            for cl in classes {
                for m in metrics {
                    b += HTML.numberCell(c.values[cl.key]?[m] ?? .nan, decimals: ScorePage.decimals(m), column: cl.key + ":" + m)
                }
            }
            if let p = c.picture { b += "<td>\(HTML.picture(p))</td>" }
            else { b += "<td class=\"note\">\(HTML.escape(c.pictureNote ?? "no overlay"))</td>" }
            b += "</tr>\n"
        }
        b += "</tbody></table>\n"

        if !failures.isEmpty {
            b += "<h2>Failed cases</h2>\n<table id=\"failed\"><thead><tr><th>case</th><th>error</th></tr></thead><tbody>\n"
            for f in failures {
                b += "<tr class=\"failed\" data-case=\"\(HTML.escape(f.name))\"><td>\(HTML.escape(f.name))</td>"
                    + "<td class=\"error\">\(HTML.escape(f.error))</td></tr>\n"
            }
            b += "</tbody></table>\n"
        }
        if !definitions.isEmpty {
            b += "<h2>Definitions</h2>\n<dl class=\"note\">"
            for (k, v) in definitions.sorted(by: { $0.key < $1.key }) { b += "<dt>\(HTML.escape(k))</dt><dd>\(HTML.escape(v))</dd>" }
            b += "</dl>\n"
        }
        return HTML.document(title: title, body: b)
    }
}
