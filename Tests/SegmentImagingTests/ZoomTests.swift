// Resampling against scipy.ndimage.zoom 1.17.1 (gen_imaging.py): random float32 images of odd sizes, up and
// down, degenerate sizes 1; orders 0 and 1 to 1e-6 and order 3 to 1e-4 of the data range, label maps exactly.
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
            let range = Float(c["range"] as! Double)
            let input = try Fixtures.array("zoom/\(name).in.f32", as: Float.self)
            for (order, relative) in [(0, Float(1e-6)), (1, Float(1e-6)), (3, Float(1e-4))] {
                let ref = try Fixtures.array("zoom/\(name).order\(order).f32", as: Float.self)
                let out = Zoom.zoom(input, height: from[0], width: from[1], toHeight: to[0], toWidth: to[1], order: order)
                XCTAssertEqual(out.count, to[0] * to[1], name)
                let worst = zip(out, ref).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThanOrEqual(worst, relative * range, "\(name) \(from)->\(to) order \(order): max |difference| \(worst)")
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
