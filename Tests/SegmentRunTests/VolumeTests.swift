// NIfTI volumes end to end through the CLI, against the reference pipeline of gen_run.py (PyTorch + scipy + nibabel).
import Foundation
import SegmentImaging
import TestSupport
import XCTest

final class VolumeTests: XCTestCase {
    /// The band model's mask is known without a network: the phantom's intensity classes, in place. Exact.
    func testPhantomMaskIsTheKnownMaskInPlace() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("band", RunFixtures.ras, in: dir)
        let out = dir.appendingPathComponent("mask.nii.gz").path
        let r = try RunFixtures.segment([TestSupport.fixture("run/phantom.nii.gz").path, "-o", out, "--model", model])
        XCTAssertEqual(r.status, 0, r.stderr)
        let got = try RunFixtures.labels(out), want = try RunFixtures.labels(TestSupport.fixture("run/expected_band.nii.gz").path)
        XCTAssertEqual(got.shape, [40, 24, 6])
        XCTAssertEqual(got.values, want.values)
        XCTAssertEqual(Set(got.values), [0, 1, 2], "the phantom has all three classes")
        // The mask is on the input's grid: same affine.
        XCTAssertEqual(try NIfTIHeader.read(out).affine, try NIfTIHeader.read(TestSupport.fixture("run/phantom.nii.gz").path).affine)
    }

    /// A random network: the whole pipeline equals the PyTorch model wherever its top-1/top-2 logit
    /// margin exceeds 1e-3 (closer calls may differ by float rounding between two implementations).
    func testRandomModelMatchesReferencePipeline() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("random", RunFixtures.ras, in: dir)
        let out = dir.appendingPathComponent("mask.nii.gz").path
        let r = try RunFixtures.segment([TestSupport.fixture("run/phantom.nii.gz").path, "-o", out, "--model", model])
        XCTAssertEqual(r.status, 0, r.stderr)
        try assertMatchesReference(out, expected: "expected_random.nii.gz", margin: "margin_random.nii.gz")
    }

    /// Permuted and flipped copies of the phantom (affine changed consistently): with the model's orientation (RAS)
    /// the tool maps each to the model's view and back, so the mask is the canonical mask mapped the same way.
    func testPermutedAndFlippedVolumesGiveTheMappedMask() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let band = try RunFixtures.model("band", RunFixtures.ras, in: dir)
        let random = try RunFixtures.model("random", RunFixtures.ras, in: dir)
        for variant in ["flipx", "lps", "swapxy", "sliceaxis0", "scrambled"] {
            let input = try TestSupport.fixture("run/phantom_\(variant).nii.gz").path
            let outBand = dir.appendingPathComponent("band_\(variant).nii.gz").path
            let outRandom = dir.appendingPathComponent("random_\(variant).nii.gz").path
            XCTAssertEqual(try RunFixtures.segment([input, "-o", outBand, "--model", band]).status, 0)
            XCTAssertEqual(try RunFixtures.segment([input, "-o", outRandom, "--model", random]).status, 0)
            let got = try RunFixtures.labels(outBand)
            let want = try RunFixtures.labels(TestSupport.fixture("run/expected_band_\(variant).nii.gz").path)
            XCTAssertEqual(got.shape, want.shape, variant)
            XCTAssertEqual(got.values, want.values, "band mask of \(variant)")
            try assertMatchesReference(outRandom, expected: "expected_random_\(variant).nii.gz", margin: "margin_random_\(variant).nii.gz")
        }
    }

    /// The control: a model without an orientation uses the array as stored, so a flipped volume does NOT give the
    /// mapped mask (the tests above would notice a tool that ignored the orientation).
    func testWithoutOrientationTheArrayIsUsedAsStored() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("random", RunFixtures.asStored, in: dir)
        let out = dir.appendingPathComponent("mask.nii.gz").path
        XCTAssertEqual(try RunFixtures.segment([TestSupport.fixture("run/phantom_scrambled.nii.gz").path, "-o", out, "--model", model]).status, 0)
        let got = try RunFixtures.labels(out).values
        let mapped = try RunFixtures.labels(TestSupport.fixture("run/expected_random_scrambled.nii.gz").path).values
        let differ = zip(got, mapped).filter { $0 != $1 }.count
        XCTAssertGreaterThan(differ, got.count / 10, "a scrambled volume read as stored must segment differently")
    }

    func assertMatchesReference(_ path: String, expected: String, margin: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let got = try RunFixtures.labels(path)
        let want = try RunFixtures.labels(TestSupport.fixture("run/\(expected)").path)
        let margins = try RunFixtures.floats(TestSupport.fixture("run/\(margin)").path)
        XCTAssertEqual(got.shape, want.shape, file: file, line: line)
        var decided = 0, mismatches = 0
        for i in got.values.indices where margins[i] > 1e-3 {
            decided += 1
            if got.values[i] != want.values[i] { mismatches += 1 }
        }
        XCTAssertGreaterThan(decided, got.values.count * 95 / 100, "almost every voxel is a clear call", file: file, line: line)
        XCTAssertEqual(mismatches, 0, "\(mismatches) of \(decided) clear voxels differ from the reference (\(expected))", file: file, line: line)
    }
}
