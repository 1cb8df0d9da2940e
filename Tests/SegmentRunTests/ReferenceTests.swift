// --ref: the run report gains the scores of each mask against its reference (SegmentMetrics), checked here against
// medpy 0.5.2 on the written files.
import Foundation
import SegmentRun
import TestSupport
import XCTest

final class ReferenceTests: XCTestCase {
    /// Dice and HD95 (mm, header spacing) per class equal medpy's on the written mask and the reference.
    func testScoresMatchMedpy() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let band = try RunFixtures.model("band", RunFixtures.ras, in: dir)
        let out = dir.appendingPathComponent("m.nii.gz").path
        let ref = try TestSupport.fixture("run/expected_random.nii.gz").path     // a different segmentation
        let r = try RunFixtures.segment([TestSupport.fixture("run/phantom.nii.gz").path, "-o", out, "--model", band,
                                         "--ref", ref, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let scores = try XCTUnwrap(RunReport.decode(Data(r.stdout.utf8)).scores)
        XCTAssertEqual(scores.labels, [1, 2])
        XCTAssertEqual(scores.metricPerCase.map(\.name), ["phantom"])
        let got = scores.metricPerCase[0].metrics
        let medpy = try TestSupport.python("""
            import sys, json, numpy as np, nibabel as nib
            from medpy.metric import binary
            p, r = nib.load(sys.argv[1]), nib.load(sys.argv[2])
            a, b = np.asarray(p.dataobj), np.asarray(r.dataobj)
            sp = r.header.get_zooms()[:3]
            print(json.dumps({str(c): [binary.dc(a == c, b == c), binary.hd95(a == c, b == c, voxelspacing=sp)] for c in (1, 2)}))
            """, [out, ref])
        let want = try JSONSerialization.jsonObject(with: Data(medpy.utf8)) as! [String: [Double]]
        for c in ["1", "2"] {
            let g = try XCTUnwrap(got[c])
            XCTAssertEqual(g.dice, want[c]![0], accuracy: 1e-6 * max(1, want[c]![0]), "Dice of class \(c)")
            XCTAssertEqual(g.hd95, want[c]![1], accuracy: 1e-4, "HD95 of class \(c)")
            XCTAssertLessThan(g.dice, 1, "the reference differs from the mask")
        }
    }

    /// A folder run with a folder of references matched by case name; the reference of the known mask scores 1.
    /// A case without a reference fails alone (exit 3 for it, 6 for the run); a reference on another grid too.
    func testFolderOfReferences() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let band = try RunFixtures.model("band", RunFixtures.ras, in: dir)
        let cases = dir.appendingPathComponent("cases"), refs = dir.appendingPathComponent("refs")
        for d in [cases, refs] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        try RunFixtures.copy("phantom.nii.gz", to: cases, as: "a.nii.gz")
        try RunFixtures.copy("phantom.nii.gz", to: cases, as: "b.nii.gz")
        try RunFixtures.copy("phantom.nii.gz", to: cases, as: "c.nii.gz")
        try RunFixtures.copy("expected_band.nii.gz", to: refs, as: "a.nii.gz")
        try RunFixtures.copy("expected_band_swapxy.nii.gz", to: refs, as: "c.nii.gz")   // (24, 40, 6): another grid
        let reportPath = dir.appendingPathComponent("run.json").path
        let r = try RunFixtures.segment([cases.path, "-o", dir.appendingPathComponent("masks").path, "--model", band,
                                         "--ref", refs.path, "--report", reportPath])
        XCTAssertEqual(r.status, 6, r.stderr)
        let rep = try RunReport.decode(Data(contentsOf: URL(fileURLWithPath: reportPath)))
        XCTAssertEqual(rep.cases.map(\.status), [.ok, .failed, .failed])
        XCTAssertEqual(rep.cases.map(\.exitCode), [nil, 3, 3])
        XCTAssertTrue(rep.cases[1].error!.contains("no reference for case b"), rep.cases[1].error!)
        XCTAssertTrue(rep.cases[2].error!.contains("not on the grid"), rep.cases[2].error!)
        let scores = try XCTUnwrap(rep.scores)
        XCTAssertEqual(scores.metricPerCase.map(\.name), ["a"])
        XCTAssertEqual(scores.metricPerCase[0].metrics["1"]?.dice, 1)
        XCTAssertEqual(scores.metricPerCase[0].metrics["2"]?.hd95, 0)
        XCTAssertEqual(scores.foregroundMean["Dice"], 1)
    }
}
