// general.class_codes: optional, round-trips through the file, checked like every other key; --class-code parsing.
import Foundation
import SegmentCore
import TestSupport
import XCTest
@testable import SegmentFormat

final class ClassCodeTests: XCTestCase {
    func testCodesRoundTripAndOldFilesStayValid() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        var m = Tiny.metadata
        m.classCodes = ClassCode.liverModel.reversed()   // stored sorted by label
        let path = dir.appendingPathComponent("coded.segm").path
        try Tiny.write(to: path, metadata: m)
        let read = try ModelFile.open(path).metadata
        XCTAssertEqual(read.classCodes, ClassCode.liverModel)
        XCTAssertEqual(read.codes(of: 2)?.type.value, "108369006")
        XCTAssertNil(read.codes(of: 3))
        // A file without the key (every file written before it existed) opens with no codes, and the key is not written.
        let plain = dir.appendingPathComponent("plain.segm").path
        try Tiny.write(to: plain)
        XCTAssertEqual(try ModelFile.open(plain).metadata.classCodes, [])
        XCTAssertFalse(Tiny.metadata.entries().contains { $0.key == "general.class_codes" })
        // The inspection shows them.
        XCTAssertTrue(try ModelInspection(ModelFile.open(path)).text.contains("1 type SCT:10200004:Liver category SCT:123037004:Anatomical Structure"))
    }

    func testInvalidCodesAreRefused() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let path = dir.appendingPathComponent("m.segm").path
        func refused(_ value: MetadataValue, _ reason: String, line: UInt = #line) {
            let entries = Tiny.metadata.entries() + [("general.class_codes", value)]
            XCTAssertThrows(ModelFileError.badMetadata(path: path, key: "general.class_codes", reason: reason),
                            try ModelFile.open(try FileImage(entries: entries).write(in: dir, "m.segm")), line: line)
        }
        let liver = #"{"value":"10200004","scheme":"SCT","meaning":"Liver"}"#
        refused(.int(1), "is a int, not a string")
        refused(.string("[{]"), "is not a JSON array of {label, category, type} with codes of {value, scheme, meaning}")
        refused(.string(#"[{"label":3,"category":\#(liver),"type":\#(liver)}]"#), "gives codes to class 3, but the foreground classes are 1...2")
        refused(.string(#"[{"label":1,"category":\#(liver),"type":\#(liver)},{"label":1,"category":\#(liver),"type":\#(liver)}]"#),
                "gives class 1 codes twice")
        refused(.string(#"[{"label":1,"category":\#(liver),"type":{"value":"","scheme":"SCT","meaning":"Liver"}}]"#),
                "class 1's type SCT::Liver: its code value is empty")
    }

    func testParse() throws {
        // A known SNOMED CT type takes its category from the table.
        XCTAssertEqual(try ClassCode.parse("1=SCT:10200004:Liver").get(), ClassCode.liverModel[0])
        XCTAssertEqual(try ClassCode.parse("2=SCT:108369006:Neoplasm").get(), ClassCode.liverModel[1])
        // An explicit category; a meaning may hold colons.
        let c = try ClassCode.parse("3=SCT:1234567:Left: lobe@SCT:123037004:Anatomical Structure").get()
        XCTAssertEqual(c.type, CodedConcept(value: "1234567", scheme: "SCT", meaning: "Left: lobe"))
        XCTAssertEqual(c.category, ClassCode.anatomicalStructure)
        // An unknown type without category, a missing label, a malformed code.
        for bad in ["1=SCT:999:Thing", "SCT:10200004:Liver", "1=10200004", "1=SCT:10200004:Liver@SCT"] {
            guard case .failure = ClassCode.parse(bad) else { return XCTFail("\(bad) accepted") }
        }
    }
}
