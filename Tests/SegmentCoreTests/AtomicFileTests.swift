import XCTest
import SegmentCore

final class AtomicFileTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "atomic-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testWriteReplacesAndLeavesNoTemporary() throws {
        let p = dir + "/out.bin"
        try AtomicFile.write(Data([1, 2, 3]), to: p)
        try AtomicFile.write(Data([4, 5]), to: p)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: p)), Data([4, 5]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.bin"])
    }

    func testFailureKeepsOldFileAndRemovesTemporary() throws {
        let p = dir + "/out.bin"
        try AtomicFile.write(Data([9]), to: p)
        struct Boom: Error {}
        XCTAssertThrowsError(try AtomicFile.write(to: p) { tmp in
            FileManager.default.createFile(atPath: tmp, contents: Data([1, 1, 1]))
            throw Boom()
        })
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: p)), Data([9]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.bin"])
    }

    func testUnwritableFolderIsATypedError() {
        XCTAssertThrowsError(try AtomicFile.write(Data([1]), to: dir + "/missing/out.bin")) { e in
            XCTAssertEqual((e as? SegmentError)?.exitCode, .outputNotWritable)
        }
    }
}
