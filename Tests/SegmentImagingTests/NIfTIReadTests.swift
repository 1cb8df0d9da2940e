// Reading NIfTI files against nibabel 5.4.2's answers (gen_imaging.py): values bit for bit as get_fdata()
// (float64, NaN/Inf kept), affines to 1e-9 mm, axis codes, spacing, scaling, and the refusals.
import Foundation
import ImagingTestSupport
import SegmentCore
import TestSupport
import XCTest
@testable import SegmentImaging

final class NIfTIReadTests: XCTestCase {
    /// nibabel's own test images: big-endian, 4D, extensions, NIfTI-2, gzip.
    func testNibabelTestDataReadsAsNibabel() throws { try checkSection("nibabel") }

    /// u8..f64 in both byte orders, NIfTI-1 and NIfTI-2, .nii and .nii.gz, extreme values, NaN and Inf.
    func testEveryDatatypeAndByteOrderReadsAsNibabel() throws { try checkSection("dtypes") }

    /// scl_slope/scl_inter: applied, or ignored for slope 0 / NaN / Inf; 2D files and dim[4] == 1.
    func testScalingAnd2DAnd4DWithOneVolumeReadAsNibabel() throws { try checkSection("scaling") }

    func checkSection(_ section: String) throws {
        let manifest = try Fixtures.manifest(section)
        let cases = try XCTUnwrap(manifest["cases"] as? [[String: Any]])
        XCTAssertGreaterThan(cases.count, 5)
        for c in cases {
            let file = c["file"] as! String
            let path = try Fixtures.path("\(section)/\(file)")
            let volume = try NIfTIVolume.read(path, volume: c["volume"] as? Int)
            let h = volume.header
            let nibShape = (c["shape"] as! [Int])
            let expectedShape = (0..<3).map { $0 < nibShape.count ? nibShape[$0] : 1 }
            XCTAssertEqual(volume.shape, expectedShape, file)
            XCTAssertEqual(h.volumes, (c["volumes"] as? Int) ?? (nibShape.count > 3 ? nibShape[3] : 1), file)
            XCTAssertEqual(h.version, c["version"] as! Int, file)
            XCTAssertEqual(h.qformCode, c["qform_code"] as! Int, file)
            XCTAssertEqual(h.sformCode, c["sform_code"] as! Int, file)
            XCTAssertLessThan(h.affine.maxDifference(Affine(try Fixtures.matrix(c["affine"]))), 1e-9, file)
            XCTAssertLessThan(h.sform.maxDifference(Affine(try Fixtures.matrix(c["sform"]))), 1e-9, file)
            XCTAssertLessThan(h.qform.maxDifference(Affine(try Fixtures.matrix(c["qform"]))), 1e-9, file)
            XCTAssertEqual(try h.axisCodes, c["axcodes"] as! String, file)
            let zooms = try (c["zooms"] as! [Any]).map { try Fixtures.exact($0) }
            XCTAssertEqual(Array(h.spacing.prefix(zooms.count)), zooms, file)
            XCTAssertEqual(h.scaling?.slope ?? 1, try Fixtures.exact(c["slope"]), file)   // nil = no scaling = (1, 0)
            XCTAssertEqual(h.scaling?.inter ?? 0, try Fixtures.exact(c["inter"]), file)

            // Values: bit-identical to nibabel's float64 (NaN where nibabel has NaN).
            let ref = try Fixtures.array("\(section)/\(c["ref"] as! String)", as: Double.self)
            XCTAssertEqual(ref.count, h.voxelCount, file)
            var mismatches = 0
            for i in 0..<ref.count {
                let v = NIfTIReader.scaled(volume.storage, h, offset: i)
                if !(v == ref[i] || (v.isNaN && ref[i].isNaN)) { mismatches += 1 }
            }
            XCTAssertEqual(mismatches, 0, "\(file): \(mismatches) voxels differ from nibabel")
            // The Float views are those values rounded to Float.
            let floats = volume.floats()
            XCTAssertTrue(zip(floats, ref).allSatisfy { $0 == Float($1) || ($0.isNaN && $1.isNaN) }, file)
            let s = volume.shape
            XCTAssertEqual(volume.value(s[0] - 1, s[1] - 1, s[2] - 1).bitPattern, ref[ref.count - 1].bitPattern, file)
            // The voxels stay in their stored type (memory: a 512x512x800 int16 CT costs 400 MB, not 800 or 1600).
            XCTAssertEqual(volume.storage.count, h.voxelCount * h.datatype.size, file)
        }
    }

