// `segment convert --class-code`: codes stored at conversion, and a model file re-written with codes (its tensors
// bit for bit, its checksum valid), which is how the shipped model gained its codes.
import Foundation
import SegmentFormat
import TestSupport
import XCTest

final class ClassCodeConvertTests: XCTestCase {
    var segment: String { TestSupport.segmentExecutable.path }

    func testCodesAtConversionAndOnAModelFile() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let input = try TestSupport.fixture("convert/small/advmim.pth").path
        let first = dir.appendingPathComponent("a.segm").path
        var r = try TestSupport.run(segment, ["convert", input, "-o", first, "--dtype", "bf16", "--classes", "background,liver,tumour,vessel",
                                              "--class-code", "1=SCT:10200004:Liver", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let a = try ModelFile.open(first)
        XCTAssertEqual(a.metadata.classCodes, [ClassCode.liverModel[0]])

        // Re-written with codes for classes 1 and 2: the same tensors, byte for byte, in the same dtype.
        let second = dir.appendingPathComponent("b.segm").path
        r = try TestSupport.run(segment, ["convert", first, "-o", second, "--class-code", "1=SCT:10200004:Liver",
                                          "--class-code", "2=SCT:108369006:Neoplasm", "--class-code",
                                          "3=SCT:59820001:Blood vessel@SCT:123037004:Anatomical Structure"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let b = try ModelFile.open(second)   // verifies the checksum
        XCTAssertEqual(b.metadata.classCodes.map(\.label), [1, 2, 3])
        XCTAssertEqual(b.metadata.classCodes[1], ClassCode.liverModel[1])
        var expected = a.metadata
        expected.classCodes = b.metadata.classCodes
        XCTAssertEqual(b.metadata, expected)
        XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name))
        for t in a.tensors {
            XCTAssertEqual(b.tensor(t.name)?.dtype, .bf16)
            let x = try a.withBytes(of: t.name) { Data($0) }, y = try b.withBytes(of: t.name) { Data($0) }
            XCTAssertEqual(x, y, t.name)
        }
        let inspect = try TestSupport.run(segment, ["inspect", second])
        XCTAssertTrue(inspect.stdout.contains("3 type SCT:59820001:Blood vessel category SCT:123037004:Anatomical Structure"), inspect.stdout)
    }

    func testBadCodesExitTwo() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let input = try TestSupport.fixture("convert/small/advmim.pth").path
        let out = dir.appendingPathComponent("m.segm").path
        for (flags, message) in [
            (["--class-code", "1=SCT:999:Thing"], "whose category segment does not know"),
            (["--class-code", "9=SCT:10200004:Liver"], "gives codes to class 9"),
            (["--class-code", "1=SCT:10200004:Liver", "--class-code", "1=SCT:10200004:Liver"], "gives class 1 codes twice"),
        ] {
            let r = try TestSupport.run(segment, ["convert", input, "-o", out] + flags)
            XCTAssertEqual(r.status, 2, "\(flags): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        // A model file in with a flag that needs the checkpoint.
        let model = dir.appendingPathComponent("ok.segm").path
        XCTAssertEqual(try TestSupport.run(segment, ["convert", input, "-o", model, "--quiet"]).status, 0)
        let r = try TestSupport.run(segment, ["convert", model, "-o", out, "--classes", "a,b,c,d", "--class-code", "1=SCT:10200004:Liver"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("is a model file"), r.stderr)
    }
}
