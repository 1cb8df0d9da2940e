// The pieces of the HTML pages that carry numbers or user strings, against independent answers: numpy for the box
// plots' quartiles and whiskers, Python's html.parser for the escaping. (The pages as a whole are tested in a real
// browser by trainer/tests/test_html_report.py.)
import Foundation
import TestSupport
import XCTest
@testable import SegmentReports

final class ReportsTests: XCTestCase {
    /// Quartiles as numpy.percentile's default (linear) and Tukey whiskers, on samples with ties, outliers on both
    /// sides, NaN and infinities (left out), one value, and two values. Tolerance: none beyond 1e-12 relative, as
    /// both use the same interpolation formula (numpy's _lerp) on the same doubles.
    func testBoxStatsMatchNumpy() throws {
        var rng = SystemRandomNumberGenerator()
        var samples: [[Double]] = [[0.5], [0.2, 0.9], [1, 1, 1, 1], [0.1, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 3.5]]
        for n in [5, 17, 100] {
            var v = (0..<n).map { _ in Double.random(in: 0.6...0.95, using: &rng) }
            v += [0.01, 0.02, 7.5, .nan, .infinity]
            samples.append(v.shuffled(using: &rng))
        }
        let json = String(data: try JSONSerialization.data(withJSONObject: samples.map { $0.map { $0.isFinite ? $0 as Any : "\($0)" } }), encoding: .utf8)!
        let out = try TestSupport.python("""
        import json, sys, numpy as np
        res = []
        for v in json.loads(sys.argv[1]):
            a = np.array([float(x) for x in v]); a = np.sort(a[np.isfinite(a)])
            q1, m, q3 = np.percentile(a, [25, 50, 75]); iqr = q3 - q1
            inside = a[(a >= q1 - 1.5 * iqr) & (a <= q3 + 1.5 * iqr)]
            res.append([q1, m, q3, inside.min(), inside.max(), int(a.size - inside.size), int(a.size)])
        print(json.dumps(res))
        """, [json])
        let want = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [[Double]]
        for (v, w) in zip(samples, want) {
            let b = try XCTUnwrap(BoxStats(v))
            for (got, expected) in zip([b.q1, b.median, b.q3, b.low, b.high], w.prefix(5)) {
                XCTAssertEqual(got, expected, accuracy: 1e-12 * max(1, abs(expected)), "\(v)")
            }
            XCTAssertEqual(b.outliers.count, Int(w[5]), "\(v)")
            XCTAssertEqual(b.count, Int(w[6]))
        }
        XCTAssertNil(BoxStats([.nan, .infinity]), "nothing finite to plot")
    }

    /// Every character that could open a tag, end an attribute or start an entity is escaped, and a parser gives
    /// the original text back, in text and in a double- or single-quoted attribute.
    func testEscapedStringsParseBackToThemselves() throws {
        let hostile = ["<script>alert(1)</script>", "<img src=x onerror=console.error(1)>", "a\"b'c&amp;d", "é–∞ 😀", "x&#60;y"]
        for s in hostile {
            let e = HTML.escape(s)
            XCTAssertFalse(e.contains("<") || e.contains(">") || e.contains("\"") || e.contains("'"), e)
        }
        let page = hostile.map { "<p title=\"\(HTML.escape($0))\" data-x='\(HTML.escape($0))'>\(HTML.escape($0))</p>" }.joined()
        let out = try TestSupport.python("""
        import json, sys
        from html.parser import HTMLParser
        class P(HTMLParser):
            def __init__(self):
                super().__init__(convert_charrefs=True); self.items = []; self.tags = 0
            def handle_starttag(self, tag, attrs):
                self.tags += 1; self.items.append(dict(attrs)); self.items[-1]["text"] = ""
            def handle_data(self, d):
                self.items[-1]["text"] += d
        p = P(); p.feed(sys.argv[1]); print(json.dumps({"tags": p.tags, "items": p.items}))
        """, [page])
        let parsed = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        XCTAssertEqual(parsed["tags"] as? Int, hostile.count, "no string opened a tag")
        let items = parsed["items"] as! [[String: String]]
        for (s, item) in zip(hostile, items) {
            XCTAssertEqual(item["title"], s); XCTAssertEqual(item["data-x"], s); XCTAssertEqual(item["text"], s)
        }
    }

    /// Numbers in data attributes read back as the same double (the JSON reports' strings for the others).
    func testExactNumbersRoundTrip() {
        for v in [0.1, 1.0 / 3.0, 2.5e-300, 123456.789, 0, -0.25] { XCTAssertEqual(Double(HTML.exact(v)), v) }
        XCTAssertEqual([Double.nan, .infinity, -.infinity].map(HTML.exact), ["nan", "inf", "-inf"])
        XCTAssertEqual([HTML.shown(.nan, decimals: 2), HTML.shown(.infinity, decimals: 2), HTML.shown(0.12345, decimals: 4)],
                       ["–", "∞", "0.1235"])
    }
}