    func testSlicesAlongEveryAxisMatchNibabel() throws {
        let path = try Fixtures.path("nibabel/anatomical.nii")
        let volume = try NIfTIVolume.read(path)
        let ref = try Fixtures.array("nibabel/anatomical.nii.f64", as: Double.self)
        let s = volume.shape   // (33, 41, 25)
        for axes in [[2, 0, 1], [0, 1, 2], [1, 2, 0], [2, 1, 0]] {
            for flips in [[false, false, false], [true, false, true]] {
                let layout = VolumeLayout(axes: axes, flips: flips)
                let cs = layout.canonicalShape(s)
                for index in [0, cs[0] / 2, cs[0] - 1] {
                    let slice = volume.slice(index, layout: layout)
                    XCTAssertEqual(slice.count, cs[1] * cs[2])
                    // Reference: the same canonical slice gathered from nibabel's array.
                    let expected = layout.gatherSlice(ref, arrayShape: s, slice: index).map(Float.init)
                    XCTAssertEqual(slice, expected, "axes \(axes) flips \(flips) slice \(index)")
                }
            }
        }
        // Slice k of the default layout is nibabel's data[:, :, k] with rows along i: spot-check one voxel.
        let slice = volume.slice(7, layout: VolumeLayout())
        XCTAssertEqual(Double(slice[3 * s[1] + 5]), ref[3 + s[0] * (5 + s[1] * 7)])
    }

    func testLabelsOfIntegerImagesAndRefusalOfOthers() throws {
        let path = try Fixtures.path("dtypes/u1_le_n1.nii")
        let ref = try Fixtures.array("dtypes/u1_le_n1.nii.f64", as: Double.self)
        let volume = try NIfTIVolume.read(path)
        XCTAssertEqual(try volume.labels(as: UInt8.self), ref.map { UInt8($0) })
        XCTAssertEqual(try volume.labels(as: UInt16.self), ref.map { UInt16($0) })
        // u2 values above 255 do not fit UInt8.
        let u2 = try Fixtures.path("dtypes/u2_be_n1.nii")
        assertImagingError(try NIfTIVolume.read(u2).labels(as: UInt8.self), "notALabelImage", path: u2)
        XCTAssertNoThrow(try NIfTIVolume.read(u2).labels(as: UInt16.self))
        let manifest = try Fixtures.manifest("scaling")
        for file in manifest["not_labels"] as! [String] {
            let p = try Fixtures.path("scaling/" + file)
            let error = assertImagingError(try NIfTIVolume.read(p).labels(as: UInt16.self), "notALabelImage", path: p)
            XCTAssertEqual(error?.exitCode, .invalidInput)
            XCTAssertTrue(error?.description.contains("voxel (0, 1, 1)") ?? false, "\(String(describing: error))")
        }
    }

    func testFourDNeedsAVolumeIndexInRange() throws {
        let path = try Fixtures.path("nibabel/functional.nii")   // 20 volumes
        let error = assertImagingError(try NIfTIVolume.read(path), "needsVolumeIndex", path: path)
        XCTAssertTrue(error?.description.contains("20 volumes") ?? false)
        XCTAssertEqual(error?.exitCode, .invalidInput)
        assertImagingError(try NIfTIVolume.read(path, volume: 20), "volumeIndexOutOfRange", path: path)
        assertImagingError(try NIfTIVolume.read(path, volume: -1), "volumeIndexOutOfRange", path: path)
        XCTAssertEqual(try NIfTIVolume.read(path, volume: 0).shape, [17, 21, 3])
        // Volume 0 and 19 differ: the index selects the data.
        let v0 = try NIfTIVolume.read(path, volume: 0).floats(), v19 = try NIfTIVolume.read(path, volume: 19).floats()
        XCTAssertNotEqual(v0, v19)
        // dim[4] == 1 is 3D: no index needed.
        XCTAssertNoThrow(try NIfTIVolume.read(Fixtures.path("scaling/four_one.nii.gz")))
    }

    func testRefusedFilesNameTheFileAndTheProblem() throws {
        let expectations: [(String, String)] = [
            ("dtypes/complex64.nii", "unsupportedDatatype"), ("dtypes/rgb24.nii", "unsupportedDatatype"),
            ("nibabel/row_major.dconn.nii", "invalidNIfTI"), ("scaling/inter_nan.nii", "invalidNIfTI"),
            ("broken/truncated_data.nii", "truncated"), ("broken/truncated.nii.gz", "truncated"),
            ("broken/truncated_header.nii", "invalidNIfTI"), ("broken/not_nifti.nii", "invalidNIfTI"),
            ("broken/empty.nii", "invalidNIfTI"),
        ]
        for (file, expected) in expectations {
            let path = try Fixtures.path(file)
            let error = assertImagingError(try NIfTIVolume.read(path, volume: 0), expected, path: path)
            XCTAssertEqual(error?.exitCode, .invalidInput, file)
        }
        XCTAssertNoThrow(try NIfTIVolume.read(Fixtures.path("broken/full.nii")))
        let dir = try TestSupport.temporaryDirectory(self)
        let missing = dir.appendingPathComponent("missing.nii.gz").path
        assertImagingError(try NIfTIVolume.read(missing), "unreadable", path: missing)
        assertImagingError(try NIfTIVolume.read(dir.path), "unreadable", path: dir.path)
    }
}
