// Checkpoints of the PyTorch model (segment_torch) in every layout, converted and compared tensor by tensor with
// segment_torch.engine_tensors(): exactly for f32 (the converter must do the same float32 operations), exactly to the
// numpy/torch rounding for f16/bf16 storage. Broken files must each fail with their own error.
import Foundation
@testable import SegmentConvert
import SegmentCore
import SegmentFormat
import TestSupport
import XCTest

final class ConverterTests: XCTestCase {
    /// Converts `file` (relative to the fixtures) with `flags`, and returns the model file read back.
    func convert(_ file: String, flags: ConfigFlags = ConfigFlags(), dtype: DType = .f32) throws -> (ModelFile, ConvertReport) {
        let out = try TestSupport.temporaryDirectory(self).appendingPathComponent("model.segm").path
        var options = ConvertOptions()
        options.config = flags
        options.dtype = dtype
        options.converterVersion = "test"
        let report = try Converter.convert(checkpoint: try TestSupport.fixture("convert/" + file).path, to: out, options: options)
        return (try ModelFile.open(out), report)
    }

    /// Every tensor of the model file equals the reference bit for bit (and the file holds nothing else).
    func assertTensors(_ model: ModelFile, equal reference: ReferenceTensors, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(Set(model.tensors.map(\.name)), Set(reference.tensors.map(\.name)), "\(label): tensor names", file: file, line: line)
        for (name, shape, expected) in reference.tensors {
            XCTAssertEqual(model.tensor(name)?.shape, shape, "\(label): shape of \(name)", file: file, line: line)
            let got = try model.floats(name)
            let differing = zip(got, expected).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
            if let first = differing.first {
                XCTFail("\(label): \(name) differs at \(differing.count) of \(expected.count) values, first at \(first.offset): \(first.element.0) vs reference \(first.element.1)", file: file, line: line)
            }
        }
    }

    func flags(_ args: [String]) -> ConfigFlags {
        var f = ConfigFlags()
        for pair in stride(from: 0, to: args.count, by: 2) where args[pair] == "--img-size" { f.imgSize = Int(args[pair + 1]) }
        return f
    }

    func testSmallConfigurationInEveryLayoutEqualsTheReference() throws {
        let manifest = try ConvertManifest.load()
        let small = manifest.checkpoints.filter { !$0.file.hasPrefix("swint/") }
        XCTAssertGreaterThanOrEqual(small.count, 15, "the generator writes 15 small checkpoints")
        for c in small {
            let (model, report) = try convert(c.file, flags: flags(c.flags))
            try assertTensors(model, equal: try ReferenceTensors(c.reference), c.file)
            XCTAssertEqual(model.metadata.config, c.config, c.file)
            XCTAssertEqual(model.metadata.sourceSHA256, c.sha256, "\(c.file): sha256 as hashlib computes it")
            XCTAssertEqual(report.dropped.count, c.dropped, "\(c.file): training-only tensors dropped")
            XCTAssertEqual(report.nesting, c.nesting, c.file)
            XCTAssertEqual(model.metadata.classNames, ["background"] + (1..<c.config.numClasses).map { "class\($0)" }, c.file)
            XCTAssertEqual(model.metadata.converterVersion, "test")
        }
    }

    func testHalfAndBFloatStorageEqualTheReferenceRounding() throws {
        for dtype in [DType.f16, .bf16] {
            let (model, _) = try convert("small/zip.pth", dtype: dtype)
            XCTAssertTrue(model.tensors.allSatisfy { $0.dtype == dtype })
            try assertTensors(model, equal: try ReferenceTensors("small/engine-\(dtype.rawValue)"), "small/zip.pth as \(dtype)")
        }
    }

