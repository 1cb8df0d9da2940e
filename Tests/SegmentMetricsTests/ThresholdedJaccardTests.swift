// ISIC 2018's thresholded Jaccard against a direct numpy computation (trainer/fixtures/gen_jpeg.py, OUTDIR/jpeg/tj/):
// per-case Jaccard of the foreground, 0 below 0.65 (0.65 itself kept), averaged; in the JSON, the CSV and the table.
import Foundation
import TestSupport
import XCTest
@testable import SegmentMetrics

final class ThresholdedJaccardTests: XCTestCase {
    struct Expected: Decodable {
        struct Case: Decodable { let jaccard: Double; let thresholded: Double }
        let cases: [String: Case]
        let mean_thresholded: Double
    }

    func testMatchesNumpy() throws {
        let tj = try TestSupport.fixture("jpeg/tj")
        let want = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: tj.appendingPathComponent("expected.json")))
        let dir = try TestSupport.temporaryDirectory(self)
        let json = dir.appendingPathComponent("s.json").path, csv = dir.appendingPathComponent("s.csv").path
        let r = try TestSupport.run(TestSupport.segmentExecutable.path,
                                    ["score", "--pred", tj.appendingPathComponent("pred").path,
                                     "--ref", tj.appendingPathComponent("ref").path, "--json", json, "--csv", csv])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try ScoreReport.read(json)
        XCTAssertEqual(Set(report.metricPerCase.map(\.name)), Set(want.cases.keys))
        for c in report.metricPerCase {
            let w = try XCTUnwrap(want.cases[c.name]), got = try XCTUnwrap(c.metrics["1"])
            XCTAssertEqual(got.iou, w.jaccard, accuracy: 1e-15, c.name)
            XCTAssertEqual(try XCTUnwrap(got.thresholdedJaccard), w.thresholded, accuracy: 1e-15, c.name)
        }
        let mean = try XCTUnwrap(report.mean["1"]?["thresholded_Jaccard"])
        XCTAssertEqual(mean, want.mean_thresholded, accuracy: 1e-12)
        XCTAssertEqual(report.foregroundMean["thresholded_Jaccard"] ?? .nan, want.mean_thresholded, accuracy: 1e-12)
        XCTAssertNotNil(report.definitions["thresholded_jaccard"])

        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let column = try XCTUnwrap(lines[0].firstIndex(of: "thresholded_Jaccard"))
        for row in lines.dropFirst() {
            XCTAssertEqual(Double(row[column]) ?? .nan, want.cases[String(row[0])]!.thresholded, accuracy: 1e-15, String(row[0]))
        }
        XCTAssertTrue(report.table().contains("TJ"))
        XCTAssertTrue(report.table().contains(String(format: "%.4f", want.mean_thresholded)), report.table())
    }

    /// Both masks empty: NaN, left out of the mean like IoU; reports written before the metric derive it from IoU.
    func testEmptyAndOlderReports() throws {
        XCTAssertTrue(ClassScore.thresholded(.nan).isNaN)
        XCTAssertEqual(ClassScore.thresholded(0.6499999), 0)
        XCTAssertEqual(ClassScore.thresholded(0.65), 0.65)
        var s = ClassScore.bothEmpty(voxelCount: 4, policy: .init())
        XCTAssertTrue(s.value("thresholded_Jaccard").isNaN)
        s.iou = 0.9
        s.thresholdedJaccard = nil
        XCTAssertEqual(s.value("thresholded_Jaccard"), 0.9)
    }
}
