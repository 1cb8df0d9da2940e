// `segment convert` end to end through the executable: the happy path with every metadata flag, the exit codes,
// and hostile checkpoints whose payload is proven live (CPython's pickle runs it) yet never runs here.
import Foundation
import SegmentFormat
import TestSupport
import XCTest

final class ConvertCommandTests: XCTestCase {
    var segment: String { TestSupport.segmentExecutable.path }

    func fixture(_ name: String) throws -> String { try TestSupport.fixture("convert/" + name).path }

    func files(in folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    }

    func testConvertWritesTheModelWithEveryMetadataFlag() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let out = dir.appendingPathComponent("liver.segm").path
        let input = try fixture("small/advmim.pth")
        let before = try Data(contentsOf: URL(fileURLWithPath: input))
        let r = try TestSupport.run(segment, [
            "convert", input, "-o", out, "--dtype", "f16", "--classes", "background,liver,tumour,vessel",
            "--img-size", "64", "--depths", "2,2,4,2", "--heads", "1,2,4,8", "--window", "4", "--embed-dim", "8",
            "--num-classes", "4", "--in-chans", "1",
            "--channels", "gray", "--intensity", "window", "--window-range", "-160,240.5", "--slice-axis", "0",
            "--row-axis", "2", "--col-axis", "1", "--orientation", "lps", "--image-order", "3", "--label-order", "0",
            "--provenance", "data=LiTS train", "--provenance", "seed=1337", "--provenance", "note=a=b",
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "")
        let dropped = try XCTUnwrap(try ConvertManifest.load().checkpoints.first { $0.file == "small/advmim.pth" }).dropped
        XCTAssertTrue(r.stderr.contains("dropped \(dropped) training-only tensors"), r.stderr)
        let model = try ModelFile.open(out)
        let m = model.metadata
        XCTAssertEqual(m.classNames, ["background", "liver", "tumour", "vessel"])
        XCTAssertEqual(m.config.depths, [2, 2, 4, 2])
        XCTAssertTrue(model.tensors.allSatisfy { $0.dtype == .f16 })
        var p = Preprocessing()
        p.channels = .gray; p.intensity = .window; p.windowLo = -160; p.windowHi = 240.5
        p.sliceAxis = 0; p.rowAxis = 2; p.colAxis = 1; p.orientation = "LPS"; p.imageOrder = .cubic; p.labelOrder = .nearest
        XCTAssertEqual(m.preprocessing, p)
        XCTAssertEqual(m.provenance, ["data": "LiTS train", "seed": "1337", "note": "a=b"])
        XCTAssertTrue(m.converterVersion.hasPrefix("segment "), m.converterVersion)
        XCTAssertEqual(m.sourceSHA256.count, 64)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: input)), before, "the checkpoint was modified")
        XCTAssertEqual(try files(in: dir), ["liver.segm"], "a temporary file was left behind")
    }

    func testDefaultsAreAdvMIMs() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let out = dir.appendingPathComponent("m.segm").path
        let r = try TestSupport.run(segment, ["convert", try fixture("small/zip.pth"), "-o", out, "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "", "--quiet prints nothing on success")
        let m = try ModelFile.open(out).metadata
        XCTAssertEqual(m.preprocessing, Preprocessing())
        let q = m.preprocessing
        XCTAssertTrue((q.channels, q.sliceAxis, q.rowAxis, q.colAxis, q.imageOrder) == (.gray, 2, 0, 1, .nearest), "\(q)")
        XCTAssertEqual(m.classNames, ["background", "class1", "class2", "class3"])
        XCTAssertEqual(m.provenance, [:])
    }

    func testExitCodes() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let out = dir.appendingPathComponent("m.segm").path
        let zip = try fixture("small/zip.pth")
        let cases: [(args: [String], status: Int32, message: String)] = [
            (["convert", zip], 2, "--output"),                                                      // no output
            (["convert", zip, "-o", out, "--dtype", "f8"], 2, "--dtype"),
            (["convert", zip, "-o", out, "--depths", "2,x"], 2, "--depths"),
            (["convert", zip, "-o", out, "--classes", "a,,b,c"], 2, "--classes"),
            (["convert", zip, "-o", out, "--classes", "a,b"], 2, "gives 2 names but"),
            (["convert", zip, "-o", out, "--intensity", "window"], 2, "--window-range"),
            (["convert", zip, "-o", out, "--window-range", "0,1"], 2, "only with --intensity window"),
            (["convert", zip, "-o", out, "--slice-axis", "1"], 2, "--slice-axis"),
            (["convert", zip, "-o", out, "--orientation", "LPX"], 2, "--orientation"),
            (["convert", zip, "-o", out, "--provenance", "seed"], 2, "KEY=VALUE"),
            (["convert", zip, "-o", out, "--channels", "rgb"], 2, "--channels rgb"),
            (["convert", zip, "-o", out, "--embed-dim", "96"], 2, "--embed-dim 96 contradicts"),
            (["convert", try fixture("tiny/no-buffers.safetensors"), "-o", out], 2, "Pass --img-size"),
            (["convert", try fixture("broken/notes.pth"), "-o", out], 3, "not a PyTorch checkpoint"),
            (["convert", try fixture("broken/truncated_zip.pth"), "-o", out], 3, "truncated"),
            (["convert", dir.appendingPathComponent("absent.pth").path, "-o", out], 3, "cannot read checkpoint"),
            (["convert", zip, "-o", dir.appendingPathComponent("no/such/folder/m.segm").path], 5, "does not exist"),
            (["convert", zip, "-o", zip, "--overwrite"], 2, "is the checkpoint itself"),
        ]
        for c in cases {
            let r = try TestSupport.run(segment, c.args)
            XCTAssertEqual(r.status, c.status, "\(c.args.dropFirst(3)): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(c.message), "\(c.args.dropFirst(3)): expected \"\(c.message)\" in: \(r.stderr)")
        }
        XCTAssertEqual(try files(in: dir), [], "a failed conversion left a file behind")

        // An existing output is replaced only with --overwrite.
        XCTAssertEqual(try TestSupport.run(segment, ["convert", zip, "-o", out, "--quiet"]).status, 0)
        let again = try TestSupport.run(segment, ["convert", zip, "-o", out])
        XCTAssertEqual(again.status, 5)
        XCTAssertTrue(again.stderr.contains("--overwrite"), again.stderr)
        XCTAssertEqual(try TestSupport.run(segment, ["convert", zip, "-o", out, "--overwrite", "--quiet"]).status, 0)
        XCTAssertEqual(try files(in: dir), ["m.segm"])
    }

    func testNaNWeightsAreAnInvalidCheckpointNamingTheTensor() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let input = dir.appendingPathComponent("diverged.safetensors").path
        try Data(try editedSafetensors("small/state_dict.safetensors") { h, d in
            try setFloat(h, &d, "swin_unet.layers.2.blocks.3.mlp.fc2.bias", 0, .nan)
        }).write(to: URL(fileURLWithPath: input))
        let r = try TestSupport.run(segment, ["convert", input, "-o", dir.appendingPathComponent("m.segm").path])
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("checkpoint \(input): tensor swin_unet.layers.2.blocks.3.mlp.fc2.bias holds NaN at [0]"), r.stderr)
        XCTAssertFalse(r.stderr.contains("cannot write"), r.stderr)
        XCTAssertEqual(try files(in: dir), ["diverged.safetensors"], "a failed conversion left a file behind")
    }

    /// Unpickles the hostile file with CPython in `cwd`, as torch.load(weights_only=False) would.
    func unpickleWithPython(_ path: String, legacy: Bool, cwd: URL) throws {
        let code = legacy
            ? "import pickle, sys\nf = open(sys.argv[1], 'rb')\nfor _ in range(4): pickle.load(f)"
            : "import pickle, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\npickle.loads(z.read('archive/data.pkl'))"
        _ = try TestSupport.run(TestSupport.python, ["-c", code, path], cwd: cwd)
    }

    func testHostilePayloadsAreLiveButNeverRun() throws {
        let manifest = try ConvertManifest.load()
        for name in ["os_system.pth", "builtins_eval.pth", "builtins_eval_legacy.pth", "posix_system.pth"] {
            let path = try fixture("hostile/" + name)
            // The payload works: CPython's unpickler runs it and the marker appears.
            let live = try TestSupport.temporaryDirectory(self)
            try unpickleWithPython(path, legacy: name.contains("legacy"), cwd: live)
            XCTAssertTrue(FileManager.default.fileExists(atPath: live.appendingPathComponent(manifest.marker).path),
                          "\(name): the payload did not run under CPython, so this test proves nothing")
            // segment refuses it, naming the global, and runs nothing.
            let here = try TestSupport.temporaryDirectory(self)
            let r = try TestSupport.run(segment, ["convert", path, "-o", here.appendingPathComponent("m.segm").path], cwd: here)
            XCTAssertEqual(r.status, 3, "\(name): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("refusing it"), "\(name): \(r.stderr)")
            XCTAssertEqual(try files(in: here), [], "\(name): something was written")
        }
    }
}