    func testSwinTinyAdvMIMCheckpointEqualsTheReference() throws {
        let manifest = try ConvertManifest.load()
        let c = try XCTUnwrap(manifest.checkpoints.first { $0.file == "swint/advmim.pth" })
        let (model, report) = try convert(c.file)
        XCTAssertEqual(model.metadata.config, SwinUNetConfig(numClasses: 9))
        XCTAssertEqual(report.parameterCount, model.tensors.reduce(0) { $0 + $1.count })
        XCTAssertEqual(report.dropped.count, c.dropped)
        XCTAssertEqual(model.metadata.sourceSHA256, c.sha256)
        try assertTensors(model, equal: try ReferenceTensors(c.reference), c.file)
    }

    func testBrokenAndHostileFilesFailEachWithItsOwnError() throws {
        let manifest = try ConvertManifest.load()
        XCTAssertGreaterThanOrEqual(manifest.failures.count, 25)
        for f in manifest.failures {
            let path = try TestSupport.fixture("convert/" + f.file).path
            XCTAssertThrowsError(try Converter.prepare(try Checkpoint.open(path), flags: ConfigFlags()), f.file) { error in
                XCTAssertEqual(caseName(error), f.error, "\(f.file): \(error)")
                XCTAssertEqual((error as? SegmentError)?.exitCode.rawValue, f.exit, f.file)
                if !f.detail.isEmpty { XCTAssertTrue("\(error)".contains(f.detail), "\(f.file): message lacks \"\(f.detail)\": \(error)") }
                XCTAssertTrue("\(error)".contains(path), "\(f.file): message does not name the file: \(error)")
            }
        }
    }

    func testConfigurationFlagsAreCheckedAgainstTheCheckpoint() throws {
        let path = try TestSupport.fixture("convert/small/zip.pth").path
        let checkpoint = try Checkpoint.open(path)
        // Flags equal to the checkpoint's values are accepted.
        let all = ConfigFlags(imgSize: 64, embedDim: 8, depths: [2, 2, 4, 2], numHeads: [1, 2, 4, 8], windowSize: 4, numClasses: 4, inChans: 1)
        XCTAssertEqual(try Converter.prepare(checkpoint, flags: all).config,
                       SwinUNetConfig(imgSize: 64, patchSize: 4, inChans: 1, numClasses: 4, embedDim: 8, depths: [2, 2, 4, 2],
                                      numHeads: [1, 2, 4, 8], windowSize: 4, mlpRatio: 2.0))
        // Each contradicting flag is named, with the checkpoint's value.
        let cases: [(ConfigFlags, String, String)] = [
            (ConfigFlags(imgSize: 128), "--img-size", "img_size 64"),
            (ConfigFlags(embedDim: 16), "--embed-dim", "embed_dim 8"),
            (ConfigFlags(depths: [2, 2, 2, 2]), "--depths", "depths 2,2,4,2"),
            (ConfigFlags(numHeads: [3, 6, 12, 24]), "--heads", "heads 1,2,4,8"),
            (ConfigFlags(windowSize: 7), "--window", "window 4 in stage 0"),
            (ConfigFlags(numClasses: 9), "--num-classes", "num_classes 4"),
            (ConfigFlags(inChans: 3), "--in-chans", "in_chans 1"),
        ]
        for (flags, flag, found) in cases {
            XCTAssertThrowsError(try Converter.prepare(checkpoint, flags: flags), flag) { error in
                guard case let .configMismatch(_, f, _, value, _)? = error as? ConvertError else { return XCTFail("\(flag): \(error)") }
                XCTAssertEqual(f, flag)
                XCTAssertTrue(value.contains(found), "\(flag): \(value)")
                XCTAssertEqual((error as? ConvertError)?.exitCode, .usage)
            }
        }
    }

