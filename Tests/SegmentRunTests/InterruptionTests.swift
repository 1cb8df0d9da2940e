// A run killed with SIGKILL in the middle of writing an output leaves no temporary file and no partial output:
// every output present is complete (AtomicFile's rename), and the cleanup guard removes the killed run's
// temporary file.
import Foundation
import SegmentImaging
import TestSupport
import XCTest

final class InterruptionTests: XCTestCase {
    func testSIGKILLDuringAWriteLeavesNoTemporaryOrPartialFile() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("band", RunFixtures.ras, in: dir)
        let cases = dir.appendingPathComponent("cases"), masks = dir.appendingPathComponent("masks")
        let probabilities = dir.appendingPathComponent("probabilities")
        try FileManager.default.createDirectory(at: cases, withIntermediateDirectories: true)
        for i in 0..<12 { try RunFixtures.copy("kill.nii.gz", to: cases, as: "case\(i).nii.gz") }

        // The complete outputs of one case, for comparison.
        let refMask = dir.appendingPathComponent("ref.nii.gz").path, refProb = dir.appendingPathComponent("ref_p.nii.gz").path
        let r = try RunFixtures.segment([cases.appendingPathComponent("case0.nii.gz").path, "-o", refMask, "--model", model,
                                         "--probabilities", refProb])
        XCTAssertEqual(r.status, 0, r.stderr)
        let wantMask = try RunFixtures.labels(refMask).values
        let wantProb = try (0..<3).map { try NIfTIVolume.read(refProb, volume: $0).floats() }

        // Start the folder run; kill it the moment a temporary file appears (a write in progress: the probabilities
        // are a few MB of gzip, written before each mask).
        let p = Process()
        p.executableURL = TestSupport.segmentExecutable
        p.arguments = [cases.path, "-o", masks.path, "--model", model, "--probabilities", probabilities.path, "--quiet"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        func temporaries() -> [String] {
            [masks, probabilities].flatMap { d in
                ((try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? []).filter { $0.contains(".tmp-") }
            }
        }
        var caught: [String] = []
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline {
            caught = temporaries()
            if !caught.isEmpty { kill(p.processIdentifier, SIGKILL); break }
            usleep(500)
        }
        p.waitUntilExit()
        XCTAssertFalse(caught.isEmpty, "the run ended before a write in progress was seen: nothing was tested")
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)

        // The guard removes the killed run's temporary files (it reacts within milliseconds; allow 10 s on a busy machine).
        let cleanDeadline = Date().addingTimeInterval(10)
        while !temporaries().isEmpty && Date() < cleanDeadline { usleep(10_000) }
        XCTAssertEqual(temporaries(), [], "temporary files left after the kill (seen at the kill: \(caught))")

        // Whatever outputs exist are complete and right.
        let doneMasks = try FileManager.default.contentsOfDirectory(atPath: masks.path).filter { !$0.hasPrefix(".") }
        let doneProbs = try FileManager.default.contentsOfDirectory(atPath: probabilities.path).filter { !$0.hasPrefix(".") }
        XCTAssertLessThan(doneMasks.count, 12, "the run was interrupted")
        for m in doneMasks { XCTAssertEqual(try RunFixtures.labels(masks.appendingPathComponent(m).path).values, wantMask, m) }
        for f in doneProbs {
            for c in 0..<3 {
                XCTAssertEqual(try NIfTIVolume.read(probabilities.appendingPathComponent(f).path, volume: c).floats(), wantProb[c], f)
            }
        }
        // A mask is written after its probabilities: no mask without them.
        XCTAssertTrue(Set(doneMasks).isSubset(of: Set(doneProbs)))

        // --continue finishes the job.
        let again = try RunFixtures.segment([cases.path, "-o", masks.path, "--model", model, "--probabilities", probabilities.path, "--continue"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: masks.path).count, 12)
    }

    /// The guard does not outlive a normal run, and a normal run leaves no temporary file.
    func testNormalRunLeavesNothingBehind() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let model = try RunFixtures.model("band", RunFixtures.ras, in: dir)
        let out = dir.appendingPathComponent("out")
        let r = try RunFixtures.segment([try TestSupport.fixture("run/phantom.nii.gz").path, "-o", out.appendingPathComponent("m.nii.gz").path,
                                         "--model", model, "--report", out.appendingPathComponent("run.json").path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).sorted(), ["m.nii.gz", "run.json"])
        let guards = try TestSupport.run("/usr/bin/pgrep", ["-f", "internal-cleanup-guard.*\(dir.lastPathComponent)"])
        XCTAssertEqual(guards.stdout, "", "a cleanup guard is still running")
    }
}
