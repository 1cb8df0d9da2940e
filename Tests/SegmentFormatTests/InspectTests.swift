// `segment inspect` through the built executable: text, --json, and exit code 4 on a broken file.
import Foundation
import TestSupport
import XCTest
@testable import SegmentFormat

final class InspectTests: XCTestCase {
    func testTextAndJSON() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let path = dir.appendingPathComponent("tiny.segm").path
        try Tiny.write(to: path, dtype: .f16)
        let model = try ModelFile.open(path)
        let exe = TestSupport.segmentExecutable.path

        let text = try TestSupport.run(exe, ["inspect", path])
        XCTAssertEqual(text.status, 0, text.stderr)
        let params = model.tensors.reduce(0) { $0 + $1.count }
        for line in ["model          \(path)", "checksum       xxh64 \(model.checksum) (verified)",
                     "classes        3: 0 background, 1 liver, 2 tumour", "provenance     data = LiTS", "provenance     seed = 1337",
                     "parameters     \(ModelInspection.grouped(params)) (f16 \(ModelInspection.grouped(params)))",
                     "tensors        \(model.tensors.count)"] {
            XCTAssertTrue(text.stdout.contains(line), "missing line: \(line)\n\(text.stdout)")
        }
        let row = text.stdout.split(separator: "\n").first { $0.hasPrefix("layers.0.blocks.1.attn.relative_position_bias ") }
        XCTAssertEqual(row?.split(separator: " ", omittingEmptySubsequences: true), ["layers.0.blocks.1.attn.relative_position_bias", "f16", "[1,", "16,", "16]", "512"])

        let json = try TestSupport.run(exe, ["inspect", path, "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(obj["formatVersion"] as? Int, 1)
        XCTAssertEqual(obj["fileSize"] as? Int, model.fileSize)
        XCTAssertEqual(obj["parameters"] as? Int, params)
        XCTAssertEqual((obj["checksum"] as? [String: Any])?["value"] as? String, model.checksum)
        XCTAssertEqual((obj["checksum"] as? [String: Any])?["verified"] as? Bool, true)
        let tensors = obj["tensors"] as! [[String: Any]]
        XCTAssertEqual(tensors.map { $0["name"] as! String }, model.tensors.map(\.name))
        XCTAssertEqual(tensors.map { $0["shape"] as! [Int] }, model.tensors.map(\.shape))
        XCTAssertEqual(tensors.map { $0["bytes"] as! Int }, model.tensors.map(\.byteCount))
        XCTAssertEqual(tensors.map { $0["offset"] as! Int }, model.tensors.map(\.offset))
        let metadata = try JSONDecoder().decode(ModelMetadata.self, from: JSONSerialization.data(withJSONObject: obj["metadata"]!))
        XCTAssertEqual(metadata, Tiny.metadata)
    }

    func testBrokenFileExitsFour() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let path = dir.appendingPathComponent("tiny.segm").path
        try Tiny.write(to: path)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 1] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: path))
        for args in [["inspect", path], ["inspect", path, "--json"]] {
            let r = try TestSupport.run(TestSupport.segmentExecutable.path, args)
            XCTAssertEqual(r.status, 4)
            XCTAssertEqual(r.stdout, "")
            XCTAssertTrue(r.stderr.contains("model file \(path) is corrupt: its checksum is"), r.stderr)
        }
        let missing = try TestSupport.run(TestSupport.segmentExecutable.path, ["inspect", dir.appendingPathComponent("none.segm").path])
        XCTAssertEqual(missing.status, 4)
        XCTAssertEqual(try TestSupport.run(TestSupport.segmentExecutable.path, ["inspect"]).status, 2)
    }
}
