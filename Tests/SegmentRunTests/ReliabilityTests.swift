// What a run does when something outside it fails (docs/RELIABILITY.md): a worker process killed in the middle of a
// case, outputs that are devices, symbolic links or very long names, a full disk and a read-only folder.
import Foundation
import SegmentImaging
import SegmentRun
import TestSupport
import XCTest

final class ReliabilityTests: XCTestCase {
    var dir: URL!
    var band: String!

    override func setUpWithError() throws {
        dir = try TestSupport.temporaryDirectory(self)
        band = try RunFixtures.model("band", RunFixtures.ras, in: dir)
    }

    func report(_ path: String) throws -> RunReport { try RunReport.decode(Data(contentsOf: URL(fileURLWithPath: path))) }

    /// Writes `count` random int16 volumes of `shape` into `folder` as NAME.nii.gz (with nibabel).
    func randomVolumes(_ names: [String], shape: [Int], in folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try TestSupport.python("""
            import sys, numpy as np, nibabel as nib
            rng = np.random.default_rng(7)
            shape = tuple(int(s) for s in sys.argv[2].split(','))
            for name in sys.argv[3:]:
                data = rng.integers(-200, 300, size=shape).astype(np.int16)
                nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 2.0, 1.0])), f'{sys.argv[1]}/{name}.nii.gz')
            """, [folder.path, shape.map(String.init).joined(separator: ","), ] + names)
    }

    // MARK: crash isolation