    func testImgSizeIsRequiredOnlyWhenTheCheckpointCannotTellIt() throws {
        // Two stages with window 4 and no buffers: nothing in the file tells img_size.
        let tiny = try Checkpoint.open(try TestSupport.fixture("convert/tiny/no-buffers.safetensors").path)
        XCTAssertThrowsError(try Converter.prepare(tiny, flags: ConfigFlags())) { error in
            guard case let .needsFlag(_, flag, _)? = error as? ConvertError else { return XCTFail("\(error)") }
            XCTAssertTrue(flag.hasPrefix("--img-size"))
            XCTAssertEqual((error as? ConvertError)?.exitCode, .usage)
        }
        XCTAssertEqual(try Converter.prepare(tiny, flags: ConfigFlags(imgSize: 32)).config.imgSize, 32)
        // img_size 16 would run stage 1 as one 2x2 window, but its bias table was trained for window 4.
        XCTAssertThrowsError(try Converter.prepare(tiny, flags: ConfigFlags(imgSize: 16))) { error in
            guard case let .configMismatch(_, flag, _, value, _)? = error as? ConvertError else { return XCTFail("\(error)") }
            XCTAssertEqual(flag, "--img-size")
            XCTAssertTrue(value.contains("window 4 in stage 1"), value)
        }
        // Without buffers the small model still tells its size: its last stage is one 2x2 window (64 = 2 * 8 * 4).
        let small = try Checkpoint.open(try TestSupport.fixture("convert/small/no-buffers.safetensors").path)
        XCTAssertEqual(try Converter.prepare(small, flags: ConfigFlags()).config.imgSize, 64)
        XCTAssertThrowsError(try Converter.prepare(small, flags: ConfigFlags(imgSize: 128))) { error in
            guard case let .configMismatch(_, _, _, value, evidence)? = error as? ConvertError else { return XCTFail("\(error)") }
            XCTAssertEqual(value, "img_size 64")
            XCTAssertTrue(evidence.contains("layers.3.blocks.0.attn.relative_position_bias_table"), evidence)
        }
    }

    func testGeometryBuffersEqualTheReferenceDefinitions() throws {
        // (resolution, window, shift): Swin-T's shifted stages, a small stage and an odd window.
        let cases = [(56, 7, 3), (28, 7, 3), (14, 7, 3), (16, 4, 2), (8, 4, 2), (15, 5, 2)]
        let code = """
        import json, sys
        from segment_torch import relative_position_index, shifted_window_mask
        cases = json.loads(sys.argv[1])
        print(json.dumps([[relative_position_index(ws).flatten().tolist(), shifted_window_mask(r, ws, s).flatten().tolist()] for r, ws, s in cases]))
        """
        let arg = "[" + cases.map { "[\($0.0),\($0.1),\($0.2)]" }.joined(separator: ",") + "]"
        let out = try TestSupport.python(code, [arg])
        let reference = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[[Double]]])
        XCTAssertEqual(reference.count, cases.count)
        for ((res, ws, shift), ref) in zip(cases, reference) {
            XCTAssertEqual(SwinBuffers.relativePositionIndex(window: ws).map(Double.init), ref[0], "index, window \(ws)")
            XCTAssertEqual(SwinBuffers.attentionMask(resolution: res, window: ws, shift: shift).map(Double.init), ref[1], "mask \(res)/\(ws)/\(shift)")
        }
    }

    func testDenseBiasAndQScaleFollowTheirDefinitions() {
        // table (T = 9, heads 2) for window 2: bias[h, i, j] = table[index[i, j], h].
        let table = (0..<18).map { Float($0) }
        let index = SwinBuffers.relativePositionIndex(window: 2)
        XCTAssertEqual(index, [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4])
        let bias = SwinBuffers.denseBias(table: table, heads: 2, index: index)
        XCTAssertEqual(Array(bias[0..<4]), [8, 6, 2, 0])      // head 0, row 0: table[4,0], table[3,0], table[1,0], table[0,0]
        XCTAssertEqual(Array(bias[16..<20]), [9, 7, 3, 1])    // head 1, row 0
        XCTAssertEqual(SwinBuffers.qScale(headDim: 32), Float(0.17677669529663687))
        var w = [Float](repeating: 2, count: 3 * 2 * 2)       // (3C, C) with C = 2
        SwinBuffers.scaleQ(&w, channels: 2, rowLength: 2, scale: 0.5)
        XCTAssertEqual(w, [1, 1, 1, 1] + [Float](repeating: 2, count: 8))
    }
}
