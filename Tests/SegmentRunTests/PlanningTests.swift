// In-process tests of the pieces without a network: case planning, shards, status lines, intensity transforms,
// the default model lookup.
import Foundation
import SegmentCases
import SegmentFormat
@testable import SegmentRun
import TestSupport
import XCTest

final class PlanningTests: XCTestCase {
    func touch(_ url: URL) throws { try Data().write(to: url) }

    func testFolderDiscoveryNamingAndOrder() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let cases = dir.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: cases.appendingPathComponent("sub.nii.gz"), withIntermediateDirectories: true)
        for n in ["b.nii.gz", "B.NII", "a.png", "Z.Png", ".hidden.nii.gz", "notes.txt", "c.nii.gz.bak", "é.nii"] {
            try touch(cases.appendingPathComponent(n))
        }
        var r = PlanRequest(input: cases.path, output: dir.appendingPathComponent("out").path)
        r.probabilities = dir.appendingPathComponent("p").path
        var plan = try CasePlanner.plan(r)
        // Sorted by the bytes of the names (Python's sorted()); subfolders, hidden and other files ignored.
        XCTAssertEqual(plan.cases.map(\.name), ["B", "Z", "a", "b", "é"])
        XCTAssertEqual(plan.cases.map { ($0.output as NSString).lastPathComponent }, ["B.NII", "Z.Png", "a.png", "b.nii.gz", "é.nii"])
        XCTAssertEqual(plan.cases.map { ($0.probabilities! as NSString).lastPathComponent }, ["B.nii.gz", "Z.npy", "a.npy", "b.nii.gz", "é.nii.gz"])
        XCTAssertEqual(plan.cases.map(\.kind), [.nifti, .png, .png, .nifti, .nifti])
        XCTAssertEqual(plan.discovered, 5)
        XCTAssertTrue(plan.isFolder)
        XCTAssertEqual(plan.outputFolders, [r.output, r.probabilities!])

        r.isicNames = true
        r.probabilities = nil
        plan = try CasePlanner.plan(r)
        XCTAssertEqual(plan.cases.map { ($0.output as NSString).lastPathComponent }, ["B.NII", "Z_segmentation.png", "a_segmentation.png", "b.nii.gz", "é.nii"])
    }

    /// JPEG files are cases beside PNG and NIfTI; their masks are PNGs; `score` folders skip them.
    func testJPEGDiscoveryAndMaskNames() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let cases = dir.appendingPathComponent("in")
        try FileManager.default.createDirectory(at: cases, withIntermediateDirectories: true)
        for n in ["d.JPG", "c.jpeg", "b.png", "a.nii.gz", "e.jpg.txt", ".f.jpg", "g.Jpeg"] { try touch(cases.appendingPathComponent(n)) }
        var r = PlanRequest(input: cases.path, output: dir.appendingPathComponent("out").path)
        r.probabilities = dir.appendingPathComponent("p").path
        var plan = try CasePlanner.plan(r)
        XCTAssertEqual(plan.cases.map(\.name), ["a", "b", "c", "d", "g"])
        XCTAssertEqual(plan.cases.map(\.kind), [.nifti, .png, .jpeg, .jpeg, .jpeg])
        XCTAssertEqual(plan.cases.map { ($0.output as NSString).lastPathComponent }, ["a.nii.gz", "b.png", "c.png", "d.png", "g.png"])
        XCTAssertEqual(plan.cases.map { ($0.probabilities! as NSString).lastPathComponent }, ["a.nii.gz", "b.npy", "c.npy", "d.npy", "g.npy"])
        r.isicNames = true
        r.probabilities = nil
        plan = try CasePlanner.plan(r)
        XCTAssertEqual(plan.cases.map { ($0.output as NSString).lastPathComponent },
                       ["a.nii.gz", "b_segmentation.png", "c_segmentation.png", "d_segmentation.png", "g_segmentation.png"])
        // A single JPEG: -o must be a .png (a JPEG mask would be lossy).
        let jpeg = cases.appendingPathComponent("d.JPG").path
        XCTAssertThrowsError(try CasePlanner.plan(PlanRequest(input: jpeg, output: dir.appendingPathComponent("m.jpg").path))) { e in
            XCTAssertEqual((e as? RunError)?.exitCode, .usage)
        }
        XCTAssertEqual(try CasePlanner.plan(PlanRequest(input: jpeg, output: dir.appendingPathComponent("m.png").path)).cases.count, 1)
        // Masks: JPEGs in a folder are not candidates, so images beside their masks can be scored.
        let masks = try CaseDiscovery.images(in: cases.path, caseName: \.maskCaseName, kinds: ImageKind.labelKinds)
        XCTAssertEqual(masks.map(\.name), ["a", "b"])
    }

    func testSingleFileOutputs() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let input = dir.appendingPathComponent("scan.nii.gz")
        try touch(input)
        // -o an existing folder: the mask is named after the input inside it (and must not be the input).
        let masks = dir.appendingPathComponent("masks")
        try FileManager.default.createDirectory(at: masks, withIntermediateDirectories: true)
        let plan = try CasePlanner.plan(PlanRequest(input: input.path, output: masks.path + "/"))
        XCTAssertEqual(plan.cases.map(\.output), [masks.path + "/scan.nii.gz"])
        XCTAssertThrowsError(try CasePlanner.plan(PlanRequest(input: input.path, output: dir.path))) { e in
            XCTAssertEqual(e as? RunError, .outputIsInput(output: dir.path + "/scan.nii.gz", input: input.path))
        }
        var r = PlanRequest(input: input.path, output: dir.appendingPathComponent("m.nii").path)
        r.probabilities = dir.appendingPathComponent("p.png").path
        XCTAssertEqual((try? CasePlanner.plan(r)).map { _ in 0 }, nil, "probabilities must be .nii/.nii.gz/.npy")
        r.probabilities = dir.appendingPathComponent("p.npy").path
        XCTAssertEqual(try CasePlanner.plan(r).cases[0].probabilities, r.probabilities)
        r.probabilities = r.output
        XCTAssertThrowsError(try CasePlanner.plan(r)) { e in XCTAssertEqual((e as? RunError)?.exitCode, .usage) }
    }

    func testSameCaseNameTwiceIsRefused() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        try touch(dir.appendingPathComponent("a.nii"))
        try touch(dir.appendingPathComponent("a.nii.gz"))
        XCTAssertThrowsError(try CasePlanner.plan(PlanRequest(input: dir.path, output: dir.appendingPathComponent("o").path))) { e in
            XCTAssertEqual(e as? CaseListError, .sameName(name: "a", first: dir.appendingPathComponent("a.nii").path,
                                                          second: dir.appendingPathComponent("a.nii.gz").path))
            XCTAssertEqual((e as? CaseListError)?.exitCode, .usage)
        }
    }

    func testShards() throws {
        XCTAssertEqual(try Shard(parsing: "1/3").select(Array(0..<8)), [1, 4, 7])
        XCTAssertEqual(try Shard(parsing: "0/1").select(Array(0..<3)), [0, 1, 2])
        for n in 1...5 {
            let all = (0..<n).flatMap { i in (try! Shard(index: i, count: n)).select(Array(0..<13)) }
            XCTAssertEqual(all.sorted(), Array(0..<13), "\(n) shards cover every case exactly once")
        }
        for bad in ["3/3", "-1/2", "1/0", "1", "a/b", "1/2/3", ""] {
            XCTAssertThrowsError(try Shard(parsing: bad), bad) { e in XCTAssertEqual((e as? ShardError)?.exitCode, .usage) }
        }
    }

    func testStatusLinesQuoteWhatNeedsIt() {
        var r = CaseRecord(name: "my case", input: "in", output: "/o/my case.nii.gz", status: .failed, timeSeconds: 1.234)
        r.error = "bad \"header\" = broken"
        r.exitCode = 3
        XCTAssertEqual(r.statusLine.text,
                       #"segment: case="my case" status=failed time=1.23s exit=3 error="bad \"header\" = broken""#)
        let ok = CaseRecord(name: "a", input: "in", output: "/o/a.nii.gz", status: .ok, timeSeconds: 0)
        XCTAssertEqual(ok.statusLine.text, "segment: case=a status=ok time=0.00s out=/o/a.nii.gz")
    }

    func testProgressModes() {
        var written = ""
        let p = ProgressReporter(mode: .quiet, totalCases: 2, write: { written += $0 })
        p.caseFinished(CaseRecord(name: "a", input: "", output: "o", status: .ok).statusLine)
        XCTAssertEqual(written, "", "--quiet prints nothing for a good case")
        p.caseFinished(CaseRecord(name: "b", input: "", output: "o", status: .failed).statusLine)
        XCTAssertTrue(written.hasPrefix("segment: case=b status=failed"))
        XCTAssertEqual(ProgressReporter.mode(quiet: false, isTerminal: true), .bar)
        XCTAssertEqual(ProgressReporter.mode(quiet: false, isTerminal: false), .lines)
        XCTAssertEqual(ProgressReporter.mode(quiet: true, isTerminal: true), .quiet)
    }

    /// The bar: cases done, slices/s and ETA from a controlled clock.
    func testProgressBar() {
        var written = "", now = 100.0
        let p = ProgressReporter(mode: .bar, totalCases: 3, write: { written += $0 }, clock: { now })
        p.caseStarted("a", slices: 10)
        now += 1; p.slicesFinished(10)
        var a = CaseRecord(name: "a", input: "", output: "o", status: .ok); a.timeSeconds = 2
        p.caseFinished(a.statusLine)
        p.caseStarted("b", slices: 20)
        now += 1; p.slicesFinished(10)
        let last = written.components(separatedBy: "\r").last!
        // 20 slices in 2 s; b has 10 slices left (1 s) and c is one more case of mean time 2 s.
        XCTAssertTrue(last.contains("1/3 cases | 10.0 slices/s | ETA 0:03 | b"), last)
    }

    func testIntensityTransforms() {
        var s = IntensityStatistics()
        s.add([-100, 0, 300, .nan, 900, .infinity])
        XCTAssertEqual(s.count, 4)
        XCTAssertEqual(s.min, -100); XCTAssertEqual(s.max, 900)
        XCTAssertEqual(s.mean, 275)
        XCTAssertEqual(s.std, (([-100.0, 0, 300, 900].map { ($0 - 275) * ($0 - 275) }.reduce(0, +)) / 4).squareRoot(), accuracy: 1e-9)
        func run(_ kind: String, lo: Double = 0, hi: Double = 0, _ x: [Float]) -> [Float] {
            var p = Preprocessing(); p.intensity = Preprocessing.Intensity(rawValue: kind)!; p.windowLo = lo; p.windowHi = hi
            var v = x
            IntensityTransform(p, statistics: s).apply(&v)
            return v
        }
        XCTAssertEqual(run("none", [-100, 2.5, .nan]), [-100, 2.5, 0])
        XCTAssertEqual(run("minmax", [-100, 400, 900, .nan]), [0, 0.5, 1, 0])
        XCTAssertEqual(run("window", lo: -50, hi: 150, [-100, 0, 50, 150, 1000, -.infinity]), [0, 0.25, 0.5, 1, 1, 0])
        XCTAssertEqual(run("zscore", [275]), [0])
        XCTAssertEqual(run("zscore", [Float(275 + s.std)])[0], 1, accuracy: 1e-6)
        var flat = IntensityStatistics(); flat.add([5, 5])
        var p = Preprocessing(); p.intensity = .minmax
        var v: [Float] = [5, 5]
        IntensityTransform(p, statistics: flat).apply(&v)
        XCTAssertEqual(v, [0, 0], "a constant image maps to 0")
    }

    func testDefaultModelLookup() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let bin = dir.appendingPathComponent("prefix/bin"), share = dir.appendingPathComponent("prefix/share/segment/models")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        XCTAssertThrowsError(try ModelLocator.resolve(explicit: nil, environment: [:], executableDirectories: [bin.path])) { e in
            XCTAssertEqual((e as? RunError)?.exitCode, .invalidModel)
            XCTAssertTrue("\(e)".contains(share.path + "/" + ModelLocator.defaultFileName), "\(e)")
        }
        try FileManager.default.createDirectory(at: share, withIntermediateDirectories: true)
        try touch(share.appendingPathComponent(ModelLocator.defaultFileName))
        XCTAssertEqual(try ModelLocator.resolve(explicit: nil, environment: [:], executableDirectories: [bin.path]),
                       share.path + "/" + ModelLocator.defaultFileName)
        // A source checkout: .build/release/segment -> ../../models.
        let release = dir.appendingPathComponent("repo/.build/release"), models = dir.appendingPathComponent("repo/models")
        try FileManager.default.createDirectory(at: release, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        try touch(models.appendingPathComponent(ModelLocator.defaultFileName))
        XCTAssertEqual(try ModelLocator.resolve(explicit: nil, environment: [:], executableDirectories: [release.path]),
                       models.path + "/" + ModelLocator.defaultFileName)
        // SEGMENT_MODEL first; --model before everything.
        XCTAssertEqual(try ModelLocator.resolve(explicit: nil, environment: ["SEGMENT_MODEL": "/x.segm"], executableDirectories: [release.path]), "/x.segm")
        XCTAssertEqual(try ModelLocator.resolve(explicit: "m.segm", environment: ["SEGMENT_MODEL": "/x.segm"], executableDirectories: []), "m.segm")
    }

    func testInstalledExecutableLooksOnlyInItsPrefix() throws {
        // PREFIX/bin/../../models is a folder beside PREFIX: an installed executable ignores a model there.
        let dir = try TestSupport.temporaryDirectory(self)
        let bin = dir.appendingPathComponent("usr/local/bin"), share = dir.appendingPathComponent("usr/local/share/segment/models")
        let stray = dir.appendingPathComponent("usr/models")
        for d in [bin, share, stray] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        try touch(stray.appendingPathComponent(ModelLocator.defaultFileName))
        let candidates = ModelLocator.candidates(environment: [:], executableDirectories: [bin.path])
        XCTAssertEqual(candidates, [share.path + "/" + ModelLocator.defaultFileName])
        XCTAssertThrowsError(try ModelLocator.resolve(explicit: nil, environment: [:], executableDirectories: [bin.path]))
        try touch(share.appendingPathComponent(ModelLocator.defaultFileName))
        XCTAssertEqual(try ModelLocator.resolve(explicit: nil, environment: [:], executableDirectories: [bin.path]),
                       share.path + "/" + ModelLocator.defaultFileName)
        // A build folder named by --scratch-path (.build-static/release) is a checkout's build too.
        let scratch = dir.appendingPathComponent("repo/.build-static/release")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        XCTAssertEqual(ModelLocator.candidates(environment: [:], executableDirectories: [scratch.path]).first,
                       dir.appendingPathComponent("repo/models").path + "/" + ModelLocator.defaultFileName)
    }

    func testOverlaySlicesParsing() throws {
        XCTAssertEqual(try OverlaySlices(parsing: "auto"), .auto)
        XCTAssertEqual(try OverlaySlices(parsing: "all"), .all)
        XCTAssertEqual(try OverlaySlices(parsing: "3, 10,7"), .list([3, 10, 7]))
        for bad in ["", "x", "1,,2", "-1"] { XCTAssertThrowsError(try OverlaySlices(parsing: bad), bad) }
    }
}
