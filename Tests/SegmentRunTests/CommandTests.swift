// The run command's behaviour through the CLI: folders, reports, status lines, --continue / --overwrite, shards,
// exit codes, probabilities, overlays, 4D volumes.
import Foundation
import SegmentFormat
import SegmentImaging
import SegmentRun
import TestSupport
import XCTest

final class CommandTests: XCTestCase {
    var dir: URL!
    var band: String!

    override func setUpWithError() throws {
        dir = try TestSupport.temporaryDirectory(self)
        band = try RunFixtures.model("band", RunFixtures.ras, in: dir)
    }

    /// A folder with two volumes and a picture.
    func makeCases(_ names: [(fixture: String, as: String)] = [("phantom.nii.gz", "a.nii.gz"), ("phantom_flipx.nii.gz", "b.nii"),
                                                               ("picture_gray.png", "c.png")]) throws -> URL {
        let cases = dir.appendingPathComponent("cases")
        try FileManager.default.createDirectory(at: cases, withIntermediateDirectories: true)
        for n in names {
            if n.fixture.hasSuffix(".nii.gz") && n.as.hasSuffix(".nii") {
                // A plain .nii: decompress through the project's Python (nibabel).
                try TestSupport.python("import nibabel, sys; nibabel.save(nibabel.load(sys.argv[1]), sys.argv[2])",
                                       [TestSupport.fixture("run/\(n.fixture)").path, cases.appendingPathComponent(n.as).path])
            } else {
                try RunFixtures.copy(n.fixture, to: cases, as: n.as)
            }
        }
        return cases
    }

    func report(_ path: String) throws -> RunReport { try RunReport.decode(Data(contentsOf: URL(fileURLWithPath: path))) }

    // MARK: folders, report, status lines

