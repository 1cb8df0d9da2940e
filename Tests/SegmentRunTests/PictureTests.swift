// PNG pictures end to end through the CLI: RGB model on RGB, gray model on gray and on RGB (luma), mask values.
import Foundation
import TestSupport
import XCTest

final class PictureTests: XCTestCase {
    /// RGB model (values as read, [0, 1]) on an RGB picture: the reference pipeline's mask, written 0/255.
    func testRGBPicture() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("rgb", RunFixtures.rgbPictures, in: dir)
        let out = dir.appendingPathComponent("mask.png").path
        let r = try RunFixtures.segment([TestSupport.fixture("run/picture_rgb.png").path, "-o", out, "--model", model])
        XCTAssertEqual(r.status, 0, r.stderr)
        let got = try RunFixtures.pngValues(out), want = try RunFixtures.pngValues(TestSupport.fixture("run/expected_rgb_picture.png").path)
        XCTAssertEqual([got.width, got.height], [30, 45])
        XCTAssertEqual(Set(got.values), [0, 255], "a two-class model writes 0/255 by default")
        XCTAssertEqual(got.values, want.values)
    }

    /// The band model (gray, minmax) on a gray picture: the picture's classes in place; 3 classes -> raw labels.
    func testGrayPictureWithLabelValues() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("band", RunFixtures.asStored, in: dir)
        let out = dir.appendingPathComponent("mask.png").path
        let r = try RunFixtures.segment([TestSupport.fixture("run/picture_gray.png").path, "-o", out, "--model", model])
        XCTAssertEqual(r.status, 0, r.stderr)
        let got = try RunFixtures.pngValues(out), want = try RunFixtures.pngValues(TestSupport.fixture("run/expected_band_gray.png").path)
        XCTAssertEqual(Set(got.values), [0, 1, 2])
        XCTAssertEqual(got.values, want.values)
    }

    /// A gray model on an RGB picture sees its luma 0.299 R + 0.587 G + 0.114 B.
    func testGrayModelOnRGBPictureUsesLuma() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("band", RunFixtures.asStored, in: dir)
        let out = dir.appendingPathComponent("mask.png").path
        let r = try RunFixtures.segment([TestSupport.fixture("run/picture_rgb.png").path, "-o", out, "--model", model,
                                         "--png-values", "label"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try RunFixtures.pngValues(out).values,
                       try RunFixtures.pngValues(TestSupport.fixture("run/expected_band_luma.png").path).values)
        // The conversion is not silent: a warning on stderr naming the file and the fix, and in the report.
        let picture = try TestSupport.fixture("run/picture_rgb.png").path
        XCTAssertTrue(r.stderr.contains("segment: warning: \(picture): an RGB picture given to a model that takes gray")
                      && r.stderr.contains("--channels rgb"), r.stderr)
        let report = dir.appendingPathComponent("run.json").path
        let again = try RunFixtures.segment([TestSupport.fixture("run/picture_rgb.png").path, "-o", out, "--model", model,
                                             "--png-values", "label", "--overwrite", "--report", report, "--quiet"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("segment: warning:"), "warnings are shown even with --quiet: \(again.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as! [String: Any]
        let warnings = ((json["cases"] as! [[String: Any]])[0]["warnings"] as? [String]) ?? []
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings.first?.hasPrefix("an RGB picture given to a model that takes gray") ?? false, "\(warnings)")
    }

    /// An RGB model on a gray picture repeats the gray value (warned); a matching picture gives no warning.
    func testRGBModelOnGrayPictureWarns() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("rgb", RunFixtures.rgbPictures, in: dir)
        let out = dir.appendingPathComponent("mask.png").path
        let r = try RunFixtures.segment([TestSupport.fixture("run/picture_gray.png").path, "-o", out, "--model", model])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("a gray picture given to a model that takes RGB"), r.stderr)
        let rgb = try RunFixtures.segment([TestSupport.fixture("run/picture_rgb.png").path, "-o", out, "--model", model, "--overwrite"])
        XCTAssertEqual(rgb.status, 0, rgb.stderr)
        XCTAssertFalse(rgb.stderr.contains("warning"), rgb.stderr)
    }

    /// --png-values binary on a three-class model would merge classes: refused (exit 2) before any work.
    func testBinaryValuesNeedTwoClasses() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("band", RunFixtures.asStored, in: dir)
        let out = dir.appendingPathComponent("mask.png").path
        let r = try RunFixtures.segment([TestSupport.fixture("run/picture_gray.png").path, "-o", out, "--model", model,
                                         "--png-values", "binary"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("--png-values label"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// A folder of pictures with ISIC names: NAME_segmentation.png.
    func testISICNames() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("rgb", RunFixtures.rgbPictures, in: dir)
        let cases = dir.appendingPathComponent("cases"), masks = dir.appendingPathComponent("masks")
        try FileManager.default.createDirectory(at: cases, withIntermediateDirectories: true)
        try RunFixtures.copy("picture_rgb.png", to: cases, as: "ISIC_0000001.png")
        try RunFixtures.copy("picture_rgb.png", to: cases, as: "ISIC_0000002.png")
        let r = try RunFixtures.segment([cases.path, "-o", masks.path, "--model", model, "--isic-names"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: masks.path).sorted(),
                       ["ISIC_0000001_segmentation.png", "ISIC_0000002_segmentation.png"])
    }
}
