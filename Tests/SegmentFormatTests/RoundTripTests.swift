// Write -> read round trips for every dtype, in both directions between the Swift code and the independent
// Python reader/writer (trainer/segment_format_py, written from docs/FORMAT.md).
import Foundation
import TestSupport
import XCTest
@testable import SegmentFormat

final class RoundTripTests: XCTestCase {
    /// numpy's float16 / ml_dtypes' bfloat16 rounding of `values` widened back to float32: the independent answer
    /// for what a reader gets back from an f16 / bf16 file.
    func numpyRounded(_ values: [Float], _ dtype: DType, in dir: URL) throws -> [Float] {
        if dtype == .f32 { return values }
        let inURL = dir.appendingPathComponent("values.f32"), outURL = dir.appendingPathComponent("rounded.f32")
        try values.withUnsafeBytes { Data($0) }.write(to: inURL)
        let narrow = dtype == .f16 ? "'<f2'" : "ml_dtypes.bfloat16"
        _ = try TestSupport.python("import sys, numpy as np, ml_dtypes\nx = np.fromfile(sys.argv[1], dtype='<f4')\n"
                                   + "x.astype(\(narrow)).astype('<f4').tofile(sys.argv[2])", [inURL.path, outURL.path])
        return try Data(contentsOf: outURL).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    func testSwiftRoundTripEveryDType() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let weights = Tiny.weights()
        for dtype in DType.allCases {
            let path = dir.appendingPathComponent("tiny_\(dtype.rawValue).segm").path
            try Tiny.write(to: path, dtype: dtype)
            let model = try ModelFile.open(path)
            XCTAssertEqual(model.metadata, Tiny.metadata)
            XCTAssertEqual(model.tensors.map(\.name), Tiny.config.expectedTensors().map(\.name))
            XCTAssertEqual(model.tensors.map(\.shape), Tiny.config.expectedTensors().map(\.shape))
            XCTAssertEqual(model.fileSize, try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            let want = try numpyRounded(weights.flatMap(\.1), dtype, in: dir)
            var at = 0
            for (t, (_, values)) in zip(model.tensors, weights) {
                XCTAssertEqual(t.dtype, dtype)
                XCTAssertEqual(t.offset % 64, 0, t.name)
                XCTAssertEqual(t.byteCount, values.count * dtype.bytesPerElement)
                // f32 exact; f16 / bf16 bit for bit numpy's round-to-nearest-even value.
                let got = try model.floats(t.name)
                XCTAssertEqual(got.map(\.bitPattern), want[at..<at + values.count].map(\.bitPattern), t.name)
                at += values.count
            }
        }
    }

    /// The same inputs give the same bytes (reproducible conversions), and rewriting leaves no temporary file.
    func testWriterIsDeterministicAndAtomic() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let a = dir.appendingPathComponent("a.segm").path, b = dir.appendingPathComponent("b.segm").path
        try Tiny.write(to: a, dtype: .bf16)
        try Tiny.write(to: b, dtype: .bf16)
        try Tiny.write(to: b, dtype: .bf16)   // over an existing file
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a)), try Data(contentsOf: URL(fileURLWithPath: b)))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["a.segm", "b.segm"])
    }

    /// Swift writes, Python reads: layout, metadata, checksum (C xxhash) and the stored bits of every tensor
    /// against numpy float16 / ml_dtypes bfloat16 rounding of the original values.
    func testPythonReadsSwiftFiles() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let originals = dir.appendingPathComponent("values.f32")
        try Tiny.weights().flatMap(\.1).withUnsafeBytes { Data($0) }.write(to: originals)
        let paths = DType.allCases.map { dir.appendingPathComponent("tiny_\($0.rawValue).segm").path }
        for (dtype, path) in zip(DType.allCases, paths) { try Tiny.write(to: path, dtype: dtype) }
        let out = try TestSupport.python("""
            import json, sys, numpy as np
            import segment_format_py as fmt
            values = np.fromfile(sys.argv[1], dtype='<f4')
            for path, dtype in zip(sys.argv[2::2], sys.argv[3::2]):
                m = fmt.read(path)
                at = 0
                for t in m.table:
                    n = int(np.prod(t.shape))
                    want = np.frombuffer(fmt.to_storage(values[at:at + n], t.dtype), dtype=m.raw(t.name).dtype)
                    assert t.dtype == dtype, t.dtype
                    assert np.array_equal(m.raw(t.name).reshape(-1).view(np.uint8), want.view(np.uint8)), t.name
                    at += n
                assert at == values.size
                print(json.dumps({"version": m.version, "checksum": format(m.checksum, '016x'), "metadata": m.metadata,
                                  "tensors": [[t.name, list(t.shape)] for t in m.table]}))
            """, [originals.path] + zip(paths, DType.allCases).flatMap { [$0, $1.rawValue] })
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, DType.allCases.count)
        for (line, path) in zip(lines, paths) {
            let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let model = try ModelFile.open(path)
            XCTAssertEqual(json["version"] as? Int, 1)
            XCTAssertEqual(json["checksum"] as? String, model.checksum)
            XCTAssertEqual((json["tensors"] as! [[Any]]).map { $0[0] as! String }, Tiny.config.expectedTensors().map(\.name))
            XCTAssertEqual((json["tensors"] as! [[Any]]).map { $0[1] as! [Int] }, Tiny.config.expectedTensors().map(\.shape))
            let meta = json["metadata"] as! [String: Any]
            XCTAssertEqual(meta.count, Tiny.metadata.entries().count)
            for (key, value) in Tiny.metadata.entries() {
                switch value {
                case .int(let v): XCTAssertEqual(meta[key] as? Int, Int(v), key)
                case .float(let v): XCTAssertEqual(meta[key] as? Double, v, key)
                case .string(let v): XCTAssertEqual(meta[key] as? String, v, key)
                case .ints(let v): XCTAssertEqual(meta[key] as? [Int], v.map { Int($0) }, key)
                case .strings(let v): XCTAssertEqual(meta[key] as? [String], v, key)
                }
            }
        }
    }

    /// Python writes (tensors in reverse order, non-default metadata, UTF-8 provenance), Swift reads: metadata,
    /// the tensor set (= segment_torch's engine_tensors = SwinUNetSpec), and every value bit for bit.
    func testSwiftReadsPythonFiles() throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: TestSupport.fixture("format/tiny.json"))) as! [String: Any]
        let meta = json["metadata"] as! [String: Any]
        let tensors = (json["tensors"] as! [[Any]]).map { ($0[0] as! String, $0[1] as! [Int]) }
        let config = SwinUNetConfig(imgSize: meta["swin_unet.img_size"] as! Int, patchSize: meta["swin_unet.patch_size"] as! Int,
                                    inChans: meta["swin_unet.in_chans"] as! Int, numClasses: meta["swin_unet.num_classes"] as! Int,
                                    embedDim: meta["swin_unet.embed_dim"] as! Int, depths: meta["swin_unet.depths"] as! [Int],
                                    numHeads: meta["swin_unet.num_heads"] as! [Int], windowSize: meta["swin_unet.window_size"] as! Int,
                                    mlpRatio: meta["swin_unet.mlp_ratio"] as! Double)
        var p = Preprocessing()
        p.channels = .init(rawValue: meta["preprocessing.channels"] as! String)!
        p.intensity = .init(rawValue: meta["preprocessing.intensity"] as! String)!
        p.windowLo = meta["preprocessing.window_lo"] as! Double; p.windowHi = meta["preprocessing.window_hi"] as! Double
        p.sliceAxis = meta["preprocessing.slice_axis"] as! Int; p.rowAxis = meta["preprocessing.row_axis"] as! Int
        p.colAxis = meta["preprocessing.col_axis"] as! Int; p.orientation = meta["preprocessing.orientation"] as! String
        p.imageOrder = .init(rawValue: meta["preprocessing.image_order"] as! Int)!; p.labelOrder = .init(rawValue: meta["preprocessing.label_order"] as! Int)!
        let provenance = Dictionary(uniqueKeysWithValues: meta.filter { $0.key.hasPrefix("provenance.") }
            .map { (String($0.key.dropFirst("provenance.".count)), $0.value as! String) })
        let want = ModelMetadata(config: config, preprocessing: p, classNames: meta["general.class_names"] as! [String],
                                 sourceSHA256: meta["general.source_sha256"] as! String,
                                 converterVersion: meta["general.converter_version"] as! String, provenance: provenance)
        XCTAssertEqual(provenance.count, 3)
        XCTAssertEqual(tensors.sorted { $0.0 < $1.0 }.map(\.0), config.expectedTensors().map(\.name).sorted())
        for spec in config.expectedTensors() { XCTAssertEqual(tensors.first { $0.0 == spec.name }?.1, spec.shape, spec.name) }

        for dtype in DType.allCases {
            let model = try ModelFile.open(try TestSupport.fixture("format/tiny_\(dtype.rawValue).segm").path)
            XCTAssertEqual(model.metadata, want)
            XCTAssertEqual(Set(model.tensors.map(\.name)), Set(config.expectedTensors().map(\.name)))
            XCTAssertNotEqual(model.tensors.map(\.name), config.expectedTensors().map(\.name))   // another order, accepted
            let expected = try Data(contentsOf: TestSupport.fixture("format/tiny_\(dtype.rawValue).expected"))
                .withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
            var at = 0
            for (name, shape) in tensors {
                let n = shape.reduce(1, *)
                XCTAssertEqual(model.tensor(name)?.dtype, dtype)
                XCTAssertEqual(try model.floats(name).map(\.bitPattern), Array(expected[at..<at + n]), "\(dtype) \(name)")
                at += n
            }
            XCTAssertEqual(at, expected.count)
        }
    }
}
