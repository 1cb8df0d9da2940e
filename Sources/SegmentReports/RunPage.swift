// The HTML page of `segment run --html`: per case, its overlays (the chosen slices; three orthogonal views of a
// volume) and per label its voxels, volume in ml and mean input intensity.
import Foundation

/// What the run page shows, built by SegmentRun from its report and the pictures it draws.
public struct RunPage: Sendable {
    public struct Label: Sendable {
        public var label: Int
        public var name: String
        public var voxels: Int
        public var volumeMl: Double?
        /// Mean input value over the label's voxels (HU for CT); for colour pictures, per channel (R, G, B).
        public var meanIntensity: [Double]?
        public init(label: Int, name: String, voxels: Int, volumeMl: Double?, meanIntensity: [Double]?) {
            self.label = label; self.name = name; self.voxels = voxels; self.volumeMl = volumeMl; self.meanIntensity = meanIntensity
        }
    }
    public struct Case: Sendable {
        public var name: String
        public var input: String
        public var output: String
        /// "ok", "skipped" or "failed".
        public var status: String
        public var error: String?
        /// Lines of facts (shape, spacing, slices, time), plain text.
        public var facts: [String]
        public var labels: [Label]
        public var pictures: [HTMLPicture]
        /// Why there are no pictures, when there are none.
        public var pictureNote: String?
        public init(name: String, input: String, output: String, status: String, error: String?, facts: [String],
                    labels: [Label], pictures: [HTMLPicture], pictureNote: String?) {
            self.name = name; self.input = input; self.output = output; self.status = status; self.error = error
            self.facts = facts; self.labels = labels; self.pictures = pictures; self.pictureNote = pictureNote
        }
    }
    public var title: String
    public var meta: [String]
    public var cases: [Case]
    /// How the pictures were drawn (slices, orientation, window).
    public var pictureLegend: String

    public init(title: String, meta: [String], cases: [Case], pictureLegend: String) {
        self.title = title; self.meta = meta; self.cases = cases; self.pictureLegend = pictureLegend
    }

    public func render() -> String {
        var b = "<h1>\(HTML.escape(title))</h1>\n"
        for line in meta { b += "<p class=\"meta\">\(HTML.escape(line))</p>\n" }
        let count = { (s: String) in cases.filter { $0.status == s }.count }
        b += "<p class=\"meta\" id=\"counts\" data-cases=\"\(cases.count)\" data-ok=\"\(count("ok"))\" data-skipped=\"\(count("skipped"))\" "
            + "data-failed=\"\(count("failed"))\">\(cases.count) case(s): \(count("ok")) ok, \(count("skipped")) skipped, "
            + "\(count("failed")) failed.</p>\n"

        // Overview: one row per case and label, sortable.
        b += "<h2>Labels per case</h2>\n<table id=\"labels\" class=\"sortable\"><thead><tr>"
            + "<th data-sort=\"text\" data-col=\"case\" data-worst=\"asc\">case</th><th data-sort=\"text\" data-col=\"status\">status</th>"
            + "<th data-sort=\"num\" data-col=\"label\" data-worst=\"asc\">label</th><th data-sort=\"text\" data-col=\"name\">name</th>"
            + "<th data-sort=\"num\" data-col=\"voxels\" data-worst=\"desc\">voxels</th>"
            + "<th data-sort=\"num\" data-col=\"volume_ml\" data-worst=\"desc\">volume (ml)</th>"
            + "<th data-sort=\"num\" data-col=\"mean_intensity\" data-worst=\"desc\">mean intensity</th></tr></thead><tbody>\n"
        for c in cases {
            let rows = c.labels.isEmpty ? [nil] : c.labels.map(Optional.some)
            for l in rows {
                b += "<tr data-case=\"\(HTML.escape(c.name))\"\(c.status == "failed" ? " class=\"failed\"" : "")"
                    + (l.map { " data-label=\"\($0.label)\"" } ?? "") + ">"
                b += "<td data-col=\"case\" data-value=\"\(HTML.escape(c.name))\"><a href=\"#case-\(anchor(c.name))\">\(HTML.escape(c.name))</a></td>"
                b += "<td class=\"status-\(HTML.escape(c.status))\">\(HTML.escape(c.status))</td>"
                if let l {
                    b += "<td class=\"num\" data-col=\"label\" data-value=\"\(l.label)\">\(l.label)</td><td>\(HTML.escape(l.name))</td>"
                    b += "<td class=\"num\" data-col=\"voxels\" data-value=\"\(l.voxels)\">\(l.voxels)</td>"
                    b += l.volumeMl.map { HTML.numberCell($0, decimals: 2, column: "volume_ml") }
                        ?? "<td class=\"num\" data-col=\"volume_ml\" data-value=\"nan\">–</td>"
                    b += intensityCell(l.meanIntensity)
                } else {
                    b += "<td></td><td></td><td></td><td></td><td></td>"
                }
                b += "</tr>\n"
            }
        }
        b += "</tbody></table>\n"

        b += "<h2>Cases</h2>\n<p class=\"note\">\(HTML.escape(pictureLegend))</p>\n"
        for c in cases {
            b += "<section class=\"case\" id=\"case-\(anchor(c.name))\" data-case=\"\(HTML.escape(c.name))\">"
            b += "<h3>\(HTML.escape(c.name)) <span class=\"status-\(HTML.escape(c.status))\">\(HTML.escape(c.status))</span></h3>"
            b += "<p class=\"meta\">input <code>\(HTML.escape(c.input))</code> → mask <code>\(HTML.escape(c.output))</code></p>"
            for f in c.facts { b += "<p class=\"meta\">\(HTML.escape(f))</p>" }
            if let e = c.error { b += "<p class=\"error\">\(HTML.escape(e))</p>" }
            for p in c.pictures { b += HTML.picture(p) }
            if c.pictures.isEmpty, let note = c.pictureNote { b += "<p class=\"note\">\(HTML.escape(note))</p>" }
            b += "</section>\n"
        }
        return HTML.document(title: title, body: b)
    }

    /// A mean intensity cell: one value, or R, G, B for colour pictures (sorted by their mean).
    private func intensityCell(_ v: [Double]?) -> String {
        guard let v, !v.isEmpty else { return "<td class=\"num\" data-col=\"mean_intensity\" data-value=\"nan\">–</td>" }
        if v.count == 1 { return HTML.numberCell(v[0], decimals: 1, column: "mean_intensity") }
        let all = v.map { HTML.exact($0) }.joined(separator: " ")
        return "<td class=\"num\" data-col=\"mean_intensity\" data-value=\"\(HTML.exact(v.reduce(0, +) / Double(v.count)))\" "
            + "data-values=\"\(all)\">" + v.map { HTML.shown($0, decimals: 1) }.joined(separator: " / ") + "</td>"
    }

    /// An id for a case's section: its name with every byte outside [A-Za-z0-9_-] as _XX (hex), so any name gives
    /// a valid, unique fragment.
    private func anchor(_ name: String) -> String {
        var out = ""
        for byte in name.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if c.isASCII && (c.isLetter || c.isNumber || c == "-") { out.append(c) }
            else { out += String(format: "_%02X", byte) }
        }
        return out
    }
}
