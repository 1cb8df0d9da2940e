// `segment score` end to end: files, folders, pairs CSV, merge, PNG, policies, exit codes, missing and corrupt
// predictions. Expected values: medpy 0.5.2 on the same arrays with the header's spacing (gen_metrics.py, cli/).
import Foundation
@testable import SegmentCases
import SegmentFormat
import SegmentImaging
import TestSupport
import XCTest
@testable import SegmentMetrics

final class ScoreCLITests: XCTestCase {
    var cli: URL!
    var expected: [String: [String: MetricsManifest.Medpy?]] = [:]

    override func setUpWithError() throws {
        cli = try TestSupport.fixture("metrics/cli")
        expected = try JSONDecoder().decode([String: [String: MetricsManifest.Medpy?]].self,
                                            from: Data(contentsOf: cli.appendingPathComponent("expected.json")))
    }

    func path(_ relative: String) -> String { cli.appendingPathComponent(relative).path }

    @discardableResult
    func score(_ args: [String], status want: Int32, file: StaticString = #filePath, line: UInt = #line) throws
        -> (stdout: String, stderr: String) {
        let r = try TestSupport.run(TestSupport.segmentExecutable.path, ["score"] + args)
        XCTAssertEqual(r.status, want, "segment score \(args.joined(separator: " "))\nstdout: \(r.stdout)\nstderr: \(r.stderr)",
                       file: file, line: line)
        return (r.stdout, r.stderr)
    }

    /// Compares every scored case and label of a report with medpy's answers under `prefix` of expected.json.
    func assertMatchesMedpy(_ report: ScoreReport, prefix: String, cases: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(report.metricPerCase.count, cases, file: file, line: line)
        for c in report.metricPerCase {
            let want = try XCTUnwrap(expected["\(prefix)/\(c.name)"], "no expected answers for \(c.name)", file: file, line: line)
            XCTAssertEqual(Set(c.metrics.keys), Set(want.keys), file: file, line: line)
            for (label, answer) in want {
                let got = try XCTUnwrap(c.metrics[label]), w = try XCTUnwrap(answer)
                assertDice(got.dice, w.dc, "\(c.name) \(label)", file: file, line: line)
                assertDistance(got.hd, w.hd, "\(c.name) \(label) HD", file: file, line: line)
                assertDistance(got.hd95, w.hd95, "\(c.name) \(label) HD95", file: file, line: line)
                assertDistance(got.assd, w.assd, "\(c.name) \(label) ASSD", file: file, line: line)
            }
        }
    }

    func testNIfTIFoldersJSONAndCSV() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let json = dir.appendingPathComponent("summary.json").path, csv = dir.appendingPathComponent("cases.csv").path
        let out = try score(["--pred", path("nifti/pred"), "--ref", path("nifti/ref"), "--json", json, "--csv", csv,
                             "--threads", "2"], status: 0)
        let report = try ScoreReport.read(json)
        try assertMatchesMedpy(report, prefix: "nifti", cases: 3)
        XCTAssertEqual(report.units, "mm")
        XCTAssertEqual(report.labels, [1, 2])
        XCTAssertEqual(report.labelsFrom, "present")
        XCTAssertEqual(report.metricPerCase.map(\.name), ["case_001", "case_002", "case_003"])
        XCTAssertTrue(report.metricPerCase[1].predictionFile.hasSuffix("case_002.nii"), "CASE.nii matches CASE.nii.gz")
        XCTAssertEqual(report.metricPerCase[0].spacing, [0.800000011920929, 0.800000011920929, 2.5])
        // means: over the cases, then over the labels
        for label in ["1", "2"] {
            let dice = report.metricPerCase.map { $0.metrics[label]!.dice }
            XCTAssertEqual(report.mean[label]!["Dice"]!, dice.reduce(0, +) / 3, accuracy: 1e-12)
        }
        XCTAssertEqual(report.foregroundMean["HD95"]!, (report.mean["1"]!["HD95"]! + report.mean["2"]!["HD95"]!) / 2, accuracy: 1e-12)
        // the table on stdout shows the means
        XCTAssertTrue(out.stdout.contains("3 case(s) scored, 0 failed"), out.stdout)
        XCTAssertTrue(out.stdout.contains(String(format: "%.4f", report.foregroundMean["Dice"]!)), out.stdout)
        // not a terminal: one parseable status line per case
        XCTAssertEqual(out.stderr.split(separator: "\n").filter { $0.hasPrefix("segment: score case=") && $0.contains("status=ok") }.count, 3)
        // CSV: header + 3 cases x 2 labels, values as in the JSON
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map { CaseMatching.parseCSVLine(String($0)) }
        XCTAssertEqual(rows.count, 7)
        let header = rows[0]
        let row = rows.first { $0[0] == "case_002" && $0[1] == "2" }!
        XCTAssertEqual(Double(row[header.firstIndex(of: "HD95")!])!, report.metricPerCase[1].metrics["2"]!.hd95)
        XCTAssertEqual(Int(row[header.firstIndex(of: "TP")!])!, report.metricPerCase[1].metrics["2"]!.tp)
        // a second run writes the identical report (deterministic with threads)
        let json2 = dir.appendingPathComponent("again.json").path
        try score(["--pred", path("nifti/pred"), "--ref", path("nifti/ref"), "--json", json2, "--threads", "1", "-q"], status: 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: json)), try Data(contentsOf: URL(fileURLWithPath: json2)))
    }

    func testSingleFilesAndPairsCSV() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let single = dir.appendingPathComponent("one.json").path
        try score(["--pred", path("nifti/pred/case_003.nii.gz"), "--ref", path("nifti/ref/case_003.nii.gz"), "--json", single], status: 0)
        try assertMatchesMedpy(try ScoreReport.read(single), prefix: "nifti", cases: 1)

        // a pairs file with relative and absolute paths and its own case names
        let pairsFile = dir.appendingPathComponent("pairs.csv")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: path("nifti/pred/case_001.nii.gz"), toPath: dir.appendingPathComponent("sub/p1.nii.gz").path)
        try """
            reference,prediction,case
            \(path("nifti/ref/case_001.nii.gz")),sub/p1.nii.gz,case_001
            "\(path("nifti/ref/case_002.nii.gz"))",\(path("nifti/pred/case_002.nii")),case_002

            """.write(to: pairsFile, atomically: true, encoding: .utf8)
        let json = dir.appendingPathComponent("pairs.json").path
        try score(["--pairs", pairsFile.path, "--json", json], status: 0)
        let report = try ScoreReport.read(json)
        try assertMatchesMedpy(report, prefix: "nifti", cases: 2)
        XCTAssertEqual(report.metricPerCase[0].predictionFile, dir.appendingPathComponent("sub/p1.nii.gz").path)
    }

    func testPNGISICNamesInPixels() throws {
        let json = try TestSupport.temporaryDirectory(self).appendingPathComponent("png.json").path
        let out = try score(["--pred", path("png/pred"), "--ref", path("png/ref"), "--json", json], status: 0)
        let report = try ScoreReport.read(json)
        try assertMatchesMedpy(report, prefix: "png", cases: 2)
        XCTAssertEqual(report.units, "pixel")
        XCTAssertEqual(report.metricPerCase.map(\.name), ["ISIC_0000001", "ISIC_0000002"])
        XCTAssertTrue(out.stdout.contains("distances in pixels"), out.stdout)
        // raw values: 255 is then the label
        try score(["--pred", path("png/pred"), "--ref", path("png/ref"), "--png-values", "label", "--json", json, "-q"], status: 0)
        XCTAssertEqual(try ScoreReport.read(json).labels, [255])
    }

    func testMergeOfShardsEqualsOneRun() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let whole = dir.appendingPathComponent("whole.json").path
        try score(["--pred", path("nifti/pred"), "--ref", path("nifti/ref"), "--json", whole, "-q"], status: 0)
        var shards: [String] = []
        for (k, cases) in [["case_001"], ["case_002", "case_003"]].enumerated() {
            let pairs = dir.appendingPathComponent("shard\(k).csv")
            try (["prediction,reference"] + cases.map { c in
                "\(path("nifti/pred/" + (c == "case_002" ? "case_002.nii" : c + ".nii.gz"))),\(path("nifti/ref/\(c).nii.gz"))"
            }).joined(separator: "\n").write(to: pairs, atomically: true, encoding: .utf8)
            shards.append(dir.appendingPathComponent("shard\(k).json").path)
            try score(["--pairs", pairs.path, "--json", shards[k], "-q"], status: 0)
        }
        let merged = dir.appendingPathComponent("merged.json").path
        let csv = dir.appendingPathComponent("merged.csv").path
        let out = try score(["--merge"] + shards + ["--json", merged, "--csv", csv], status: 0)
        let a = try ScoreReport.read(whole), b = try ScoreReport.read(merged)
        XCTAssertEqual(a.metricPerCase, b.metricPerCase)
        XCTAssertEqual(a.mean, b.mean)
        XCTAssertEqual(a.foregroundMean, b.foregroundMean)
        XCTAssertTrue(out.stdout.contains("3 case(s) scored"))
        XCTAssertEqual(try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").count, 7)
        // the same shard twice: a case may appear once
        let e = try score(["--merge", shards[0], shards[0], "--json", merged], status: 3)
        XCTAssertTrue(e.stderr.contains("case_001"), e.stderr)
        // shards scored under different policies do not merge
        let compat = dir.appendingPathComponent("compat.json").path
        try score(["--pred", path("nifti/pred/case_003.nii.gz"), "--ref", path("nifti/ref/case_003.nii.gz"),
                   "--compat", "swin-unet", "--json", compat, "-q"], status: 0)
        XCTAssertEqual(try ScoreReport.read(compat).units, "voxel")
        let p = try score(["--merge", shards[0], compat], status: 3)
        XCTAssertTrue(p.stderr.contains("policy"), p.stderr)
    }

    func testMissingPrediction() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let json = dir.appendingPathComponent("r.json").path
        let out = try score(["--pred", path("nifti_missing/pred"), "--ref", path("nifti_missing/ref"), "--json", json], status: 6)
        let report = try ScoreReport.read(json)
        XCTAssertEqual(report.metricPerCase.map(\.name), ["case_001"])
        XCTAssertEqual(report.failedCases.map(\.name), ["case_009"])
        XCTAssertTrue(report.failedCases[0].error.contains("case_009.nii.gz") && report.failedCases[0].error.contains("missing"))
        XCTAssertTrue(out.stderr.contains("segment: score case=case_009 status=failed"), out.stderr)
        XCTAssertTrue(out.stdout.contains("1 failed"), out.stdout)

        try score(["--pred", path("nifti_missing/pred"), "--ref", path("nifti_missing/ref"), "--json", json,
                   "--missing-as-empty", "-q"], status: 0)
        let empty = try ScoreReport.read(json)
        let c = try XCTUnwrap(empty.metricPerCase.first { $0.name == "case_009" })
        XCTAssertTrue(c.predictionMissing)
        XCTAssertEqual(c.metrics["1"]!.dice, 0)
        XCTAssertEqual(c.metrics["1"]!.hd95, .infinity)
        XCTAssertEqual(empty.counts["1"]!.emptyPredOnly, 1)
        XCTAssertEqual(empty.counts["1"]!.infinite["HD95"], 1)
        // the infinite value is left out of the mean: it is the other case's value
        XCTAssertEqual(empty.mean["1"]!["HD95"]!, empty.metricPerCase.first { $0.name == "case_001" }!.metrics["1"]!.hd95)
        XCTAssertEqual(empty.mean["1"]!["Dice"]!, empty.metricPerCase.first { $0.name == "case_001" }!.metrics["1"]!.dice / 2, accuracy: 1e-12)

        // every case missing: nothing scored
        let noPred = dir.appendingPathComponent("nopred")
        try FileManager.default.createDirectory(at: noPred, withIntermediateDirectories: true)
        try score(["--pred", noPred.path, "--ref", path("nifti_missing/ref"), "-q"], status: 3)
    }

    func testCorruptPredictionFailsOnlyItsCase() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let pred = dir.appendingPathComponent("pred")
        try FileManager.default.copyItem(atPath: path("nifti/pred"), toPath: pred.path)
        try Data("not a nifti file".utf8).write(to: pred.appendingPathComponent("case_002.nii"))
        let json = dir.appendingPathComponent("r.json").path
        try score(["--pred", pred.path, "--ref", path("nifti/ref"), "--json", json, "-q"], status: 6)
        let report = try ScoreReport.read(json)
        XCTAssertEqual(report.metricPerCase.map(\.name), ["case_001", "case_003"])
        XCTAssertEqual(report.failedCases.map(\.name), ["case_002"])
        XCTAssertEqual(report.failedCases[0].exitCode, 3)
        // a prediction without a reference is reported, not scored
        try FileManager.default.copyItem(atPath: path("nifti/pred/case_001.nii.gz"), toPath: pred.appendingPathComponent("extra.nii.gz").path)
        let out = try score(["--pred", pred.path, "--ref", path("nifti/ref"), "--json", json, "-q"], status: 6)
        XCTAssertTrue(out.stderr.contains("extra.nii.gz matches no reference"), out.stderr)
        XCTAssertEqual(try ScoreReport.read(json).unmatchedPredictions, [pred.appendingPathComponent("extra.nii.gz").path])
    }

    func testGridMismatchAndExitCodes() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let shape = try score(["--pred", path("mismatch/pred.nii.gz"), "--ref", path("mismatch/ref.nii.gz")], status: 3)
        XCTAssertTrue(shape.stderr.contains("mismatch/pred.nii.gz") && shape.stderr.contains("mismatch/ref.nii.gz")
                      && shape.stderr.contains("[32, 30, 11] vs [32, 30, 12]"), shape.stderr)
        let moved = try score(["--pred", path("mismatch/pred_moved.nii.gz"), "--ref", path("mismatch/ref.nii.gz")], status: 3)
        XCTAssertTrue(moved.stderr.contains("affines differ by up to 1"), moved.stderr)
        try score(["--pred", path("mismatch/pred_moved.nii.gz"), "--ref", path("mismatch/ref.nii.gz"), "--ignore-affine", "-q"], status: 0)

        // not a label image: the voxel is named
        let fraction = try score(["--pred", path("mismatch/fraction.nii.gz"), "--ref", path("mismatch/ref.nii.gz")], status: 3)
        XCTAssertTrue(fraction.stderr.contains("fraction.nii.gz is not a label image: voxel (3, 4, 5) is 1.5"), fraction.stderr)

        // usage errors: exit 2
        try score(["--pred", path("nifti/pred")], status: 2)
        try score(["--pred", path("nifti/pred"), "--ref", path("nifti/ref"), "--labels", "0,x"], status: 2)
        try score(["--pred", path("nifti/pred"), "--ref", path("nifti/ref/case_001.nii.gz")], status: 2)
        // missing input: 3; unwritable report: 5 (nothing half-written)
        try score(["--pred", path("nifti/pred"), "--ref", dir.appendingPathComponent("nowhere").path], status: 3)
        try score(["--pred", path("nifti/pred"), "--ref", path("nifti/ref"), "-q", "--json",
                   dir.appendingPathComponent("no/such/folder/r.json").path], status: 5)
        // a PNG that is not a binary 0/255 mask is refused in binary mode, with what to do
        let gray = dir.appendingPathComponent("gray")
        try FileManager.default.createDirectory(at: gray, withIntermediateDirectories: true)
        try TestSupport.python("""
            import numpy as np, png, sys
            png.from_array(np.full((4, 5), 7, np.uint8).tolist(), 'L').save(sys.argv[1])
            """, [gray.appendingPathComponent("a.png").path])
        let bad = try score(["--pred", gray.appendingPathComponent("a.png").path, "--ref", gray.appendingPathComponent("a.png").path], status: 3)
        XCTAssertTrue(bad.stderr.contains("--png-values label"), bad.stderr)
    }

    func testLabelsSpacingAndModelClassNames() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let json = dir.appendingPathComponent("r.json").path
        let ref = path("nifti/ref/case_001.nii.gz"), pred = path("nifti/pred/case_001.nii.gz")
        try score(["--pred", pred, "--ref", ref, "--labels", "2,5", "--spacing", "1,1,1", "--json", json, "-q"], status: 0)
        var report = try ScoreReport.read(json)
        XCTAssertEqual(report.labels, [2, 5])
        XCTAssertEqual(report.labelsFrom, "given")
        XCTAssertEqual(report.metricPerCase[0].spacing, [1, 1, 1])
        XCTAssertTrue(report.metricPerCase[0].metrics["5"]!.dice.isNaN, "a label absent from both is NaN")
        XCTAssertEqual(report.counts["5"]!.bothEmpty, 1)
        XCTAssertTrue(report.mean["5"]!["Dice"]!.isNaN)
        XCTAssertEqual(report.foregroundMean["Dice"]!, report.mean["2"]!["Dice"]!, "NaN label means are left out")
        try score(["--pred", pred, "--ref", ref, "--spacing", "1,1"], status: 3)   // wrong count for a 3D image

        // class names and labels from a model file
        var config = SwinUNetConfig(imgSize: 32, patchSize: 4, inChans: 1, numClasses: 3, embedDim: 4,
                                    depths: [1, 1], numHeads: [1, 1], windowSize: 4)
        config.mlpRatio = 1
        var writer = ModelFileWriter(metadata: ModelMetadata(config: config, classNames: ["background", "liver", "tumour"]))
        for t in config.expectedTensors() { try writer.add(t.name, shape: t.shape, values: [Float](repeating: 0, count: t.count), dtype: .f32) }
        let model = dir.appendingPathComponent("tiny.segm").path
        try writer.write(to: model)
        let out = try score(["--pred", pred, "--ref", ref, "--model", model, "--json", json, "-q"], status: 0)
        report = try ScoreReport.read(json)
        XCTAssertEqual(report.labels, [1, 2])
        XCTAssertEqual(report.classNames, ["1": "liver", "2": "tumour"])
        XCTAssertTrue(out.stdout.contains("liver") && out.stdout.contains("tumour"), out.stdout)
        try score(["--pred", pred, "--ref", ref, "--model", dir.appendingPathComponent("none.segm").path], status: 4)
    }

    /// The entry point of `segment run --ref`: a prediction in memory on a header's grid, against a reference file.
    func testInMemoryPredictionAgainstReference() throws {
        let refPath = path("nifti/ref/case_001.nii.gz"), predPath = path("nifti/pred/case_001.nii.gz")
        let ref = try LabelImage.read(refPath, pngValues: .binary)
        let volume = try NIfTIVolume.read(predPath)
        let pred = LabelImage(labels: try volume.labels(as: UInt16.self), header: volume.header)
        let score = try scorePrediction(pred, against: ref, name: "case_001", predictionFile: "(memory)",
                                        referenceFile: refPath, options: ScoreOptions())
        let report = ScoreReport(cases: [score], labels: nil, policy: .init(), tool: "test")
        try assertMatchesMedpy(report, prefix: "nifti", cases: 1)
        // the same grid checks as the CLI
        let moved = try NIfTIHeader.read(path("mismatch/pred_moved.nii.gz"))
        let other = try LabelImage.read(path("mismatch/ref.nii.gz"), pngValues: .binary)
        let onMoved = LabelImage(labels: other.labels.labels, header: moved)
        XCTAssertThrowsError(try scorePrediction(onMoved, against: other, name: "x", predictionFile: "(memory)",
                                                 referenceFile: "ref.nii.gz", options: ScoreOptions())) {
            XCTAssertTrue($0 is GridMismatchError)
        }
        XCTAssertNoThrow(try scorePrediction(onMoved, against: other, name: "x", predictionFile: "(memory)",
                                             referenceFile: "ref.nii.gz", options: ScoreOptions(ignoreAffine: true)))
    }

    /// Regions (unions of labels) and an ignore label against nnU-Net's rules written directly in numpy
    /// (region_or_label_to_mask; TP/FP/FN/TN over the voxels whose reference is not the ignore label; Dice NaN when
    /// TP + FP + FN = 0): counts exact, Dice and IoU to 1e-12. Distances of a region equal those of its binary masks.
    func testRegionsAndIgnoreLabelFollowNNUNet() throws {
        let shape = [13, 11, 7], n = 13 * 11 * 7
        var state: UInt64 = 7
        func next() -> UInt16 { state = state &* 6364136223846793005 &+ 1442695040888963407; return UInt16(state >> 62) }
        let pred = (0..<n).map { _ in next() }, ref = (0..<n).map { _ in next() }
        let regions = [Region([1, 2]), Region([2, 3])]
        let score = try scoreCase(name: "r", prediction: LabelMap(shape: shape, labels: pred),
                                  reference: LabelMap(shape: shape, labels: ref), spacing: [1, 1, 1], unit: .mm,
                                  labels: nil, regions: regions, ignoreLabel: 3)
        XCTAssertEqual(Set(score.metrics.keys), ["1", "2", "1+2", "2+3"], "the ignore label is not scored as a label")
        let ignored = ref.filter { $0 == 3 }.count
        XCTAssertEqual(score.ignoredVoxels, ignored)
        // A class the case lacks, filled in by the report (labels of other cases), leaves the ignored voxels out of TN.
        var completed = score
        completed.complete(keys: ["7"], policy: .init())
        XCTAssertEqual(completed.metrics["7"]?.tn, n - ignored)
        let dir = try TestSupport.temporaryDirectory(self)
        let p = dir.appendingPathComponent("p.u16"), r = dir.appendingPathComponent("r.u16")
        try pred.withUnsafeBytes { Data($0) }.write(to: p)
        try ref.withUnsafeBytes { Data($0) }.write(to: r)
        let out = try TestSupport.python("""
            import sys, json, numpy as np
            p = np.fromfile(sys.argv[1], '<u2'); r = np.fromfile(sys.argv[2], '<u2')
            use = ~(r == 3)
            res = {}
            for key, labels in [("1", [1]), ("2", [2]), ("1+2", [1, 2]), ("2+3", [2, 3])]:
                mr = np.isin(r, labels); mp = np.isin(p, labels)
                tp = int(np.sum(mr & mp & use)); fp = int(np.sum(~mr & mp & use))
                fn = int(np.sum(mr & ~mp & use)); tn = int(np.sum(~mr & ~mp & use))
                res[key] = [tp, fp, fn, tn, 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)]
            print(json.dumps(res))
            """, [p.path, r.path])
        let want = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: [Double]]
        for (key, w) in want {
            let s = try XCTUnwrap(score.metrics[key], key)
            XCTAssertEqual([s.tp, s.fp, s.fn, s.tn].map(Double.init), Array(w[0..<4]), key)
            XCTAssertEqual(s.dice, w[4], accuracy: 1e-12, key)
            XCTAssertEqual(s.iou, w[5], accuracy: 1e-12, key)
        }
        // A region's distances are those of its binary masks scored as one label (ignored voxels as background).
        let inRegion = { (v: UInt16, i: Int) -> UInt16 in ref[i] == 3 ? 0 : (v == 1 || v == 2 ? 1 : 0) }
        let binary = try scoreCase(name: "b", prediction: LabelMap(shape: shape, labels: pred.enumerated().map { inRegion($1, $0) }),
                                   reference: LabelMap(shape: shape, labels: ref.enumerated().map { inRegion($1, $0) }),
                                   spacing: [1, 1, 1], unit: .mm, labels: [1])
        XCTAssertEqual(score.metrics["1+2"]?.hd95, binary.metrics["1"]?.hd95)
        XCTAssertEqual(score.metrics["1+2"]?.assd, binary.metrics["1"]?.assd)
        // The report keys regions after the labels, names them, says what they are, and merges only like with like.
        let report = ScoreReport(cases: [score], labels: nil, regions: regions, ignoreLabel: 3,
                                 classNames: ["1+2": "liver"], policy: .init(), tool: "test")
        XCTAssertEqual(report.classKeys, ["1", "2", "1+2", "2+3"])
        XCTAssertNotNil(report.definitions["regions"]); XCTAssertNotNil(report.definitions["ignore_label"])
        XCTAssertTrue(report.table().contains("1+2") && report.table().contains("liver"), report.table())
        XCTAssertTrue(report.csv().contains(",1+2,liver,ok,"), report.csv())
        let plain = ScoreReport(cases: [score], labels: nil, policy: .init(), tool: "test")
        XCTAssertThrowsError(try ScoreReport.merge([report, plain], sources: ["a.json", "b.json"], tool: "t"))
        let file = dir.appendingPathComponent("report.json")
        try report.json().write(to: file)
        let round = try ScoreReport.read(file.path)
        XCTAssertEqual(round.regions, ["1+2", "2+3"]); XCTAssertEqual(round.ignoreLabel, 3)
    }

    func testCaseNames() {
        XCTAssertEqual(CaseNames.ofMask("/a/b/case_01.nii.gz"), "case_01")
        XCTAssertEqual(CaseNames.ofMask("case_01.NII"), "case_01")
        XCTAssertEqual(CaseNames.ofMask("ISIC_0012_segmentation.png"), "ISIC_0012")
        XCTAssertEqual(CaseNames.ofMask("ISIC_0012.png"), "ISIC_0012")
        XCTAssertEqual(CaseNames.ofMask("_segmentation.png"), "_segmentation", "a name that is only the suffix stays")
        XCTAssertEqual(CaseMatching.parseCSVLine("a,\"b,\"\"c\"\"\",d\r"), ["a", "b,\"c\"", "d"])
    }
}