    /// The worker process is killed (as the out-of-memory killer does) while it segments the second case: that case
    /// fails with the signal named, the others are done, the run ends with exit 6 and a complete report, nothing
    /// half-written is left; `--continue` then does the failed case.
    func testAWorkerKilledMidCaseFailsOnlyThatCase() throws {
        let cases = dir.appendingPathComponent("cases"), masks = dir.appendingPathComponent("masks")
        try randomVolumes(["b", "c"], shape: [192, 192, 400], in: cases)
        try RunFixtures.copy("phantom.nii.gz", to: cases, as: "a.nii.gz")
        let reportPath = dir.appendingPathComponent("run.json").path

        let p = Process()
        p.executableURL = TestSupport.segmentExecutable
        p.arguments = [cases.path, "-o", masks.path, "--model", band, "--report", reportPath, "--threads", "1"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        let lock = NSLock()
        var stderr = ""
        err.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            lock.lock(); stderr += String(decoding: d, as: UTF8.self); lock.unlock()
        }
        try p.run()
        func seen(_ s: String) -> Bool { lock.lock(); defer { lock.unlock() }; return stderr.contains(s) }

        // When case a is done, the worker holds case b: kill it.
        let deadline = Date().addingTimeInterval(120)
        while !seen("case=a status=ok") && p.isRunning && Date() < deadline { usleep(1000) }
        let workers = childProcesses(of: p.processIdentifier).filter { commandLine($0).contains("--internal-worker") }
        XCTAssertEqual(workers.count, 1, "one worker process")
        for w in workers { kill(w, SIGKILL) }
        p.waitUntilExit()
        err.fileHandleForReading.readabilityHandler = nil

        XCTAssertEqual(p.terminationStatus, 6, stderr)
        let r = try report(reportPath)
        XCTAssertEqual(r.cases.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(r.cases.map(\.status), [.ok, .failed, .ok])
        XCTAssertTrue(r.cases[1].error?.contains("killed by SIGKILL (signal 9)") ?? false, r.cases[1].error ?? "")
        XCTAssertEqual(r.cases[1].exitCode, 1)
        XCTAssertEqual(r.summary.failed, 1)
        XCTAssertTrue(seen("segment: done cases=3 ok=2 skipped=0 failed=1"), stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: masks.path).sorted(), ["a.nii.gz", "c.nii.gz"],
                       "no mask and no temporary file of the killed case")

        let again = try RunFixtures.segment([cases.path, "-o", masks.path, "--model", band, "--continue"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(RunFixtures.statusLines(again.stderr).map { $0["status"]! }, ["skipped", "ok", "skipped"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: masks.path).sorted(), ["a.nii.gz", "b.nii.gz", "c.nii.gz"])
    }

    func childProcesses(of pid: pid_t) -> [pid_t] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { t -> [pid_t] in
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(t)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    func commandLine(_ pid: pid_t) -> String {
        let data = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
    }

    // MARK: limits

    /// The limits leave real images alone: a 4096 x 4096 picture is segmented under the default budget, and the
    /// budget refuses it (exit 3, with the numbers, nothing written) when set below what it needs.
    func testLargePictureWorksAndTheBudgetRefusesIt() throws {
        let picture = dir.appendingPathComponent("big.png").path
        try TestSupport.python("""
            import sys, numpy as np
            from PIL import Image
            y, x = np.mgrid[0:4096, 0:4096]
            Image.fromarray(((x ^ y) & 255).astype(np.uint8)).save(sys.argv[1])
            """, [picture])
        let mask = dir.appendingPathComponent("mask.png").path
        let r = try RunFixtures.segment([picture, "-o", mask, "--model", band, "--png-values", "label"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try RunFixtures.pngValues(mask).width, 4096)
        let small = dir.appendingPathComponent("small.png").path
        let s = try RunFixtures.segment([picture, "-o", small, "--model", band, "--memory-limit", "64M"])
        XCTAssertEqual(s.status, 3, s.stderr)
        XCTAssertTrue(s.stderr.contains("more than the memory budget of 64.0 MiB"), s.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: small))
        for bad in [["--threads", "5000"], ["--threads", "0"], ["--batch", "1000000"], ["--memory-limit", "8GB"]] {
            let u = try RunFixtures.segment([picture, "-o", small, "--model", band] + bad)
            XCTAssertEqual(u.status, 2, "\(bad): \(u.stderr)")
            XCTAssertTrue(u.stderr.contains(bad[0]), u.stderr)
        }
    }

    // MARK: outputs

    /// A report sent to /dev/null or /dev/stdout is written into the device, which stays a device (a rename over it
    /// would, as root, replace /dev/null with a regular file).
    func testDeviceOutputsAreWrittenInPlace() throws {
        let input = try TestSupport.fixture("run/phantom.nii.gz").path
        let mask = dir.appendingPathComponent("m.nii.gz").path
        let r = try RunFixtures.segment([input, "-o", mask, "--model", band, "--report", "/dev/null"])
        XCTAssertEqual(r.status, 0, r.stderr)
        var st = stat()
        XCTAssertEqual(stat("/dev/null", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFCHR, "/dev/null is still a character device")

        let s = try RunFixtures.segment([input, "-o", mask, "--model", band, "--report", "/dev/stdout", "--overwrite"])
        XCTAssertEqual(s.status, 0, s.stderr)
        let report = try RunReport.decode(Data(s.stdout.utf8))
        XCTAssertEqual(report.cases.map(\.status), [.ok])
    }

    /// An output name of 249 bytes (its temporary name must stay below 255), a symbolic link (followed: the file it
    /// names is replaced, the link stays) and a link to nothing (refused, exit 5).
    func testLongNamesAndLinksAsOutputs() throws {
        let input = try TestSupport.fixture("run/phantom.nii.gz").path
        let long = dir.appendingPathComponent(String(repeating: "é", count: 121) + ".nii.gz").path   // 242 + 7 bytes
        XCTAssertEqual(URL(fileURLWithPath: long).lastPathComponent.utf8.count, 249)
        let r = try RunFixtures.segment([input, "-o", long, "--model", band])
        XCTAssertEqual(r.status, 0, r.stderr)
        let expected = try RunFixtures.labels(TestSupport.fixture("run/expected_band.nii.gz").path).values
        XCTAssertEqual(try RunFixtures.labels(long).values, expected)

        let elsewhere = dir.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        let target = elsewhere.appendingPathComponent("target.nii.gz").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: target))
        let link = dir.appendingPathComponent("link.nii.gz").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let l = try RunFixtures.segment([input, "-o", link, "--model", band, "--overwrite"])
        XCTAssertEqual(l.status, 0, l.stderr)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), target, "the link stays a link")
        XCTAssertEqual(try RunFixtures.labels(target).values, expected)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path), ["target.nii.gz"])

        let dangling = dir.appendingPathComponent("dangling.nii.gz").path
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: dir.appendingPathComponent("nothing/x.nii.gz").path)
        let d = try RunFixtures.segment([input, "-o", dangling, "--model", band, "--overwrite"])
        XCTAssertEqual(d.status, 5, d.stderr)
        XCTAssertTrue(d.stderr.contains("symbolic link to a missing file"), d.stderr)

    }

    // MARK: faults

    /// Each output kind (mask, probabilities, overlays, report) in turn goes to a full file system, then to a
    /// read-only one: the run ends with exit 5 and the system's own words (errno), and leaves nothing in that folder.
    /// Needs root for mount(8) (CI runs as root); skipped otherwise, saying so.
    func testFullDiskAndReadOnlyFolderLeaveNothingHalfWritten() throws {
        guard getuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root (CI runs as root)") }
        let input = dir.appendingPathComponent("in")
        try randomVolumes(["v"], shape: [96, 96, 40], in: input)
        let volume = input.appendingPathComponent("v.nii.gz").path
        for (options, words) in [("size=16k", "No space left on device"), ("ro,size=1m", "Read-only file system")] {
            for kind in ["mask", "probabilities", "overlay", "report"] {
                let fs = dir.appendingPathComponent("fs-\(kind)-\(options.hasPrefix("ro") ? "ro" : "full")")
                try FileManager.default.createDirectory(at: fs, withIntermediateDirectories: true)
                let m = try TestSupport.run("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", fs.path])
                guard m.status == 0 else { throw XCTSkip("mount -t tmpfs failed here: \(m.stderr)") }
                defer { _ = try? TestSupport.run("/bin/umount", [fs.path]) }
                // The full file system gets a filler that takes every free block.
                var expected: [String] = []
                if !options.hasPrefix("ro") {
                    let filler = fopen(fs.appendingPathComponent("filler").path, "wb")
                    let block = [UInt8](repeating: 1, count: 1024)
                    while fwrite(block, 1, block.count, filler) == block.count && fflush(filler) == 0 {}
                    fclose(filler)
                    expected = ["filler"]
                }
                let target = fs
                let ok = dir.appendingPathComponent("ok-\(kind)-\(options.count)")
                func place(_ k: String, _ name: String) -> String { (k == kind ? target : ok).appendingPathComponent(name).path }
                try FileManager.default.createDirectory(at: ok, withIntermediateDirectories: true)
                let args: [String] = [volume, "-o", place("mask", "m.nii"), "--model", band!,
                            "--probabilities", place("probabilities", "p.nii"), "--overlay", kind == "overlay" ? target.path : ok.path,
                            "--report", place("report", "run.json")]
                let r = try RunFixtures.segment(args)
                XCTAssertEqual(r.status, 5, "\(kind) on \(options): \(r.stderr)")
                XCTAssertTrue(r.stderr.contains(words), "\(kind) on \(options): \(r.stderr)")
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target.path), expected, "\(kind) on \(options): nothing left")
            }
        }
    }
}
