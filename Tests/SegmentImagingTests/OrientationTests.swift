// Orientation against nibabel (gen_imaging.py): axis codes of oblique affines as aff2axcodes; volumes with
// permuted and flipped axes (affine changed consistently) give the canonical volume nibabel's reorientation
// gives, and the inverse restores each original grid exactly.
import Foundation
import ImagingTestSupport
import TestSupport
import XCTest
@testable import SegmentImaging

final class OrientationTests: XCTestCase {
    func testAxisCodesMatchNibabel() throws {
        let affines = try XCTUnwrap(Fixtures.manifest("orientation")["affines"] as? [[String: Any]])
        XCTAssertEqual(affines.count, 40)
        for a in affines {
            let affine = Affine(try Fixtures.matrix(a["affine"]))
            XCTAssertEqual(try Orientation.axisCodes(affine), a["axcodes"] as! String, "\(affine.m)")
        }
        XCTAssertEqual(try Orientation.axisCodes(Affine([[-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])), "LPS")
        let degenerate = Affine([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
        assertImagingError(try Orientation.axisCodes(degenerate, path: "x.nii"), "invalidOrientation", path: "x.nii")
    }

    func testPermutedAndFlippedVolumesGiveNibabelsCanonicalVolumeAndComeBackExactly() throws {
        let manifest = try Fixtures.manifest("orientation")
        let variants = try XCTUnwrap(manifest["variants"] as? [[String: Any]])
        XCTAssertEqual(variants.count, 6)
        for target in manifest["targets"] as! [String] {
            // nibabel's reorientation of the base volume to `target`, read with the default (k, i, j) layout.
            let reoriented = try Fixtures.array("orientation/reoriented_\(target).i16", as: Int16.self)
            let base = try NIfTIHeader.read(Fixtures.path("orientation/variant0.nii.gz"))
            let targetShape = try reorientedShape(base.shape, from: base.axisCodes, to: target)
            let expected = VolumeLayout().toCanonical(reoriented, arrayShape: targetShape)
            for v in variants {
                let file = v["file"] as! String
                let volume = try NIfTIVolume.read(Fixtures.path("orientation/" + file))
                let codes = try volume.header.axisCodes
                XCTAssertEqual(codes, v["axcodes"] as! String, file)
                let layout = try VolumeLayout.forModel(sliceAxis: 2, rowAxis: 0, colAxis: 1, orientation: target,
                                                       volumeAxisCodes: codes)
                let array = try volume.labels(as: UInt16.self).map { Int16(bitPattern: $0) }
                let canonical = layout.toCanonical(array, arrayShape: volume.shape)
                XCTAssertEqual(canonical, expected, "\(file) (\(codes)) -> \(target)")
                // Streaming slices give the same canonical volume.
                let S = layout.canonicalShape(volume.shape)[0]
                let streamed = (0..<S).flatMap { volume.slice($0, layout: layout) }
                XCTAssertEqual(streamed, canonical.map(Float.init), file)
                // The inverse puts a canonical mask back on the variant's own grid.
                XCTAssertEqual(layout.fromCanonical(canonical, arrayShape: volume.shape), array, file)
            }
        }
    }

    /// Shape of an array with axis codes `from` reoriented to `to`.
    func reorientedShape(_ shape: [Int], from: String, to: String) throws -> [Int] {
        let layout = try VolumeLayout.forModel(sliceAxis: 0, rowAxis: 1, colAxis: 2, orientation: to, volumeAxisCodes: from)
        return layout.canonicalShape(shape)
    }

    func testEveryLayoutIsInvertedExactly() {
        let shape = [4, 3, 5]
        let array = (0..<60).map { $0 * 7 % 61 }
        for axes in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            for bits in 0..<8 {
                let layout = VolumeLayout(axes: axes, flips: (0..<3).map { bits >> $0 & 1 == 1 })
                let canonical = layout.toCanonical(array, arrayShape: shape)
                XCTAssertEqual(canonical.count, array.count)
                XCTAssertEqual(layout.fromCanonical(canonical, arrayShape: shape), array, "\(layout)")
                // Canonical voxel (s, r, c) is array voxel with index (or n - 1 - index) along each mapped axis.
                let cs = layout.canonicalShape(shape)
                let (s, r, c) = (cs[0] - 1, 0, cs[2] / 2)
                var index = [0, 0, 0]
                for (k, t) in [s, r, c].enumerated() {
                    index[axes[k]] = layout.flips[k] ? shape[axes[k]] - 1 - t : t
                }
                XCTAssertEqual(canonical[(s * cs[1] + r) * cs[2] + c], array[index[0] + 4 * (index[1] + 3 * index[2])])
            }
        }
    }

    func testModelLayoutsAndTheirErrors() throws {
        // "" keeps the array: AdvMIM's (k, i, j) whatever the volume's orientation.
        XCTAssertEqual(try VolumeLayout.forModel(sliceAxis: 2, rowAxis: 0, colAxis: 1, orientation: "", volumeAxisCodes: "PSL"),
                       VolumeLayout(axes: [2, 0, 1]))
        // An LPS volume for an LPS model: no flips; a RAS volume: i and j flipped.
        XCTAssertEqual(try VolumeLayout.forModel(sliceAxis: 2, rowAxis: 0, colAxis: 1, orientation: "LPS", volumeAxisCodes: "LPS"),
                       VolumeLayout(axes: [2, 0, 1]))
        XCTAssertEqual(try VolumeLayout.forModel(sliceAxis: 2, rowAxis: 0, colAxis: 1, orientation: "LPS", volumeAxisCodes: "RAS"),
                       VolumeLayout(axes: [2, 0, 1], flips: [false, true, true]))
        for bad in ["LRS", "XYZ", "LP", "LPSA"] {
            assertImagingError(try VolumeLayout.forModel(sliceAxis: 2, rowAxis: 0, colAxis: 1, orientation: bad,
                                                         volumeAxisCodes: "RAS", path: "m.segm"), "invalidOrientation", path: "m.segm")
        }
        assertImagingError(try VolumeLayout.forModel(sliceAxis: 2, rowAxis: 2, colAxis: 1, orientation: "",
                                                     volumeAxisCodes: "RAS", path: "m.segm"), "invalidOrientation", path: "m.segm")
    }
}
