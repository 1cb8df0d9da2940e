// Resampling against scipy.ndimage.zoom 1.17.1 (gen_imaging.py): random float32 images of odd sizes, up and
// down, degenerate sizes 1. scipy's answer is its double result (the input zoomed as float64); Zoom computes in
// double and rounds once to Float, so: order 0 copies input values and must equal scipy exactly; orders 1 and 3
// must be scipy's double result rounded to Float, up to the rounding itself: |ours - scipy| <= ulp(Float)/2 at
// scipy's value, plus 1e-12 relative for the two double computations summing in different orders. Label maps
// (order 0 on integers) exactly.
import Foundation
import TestSupport
import XCTest
@testable import SegmentImaging

final class ZoomTests: XCTestCase {
    func testMatchesScipyZoom() throws {
        let cases = try XCTUnwrap(Fixtures.manifest("zoom")["cases"] as? [[String: Any]])
        XCTAssertGreaterThan(cases.count, 8)
        for c in cases {
            let name = c["name"] as! String
            let from = c["from"] as! [Int], to = c["to"] as! [Int]
            let input = try Fixtures.array("zoom/\(name).in.f32", as: Float.self)
            for order in [0, 1, 3] {
                let scipy = try Fixtures.array("zoom/\(name).order\(order).f64", as: Double.self)
                let out = Zoom.zoom(input, height: from[0], width: from[1], toHeight: to[0], toWidth: to[1], order: order)
                XCTAssertEqual(out.count, to[0] * to[1], name)
                XCTAssertEqual(scipy.count, out.count, name)
                var worst = 0.0   // the largest |ours - scipy| as a fraction of the allowed error
                for (ours, want) in zip(out, scipy) {
                    let allowed = order == 0 ? 0 : Double(Float(want).ulp) / 2 + 1e-12 * max(1, abs(want))
                    let error = abs(Double(ours) - want)
                    if error > allowed { XCTFail("\(name) \(from)->\(to) order \(order): \(ours) vs scipy \(want)"); break }
                    if allowed > 0 { worst = max(worst, error / allowed) }
                }
                if order != 0 { XCTAssertLessThanOrEqual(worst, 1, "\(name) order \(order)") }
            }
            let labels = try Fixtures.array("zoom/\(name).labels.u8", as: UInt8.self)
            let refLabels = try Fixtures.array("zoom/\(name).labels0.u8", as: UInt8.self)
            XCTAssertEqual(Zoom.zoomLabels(labels, height: from[0], width: from[1], toHeight: to[0], toWidth: to[1]),
                           refLabels, "\(name) labels")
        }
    }

    /// The mirror extension scipy uses for spline taps beyond the edges (period 2n - 2).
    func testMirrorIndices() {
        XCTAssertEqual((-3...7).map { Zoom.mirror($0, 4) }, [3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1])
        XCTAssertEqual((-2...2).map { Zoom.mirror($0, 1) }, [0, 0, 0, 0, 0])
        XCTAssertEqual((-2...3).map { Zoom.mirror($0, 2) }, [0, 1, 0, 1, 0, 1])
    }

    /// Spline prefilter followed by interpolation at the samples reproduces the samples (what the prefilter is for).
    func testCubicSplineInterpolatesItsSamples() {
        let n = 11
        let samples = (0..<n).map { 3 * sin(1.7 * Double($0)) + Double($0 % 3) }
        var c = samples
        c.withUnsafeMutableBufferPointer { Zoom.filterLines($0.baseAddress!, n: n, step: 1, lanes: 1) }
        for i in 0..<n {
            let w = Zoom.splineWeights(Double(i), order: 3)
            let v = (0..<4).reduce(0.0) { $0 + c[Zoom.mirror(i - 1 + $1, n)] * w[$1] }
            XCTAssertEqual(v, samples[i], accuracy: 1e-9)
        }
    }
}
