// The run's specialised slice moves equal SegmentImaging.VolumeLayout's (the definition) for all 48 layouts.
import ImagingTestSupport
import SegmentImaging
@testable import SegmentRun
import XCTest

final class SliceAddressingTests: XCTestCase {
    func testEqualsVolumeLayoutForEveryPermutationAndFlip() {
        let shape = [5, 3, 4]                                      // (X, Y, Z), distinct extents
        let array = (0..<60).map { UInt8($0) }
        let permutations = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
        var layouts = 0
        for axes in permutations {
            for bits in 0..<8 {
                let layout = VolumeLayout(axes: axes, flips: (0..<3).map { bits >> $0 & 1 == 1 })
                let a = SliceAddressing(layout, arrayShape: shape)
                XCTAssertEqual([a.slices, a.rows, a.cols], layout.canonicalShape(shape))
                var rebuilt = [UInt8](repeating: 255, count: array.count)
                for s in 0..<a.slices {
                    var slice = [UInt8](repeating: 0, count: a.rows * a.cols)
                    array.withUnsafeBufferPointer { src in slice.withUnsafeMutableBufferPointer { a.gather(src, slice: s, into: $0) } }
                    XCTAssertEqual(slice, layout.gatherSlice(array, arrayShape: shape, slice: s), "\(axes) \(bits) slice \(s)")
                    slice.withUnsafeBufferPointer { src in rebuilt.withUnsafeMutableBufferPointer { a.scatter(src, slice: s, into: $0) } }
                }
                XCTAssertEqual(rebuilt, array, "scatter inverts gather for \(axes) \(bits)")
                layouts += 1
            }
        }
        XCTAssertEqual(layouts, 48)
    }
}
