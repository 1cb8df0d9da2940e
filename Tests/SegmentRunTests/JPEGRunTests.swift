// JPEG inputs end to end (trainer/fixtures/gen_jpeg.py, OUTDIR/jpeg/): the band model's masks of the synthetic
// ISIC-like images as PNG and as JPEG, the agreement between them, and ISIC's naming from `run` to `score`.
import Foundation
import SegmentMetrics
import TestSupport
import XCTest

final class JPEGRunTests: XCTestCase {
    let names = (0..<4).map { String(format: "ISIC_synth%05d", $0) }

    func isic(_ relative: String) throws -> URL { try TestSupport.fixture("jpeg/isic/" + relative) }

    /// A folder run of the band model (gray luma, minmax: EXACTLY a per-pixel intensity band classifier) over the PNGs
    /// and over their JPEGs of qualities 75, 90, 95: each mask equals the reference pipeline's on Pillow's decode of
    /// the same file, so wherever the PNG and JPEG masks differ it is the JPEG's loss that changed the input.
    func testPNGAndJPEGMasksDifferOnlyByTheInput() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("band", RunFixtures.asStored, in: dir)
        func run(_ input: String, _ out: String) throws -> URL {
            let folder = dir.appendingPathComponent(out)
            let r = try RunFixtures.segment([try isic(input).path, "-o", folder.path, "--model", model])
            XCTAssertEqual(r.status, 0, r.stderr)
            return folder
        }
        let pngMasks = try run("png", "from_png")
        var pngValues: [String: [UInt8]] = [:]
        for n in names {
            let got = try RunFixtures.pngValues(pngMasks.appendingPathComponent(n + ".png").path)
            XCTAssertEqual(got.values, try RunFixtures.pngValues(try isic("expected_png/\(n).png").path).values, n)
            pngValues[n] = got.values
        }
        var report: [String] = []
        for q in [75, 90, 95] {
            let masks = try run("jpeg_q\(q)", "from_jpeg_q\(q)")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: masks.path).sorted(), names.map { $0 + ".png" },
                           "a JPEG's mask is a PNG of the same name")
            var same = 0, total = 0
            for n in names {
                let got = try RunFixtures.pngValues(masks.appendingPathComponent(n + ".png").path)
                XCTAssertEqual(got.values, try RunFixtures.pngValues(try isic("expected_jpeg_q\(q)/\(n).png").path).values,
                               "\(n) q\(q): the mask of Pillow's decode")
                let png = try XCTUnwrap(pngValues[n])
                same += zip(got.values, png).filter { $0 == $1 }.count
                total += png.count
            }
            let agreement = 100 * Double(same) / Double(total)
            XCTAssertGreaterThan(agreement, 95, "quality \(q)")
            report.append(String(format: "q%d %.3f%%", q, agreement))
        }
        print("PNG vs JPEG mask agreement (band model, \(names.count) synthetic ISIC-like images): " + report.joined(separator: ", "))
    }

    /// A folder mixing .png, .jpg and .JPEG segmented with --isic-names gives NAME_segmentation.png for each, and
    /// `segment score` pairs those with ISIC-style ground truth without any flag.
    func testISICNamesFromRunToScore() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("rgb", RunFixtures.rgbPictures, in: dir)
        let images = dir.appendingPathComponent("images"), masks = dir.appendingPathComponent("masks")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        let fm = FileManager.default
        try fm.copyItem(atPath: try isic("png/\(names[0]).png").path, toPath: images.appendingPathComponent(names[0] + ".png").path)
        try fm.copyItem(atPath: try isic("jpeg_q90/\(names[1]).jpg").path, toPath: images.appendingPathComponent(names[1] + ".jpg").path)
        try fm.copyItem(atPath: try isic("jpeg_q95/\(names[2]).jpg").path, toPath: images.appendingPathComponent(names[2] + ".JPEG").path)
        try fm.copyItem(atPath: try isic("jpeg_q75/\(names[3]).jpg").path, toPath: images.appendingPathComponent(names[3] + ".jpeg").path)
        let r = try RunFixtures.segment([images.path, "-o", masks.path, "--model", model, "--isic-names"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: masks.path).sorted(), names.map { $0 + "_segmentation.png" })

        let json = dir.appendingPathComponent("score.json").path
        let s = try TestSupport.run(TestSupport.segmentExecutable.path,
                                    ["score", "--pred", masks.path, "--ref", try isic("ground_truth").path, "--json", json])
        XCTAssertEqual(s.status, 0, s.stderr)
        let scored = try ScoreReport.read(json)
        XCTAssertEqual(scored.metricPerCase.map(\.name), names)
        XCTAssertEqual(scored.unmatchedPredictions, [])
        XCTAssertTrue(scored.metricPerCase.allSatisfy { $0.predictionFile.hasSuffix("_segmentation.png") && !$0.predictionMissing })
    }

    /// Without --isic-names a JPEG's mask is NAME.png; a single JPEG needs a .png output; a JPEG is never a mask.
    func testJPEGOutputNamesAndRefusals() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("rgb", RunFixtures.rgbPictures, in: dir)
        let jpeg = try isic("jpeg_q90/\(names[0]).jpg").path
        let bad = try RunFixtures.segment([jpeg, "-o", dir.appendingPathComponent("mask.jpg").path, "--model", model])
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertTrue(bad.stderr.contains(".png"), bad.stderr)
        let out = dir.appendingPathComponent("mask.png").path
        let ok = try RunFixtures.segment([jpeg, "-o", out, "--model", model])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let mask = try RunFixtures.pngValues(out)
        let want = try RunFixtures.pngValues(try isic("expected_png/\(names[0]).png").path)
        XCTAssertEqual([mask.width, mask.height], [want.width, want.height])
        let s = try TestSupport.run(TestSupport.segmentExecutable.path, ["score", "--pred", jpeg, "--ref", out])
        XCTAssertEqual(s.status, 3, s.stderr)
        XCTAssertTrue(s.stderr.contains("JPEG"), s.stderr)
    }
}