    func testFolderRunWritesEveryCaseAndTheReport() throws {
        let cases = try makeCases(), masks = dir.appendingPathComponent("masks")
        let reportPath = dir.appendingPathComponent("run.json").path
        try Data().write(to: cases.appendingPathComponent("notes.txt"))               // not an image: ignored
        let r = try RunFixtures.segment([cases.path, "-o", masks.path, "--model", band, "--report", reportPath])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: masks.path).sorted(), ["a.nii.gz", "b.nii", "c.png"])
        XCTAssertEqual(try RunFixtures.labels(masks.appendingPathComponent("a.nii.gz").path).values,
                       try RunFixtures.labels(TestSupport.fixture("run/expected_band.nii.gz").path).values)
        XCTAssertEqual(try RunFixtures.labels(masks.appendingPathComponent("b.nii").path).values,
                       try RunFixtures.labels(TestSupport.fixture("run/expected_band_flipx.nii.gz").path).values)

        // One parseable status line per case, in order (stderr is not a terminal here).
        let lines = RunFixtures.statusLines(r.stderr)
        XCTAssertEqual(lines.map { $0["case"]! }, ["a", "b", "c"])
        XCTAssertEqual(Set(lines.map { $0["status"]! }), ["ok"])
        XCTAssertEqual(lines[0]["out"], masks.appendingPathComponent("a.nii.gz").path)
        XCTAssertEqual(lines[0]["slices"], "6")
        XCTAssertTrue(r.stderr.contains("segment: done cases=3 ok=3 skipped=0 failed=0"), r.stderr)
        XCTAssertEqual(r.stdout, "", "stdout stays empty without --json")

        // The report: tool, model, options, and per case shape, spacing, labels with voxels and volumes.
        let rep = try report(reportPath)
        let model = try ModelFile.open(band)
        XCTAssertEqual(rep.format, "segment-run-report")
        XCTAssertFalse(rep.toolVersion.isEmpty)
        XCTAssertEqual(rep.exitCode, 0)
        XCTAssertEqual(rep.model.checksum, model.checksum)
        XCTAssertEqual(rep.model.path, band)
        XCTAssertEqual(rep.model.classNames, ["background", "class1", "class2"])
        XCTAssertEqual(rep.model.preprocessing, ModelRecord.PreprocessingRecord(RunFixtures.ras))
        XCTAssertEqual(rep.options.batch, 4)
        XCTAssertEqual(rep.summary, try JSONDecoder().decode(RunSummary.self, from: Data(#"{"discovered":3,"cases":3,"ok":3,"skipped":0,"failed":0}"#.utf8)))
        XCTAssertEqual(rep.cases.map(\.name), ["a", "b", "c"])
        let a = rep.cases[0]
        XCTAssertEqual(a.shape, [40, 24, 6])
        XCTAssertEqual(a.spacing!.map { ($0 * 1000).rounded() / 1000 }, [0.8, 1.2, 2.5])
        let expected = try RunFixtures.labels(TestSupport.fixture("run/expected_band.nii.gz").path).values
        let counts = (0...2).map { l in expected.filter { $0 == l }.count }
        XCTAssertEqual(a.labels!.map(\.label), [0, 1, 2])
        XCTAssertEqual(a.labels!.map(\.name), ["background", "class1", "class2"])
        XCTAssertEqual(a.labels!.map(\.voxels), counts)
        for (l, n) in zip(a.labels!, counts) {
            XCTAssertEqual(l.volumeMl!, Double(n) * 0.8 * 1.2 * 2.5 / 1000, accuracy: 1e-6)
        }
        XCTAssertEqual(rep.cases[2].shape, [45, 30])
        XCTAssertNil(rep.cases[2].labels!.first!.volumeMl, "pictures have no physical volume")
    }

    func testJSONGoesToStdout() throws {
        let out = dir.appendingPathComponent("m.nii.gz").path
        let r = try RunFixtures.segment([TestSupport.fixture("run/phantom.nii.gz").path, "-o", out, "--model", band, "--json", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "", "--quiet prints nothing for a successful run")
        let rep = try RunReport.decode(Data(r.stdout.utf8))
        XCTAssertEqual(rep.cases.map(\.status), [.ok])
        XCTAssertEqual(rep.cases[0].output, out)
    }

    /// The same input and model give the same mask file, byte for byte, whatever --threads and --batch.
    func testDeterministicOutput() throws {
        let random = try RunFixtures.model("random", RunFixtures.ras, in: dir)
        let runs = [["--threads", "2"], ["--threads", "2"], ["--threads", "1", "--batch", "1"], ["--threads", "3", "--batch", "3"]]
        let outs = try runs.enumerated().map { i, options -> Data in
            let out = dir.appendingPathComponent("m\(i).nii.gz").path
            let r = try RunFixtures.segment([TestSupport.fixture("run/phantom_scrambled.nii.gz").path, "-o", out, "--model", random] + options)
            XCTAssertEqual(r.status, 0, r.stderr)
            return try Data(contentsOf: URL(fileURLWithPath: out))
        }
        for (i, options) in runs.enumerated().dropFirst() { XCTAssertEqual(outs[i], outs[0], "\(options) differs from \(runs[0])") }
    }

    // MARK: --continue, --overwrite

    func testContinueSkipsFinishedCasesAndOverwriteReplacesThem() throws {
        let cases = try makeCases(), masks = dir.appendingPathComponent("masks")
        XCTAssertEqual(try RunFixtures.segment([cases.path, "-o", masks.path, "--model", band]).status, 0)
        let a = masks.appendingPathComponent("a.nii.gz").path, c = masks.appendingPathComponent("c.png").path
        try FileManager.default.removeItem(atPath: masks.appendingPathComponent("b.nii").path)
        try Data("sentinel".utf8).write(to: URL(fileURLWithPath: a))           // a "finished" output is left alone

        // Without a flag an existing output is an error for that case; the missing one is still made.
        var r = try RunFixtures.segment([cases.path, "-o", masks.path, "--model", band])
        XCTAssertEqual(r.status, 6, r.stderr)
        XCTAssertEqual(RunFixtures.statusLines(r.stderr).map { $0["status"]! }, ["failed", "ok", "failed"])
        XCTAssertTrue(r.stderr.contains("--continue"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: a, encoding: .utf8), "sentinel")

        try FileManager.default.removeItem(atPath: masks.appendingPathComponent("b.nii").path)
        r = try RunFixtures.segment([cases.path, "-o", masks.path, "--model", band, "--continue"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(RunFixtures.statusLines(r.stderr).map { $0["status"]! }, ["skipped", "ok", "skipped"])
        XCTAssertEqual(try String(contentsOfFile: a, encoding: .utf8), "sentinel")
        XCTAssertTrue(FileManager.default.fileExists(atPath: c))

        r = try RunFixtures.segment([cases.path, "-o", masks.path, "--model", band, "--overwrite"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try RunFixtures.labels(a).values, try RunFixtures.labels(TestSupport.fixture("run/expected_band.nii.gz").path).values)
    }

    func testExistingOutputOfOneFileIsExit5AndUntouched() throws {
        let out = dir.appendingPathComponent("m.nii.gz").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: out))
        let r = try RunFixtures.segment([TestSupport.fixture("run/phantom.nii.gz").path, "-o", out, "--model", band])
        XCTAssertEqual(r.status, 5, r.stderr)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "old")
    }

    // MARK: shards

    /// Shards of a folder cover every case exactly once, each shard taking cases i, i+n, ... of the sorted list.
    func testShardsCoverEveryCaseOnce() throws {
        let names = (0..<7).map { (fixture: "picture_gray.png", as: "case\($0).png") }
        let cases = try makeCases(names), masks = dir.appendingPathComponent("masks")
        var seen: [String] = []
        for i in 0..<3 {
            let reportPath = dir.appendingPathComponent("shard\(i).json").path
            let r = try RunFixtures.segment([cases.path, "-o", masks.path, "--model", band, "--shard", "\(i)/3", "--report", reportPath])
            XCTAssertEqual(r.status, 0, r.stderr)
            let got = try report(reportPath).cases.map(\.name)
            XCTAssertEqual(got, stride(from: i, to: 7, by: 3).map { "case\($0)" })
            XCTAssertEqual(try report(reportPath).summary.shard, "\(i)/3")
            seen += got
        }
        XCTAssertEqual(seen.sorted(), (0..<7).map { "case\($0)" })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: masks.path).count, 7)
        // More shards than cases: an empty shard processes nothing, so it is not a success.
        let r = try RunFixtures.segment([cases.path, "-o", masks.path, "--model", band, "--shard", "7/8", "--continue"])
        XCTAssertEqual(r.status, 2, r.stderr)
    }

    /// The reports of the shards merge into the report of the whole folder (cases, summary, --ref scores).
    func testShardReportsMerge() throws {
        let cases = try makeCases([("phantom.nii.gz", "a.nii.gz"), ("phantom_flipx.nii.gz", "b.nii.gz"),
                                   ("phantom_lps.nii.gz", "c.nii.gz")])
        let refs = dir.appendingPathComponent("refs")
        try FileManager.default.createDirectory(at: refs, withIntermediateDirectories: true)
        for (name, fixture) in [("a", "expected_band.nii.gz"), ("b", "expected_random_flipx.nii.gz"), ("c", "expected_band_lps.nii.gz")] {
            try RunFixtures.copy(fixture, to: refs, as: name + ".nii.gz")
        }
        func run(_ extra: [String], file: String) throws -> RunReport {
            let path = dir.appendingPathComponent(file).path
            let r = try RunFixtures.segment([cases.path, "-o", dir.appendingPathComponent("masks").path, "--model", band,
                                             "--ref", refs.path, "--report", path, "--overwrite"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            return try report(path)
        }
        let whole = try run([], file: "whole.json")
        _ = try run(["--shard", "0/2"], file: "s0.json")
        _ = try run(["--shard", "1/2"], file: "s1.json")
        let all = dir.appendingPathComponent("all.json").path
        let r = try RunFixtures.segment(["--merge-reports", dir.appendingPathComponent("s1.json").path,
                                         dir.appendingPathComponent("s0.json").path, "--report", all])
        XCTAssertEqual(r.status, 0, r.stderr)
        let merged = try report(all)
        XCTAssertEqual(merged.cases.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(merged.cases.map(\.labels), whole.cases.map(\.labels))
        XCTAssertEqual(merged.summary, whole.summary)
        XCTAssertEqual(merged.model, whole.model)
        XCTAssertEqual(merged.exitCode, 0)
        let (m, w) = (try XCTUnwrap(merged.scores), try XCTUnwrap(whole.scores))
        XCTAssertEqual(m.metricPerCase, w.metricPerCase)
        XCTAssertEqual(m.foregroundMean["Dice"]!, w.foregroundMean["Dice"]!, accuracy: 1e-12)
        XCTAssertLessThan(m.foregroundMean["Dice"]!, 1, "case b's reference differs")

        // A case twice, or a file that is not a run report, is refused.
        let s0 = dir.appendingPathComponent("s0.json").path
        XCTAssertEqual(try RunFixtures.segment(["--merge-reports", s0, s0, "--json"]).status, 2)
        XCTAssertEqual(try RunFixtures.segment(["--merge-reports", s0, try TestSupport.fixture("run/band.json").path, "--json"]).status, 3)
    }

    // MARK: exit codes

    func testUsageErrorsExit2() throws {
        let phantom = try TestSupport.fixture("run/phantom.nii.gz").path
        let out = dir.appendingPathComponent("m.nii.gz").path
        for args in [[phantom, "-o", out, "--continue", "--overwrite"],
                     [phantom, "-o", out, "--shard", "3/2"],
                     [phantom, "-o", out, "--shard", "x"],
                     [phantom, "-o", out, "--threads", "0"],
                     [phantom, "-o", dir.appendingPathComponent("m.png").path],          // a PNG mask for a NIfTI input
                     [phantom],                                                            // no -o
                     [phantom, "-o", out, "--no-such-flag"],
                     [phantom, "-o", out, "--overlay-slices", "all"]] {                       // without --overlay
            let r = try RunFixtures.segment(args + ["--model", band])
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }

    /// An output equal to an input is refused before anything is written; the input is unchanged.
    func testOutputEqualToInputIsRefused() throws {
        let input = try RunFixtures.copy("phantom.nii.gz", to: dir)
        let before = try Data(contentsOf: URL(fileURLWithPath: input))
        for args in [[input, "-o", input, "--overwrite"],
                     [input, "-o", dir.path + "/./phantom.nii.gz", "--overwrite"],
                     [dir.path, "-o", dir.path, "--overwrite"],
                     [input, "-o", dir.appendingPathComponent("m.nii.gz").path, "--report", input]] {
            let r = try RunFixtures.segment(args + ["--model", band])
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("never overwritten"), r.stderr)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: input)), before)
    }

    func testInvalidInputsExit3() throws {
        let out = dir.appendingPathComponent("m.nii.gz").path
        let broken = dir.appendingPathComponent("broken.nii.gz").path
        try Data("not a nifti".utf8).write(to: URL(fileURLWithPath: broken))
        let text = dir.appendingPathComponent("scan.txt").path
        try Data().write(to: URL(fileURLWithPath: text))
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        for (args, says) in [([dir.appendingPathComponent("missing.nii.gz").path, "-o", out], "does not exist"),
                             ([text, "-o", out], "not a NIfTI"),
                             ([empty.path, "-o", dir.appendingPathComponent("masks").path], "holds no"),
                             ([broken, "-o", out], "broken.nii.gz"),
                             ([try TestSupport.fixture("run/phantom4d.nii.gz").path, "-o", out], "--volume")] {
            let r = try RunFixtures.segment(args + ["--model", band])
            XCTAssertEqual(r.status, 3, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(says), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }

    func testModelProblemsExit4() throws {
        let phantom = try TestSupport.fixture("run/phantom.nii.gz").path
        let out = dir.appendingPathComponent("m.nii.gz").path
        let corrupt = dir.appendingPathComponent("corrupt.segm").path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: band))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: corrupt))
        for (args, env) in [(["--model", dir.appendingPathComponent("none.segm").path], [:]),
                            (["--model", corrupt], [:]),
                            ([], ["SEGMENT_MODEL": dir.appendingPathComponent("none.segm").path])] {
            let r = try RunFixtures.segment([phantom, "-o", out] + args, environment: env)
            XCTAssertEqual(r.status, 4, "\(args) \(env): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        // SEGMENT_MODEL is the default model when --model is not given.
        let r = try RunFixtures.segment([phantom, "-o", out, "--json"], environment: ["SEGMENT_MODEL": band])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try RunReport.decode(Data(r.stdout.utf8)).model.path, band)
    }

    func testUnwritableOutputExit5() throws {
        let blocker = dir.appendingPathComponent("file")
        try Data().write(to: blocker)
        let r = try RunFixtures.segment([try TestSupport.fixture("run/phantom.nii.gz").path, "-o",
                                         blocker.appendingPathComponent("sub/m.nii.gz").path, "--model", band])
        XCTAssertEqual(r.status, 5, r.stderr)
    }

    /// A corrupt image in a folder fails alone: the others are segmented, the run ends with 6, the report lists it.
    func testCorruptInputDoesNotStopTheOthers() throws {
        let cases = try makeCases([("phantom.nii.gz", "a.nii.gz"), ("phantom.nii.gz", "c.nii.gz")])
        try Data("garbage".utf8).write(to: cases.appendingPathComponent("b.nii.gz"))
        let masks = dir.appendingPathComponent("masks"), reportPath = dir.appendingPathComponent("run.json").path
        let r = try RunFixtures.segment([cases.path, "-o", masks.path, "--model", band, "--report", reportPath])
        XCTAssertEqual(r.status, 6, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: masks.path).sorted(), ["a.nii.gz", "c.nii.gz"])
        let rep = try report(reportPath)
        XCTAssertEqual(rep.exitCode, 6)
        XCTAssertEqual(rep.cases.map(\.status), [.ok, .failed, .ok])
        XCTAssertEqual(rep.cases[1].exitCode, 3)
        XCTAssertTrue(rep.cases[1].error!.contains("b.nii.gz"), rep.cases[1].error!)
        XCTAssertEqual(RunFixtures.statusLines(r.stderr)[1]["exit"], "3")
        XCTAssertTrue(r.stderr.contains("1 of 3 cases failed (b)"), r.stderr)
    }

    // MARK: outputs besides the mask

    /// --probabilities: float32 softmax on the input grid (NIfTI 4D or .npy) equal to the reference's, and its
    /// argmax is the mask.
    func testProbabilities() throws {
        let random = try RunFixtures.model("random", RunFixtures.ras, in: dir)
        let phantom = try TestSupport.fixture("run/phantom.nii.gz").path
        for ext in ["nii.gz", "npy"] {
            let out = dir.appendingPathComponent("m_\(ext).nii.gz").path, prob = dir.appendingPathComponent("p.\(ext)").path
            let r = try RunFixtures.segment([phantom, "-o", out, "--model", random, "--probabilities", prob])
            XCTAssertEqual(r.status, 0, r.stderr)
            let check = try TestSupport.python("""
                import sys, json, numpy as np, nibabel as nib
                prob, mask, ref, margin = sys.argv[1:5]
                p = np.load(prob) if prob.endswith(".npy") else nib.load(prob).get_fdata(dtype=np.float32)
                want = np.load(ref)
                m = np.asarray(nib.load(mask).dataobj)
                clear = nib.load(margin).get_fdata() > 1e-3
                print(json.dumps({"shape": list(p.shape), "dtype": str(p.dtype), "maxdiff": float(np.abs(p - want).max()),
                                  "argmax_differs": int(((p.argmax(3) != m) & clear).sum()), "sums": float(np.abs(p.sum(3) - 1).max())}))
                """, [prob, out, try TestSupport.fixture("run/probabilities_random.npy").path,
                      try TestSupport.fixture("run/margin_random.nii.gz").path])
            let j = try JSONSerialization.jsonObject(with: Data(check.utf8)) as! [String: Any]
            XCTAssertEqual(j["shape"] as! [Int], [40, 24, 6, 3], ext)
            XCTAssertEqual(j["dtype"] as! String, "float32", ext)
            XCTAssertLessThan(j["maxdiff"] as! Double, 1e-4, "softmax vs PyTorch (\(ext))")
            XCTAssertLessThan(j["sums"] as! Double, 1e-5, ext)
            XCTAssertEqual(j["argmax_differs"] as! Int, 0, ext)
        }
    }

    func testOverlays() throws {
        let overlays = dir.appendingPathComponent("overlays"), out = dir.appendingPathComponent("m.nii.gz").path
        let phantom = try TestSupport.fixture("run/phantom.nii.gz").path
        var r = try RunFixtures.segment([phantom, "-o", out, "--model", band, "--overlay", overlays.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        // auto: the slice with the most foreground (the phantom's slices 1...4 hold the organ; 2 and 3 also the lesion).
        let mask = try RunFixtures.labels(out).values
        let perSlice = (0..<6).map { k in mask[(k * 40 * 24) ..< ((k + 1) * 40 * 24)].filter { $0 != 0 }.count }
        let best = perSlice.firstIndex(of: perSlice.max()!)!
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: overlays.path), [String(format: "phantom_slice%04d.png", best)])
        let picture = try PNGFile(overlays.appendingPathComponent(String(format: "phantom_slice%04d.png", best)).path)
        // The 24 x 40 slice drawn at 512 on its long side (24 * 512 / 40 = 307.2), plus one 24-pixel legend row.
        XCTAssertEqual([picture.width, picture.height, picture.channels], [307, 512 + 24, 3])

        r = try RunFixtures.segment([phantom, "-o", out, "--model", band, "--overlay", overlays.path, "--overlay-slices", "0,5", "--overwrite"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: overlays.appendingPathComponent("phantom_slice0005.png").path))

        // A slice past the end is refused before the case runs: no mask.
        let other = dir.appendingPathComponent("other.nii.gz").path
        r = try RunFixtures.segment([phantom, "-o", other, "--model", band, "--overlay", overlays.path, "--overlay-slices", "6"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: other))
    }

    /// A true 4D volume needs --volume; the chosen volume is segmented and the mask is 3D on the input's grid.
    func testVolumeOfA4DFile() throws {
        let out = dir.appendingPathComponent("m.nii.gz").path
        let r = try RunFixtures.segment([try TestSupport.fixture("run/phantom4d.nii.gz").path, "-o", out, "--model", band, "--volume", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let got = try RunFixtures.labels(out)
        XCTAssertEqual(got.shape, [40, 24, 6])
        XCTAssertEqual(got.values, try RunFixtures.labels(TestSupport.fixture("run/expected_band.nii.gz").path).values)
    }
}

/// A PNG's size and channels, through SegmentImaging.
struct PNGFile {
    let width, height, channels: Int
    init(_ path: String) throws {
        let p = try PNGImage.read(path)
        width = p.width; height = p.height; channels = p.channels
    }
}
