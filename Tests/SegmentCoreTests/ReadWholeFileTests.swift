import Foundation
import XCTest
import SegmentCore

final class ReadWholeFileTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "read-whole-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testReadsSmallFile() throws {
        let path = dir + "/list.csv"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("a,b\n".utf8)))
        XCTAssertEqual(try readWholeFile(path, maxBytes: 100), Data("a,b\n".utf8))
    }

    /// Refused before Data(contentsOf:), which leaks a page-sized buffer when it reads an empty file.
    func testEmptyFileIsRefused() throws {
        let path = dir + "/empty.csv"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        XCTAssertThrowsError(try readWholeFile(path, maxBytes: 100)) { error in
            XCTAssertEqual((error as? FileReadFailure)?.reason, "the file is empty (0 bytes)")
        }
    }

    func testLargerThanTheLimitIsRefused() throws {
        let path = dir + "/big.csv"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(count: 101)))
        XCTAssertThrowsError(try readWholeFile(path, maxBytes: 100)) { error in
            XCTAssertTrue((error as? FileReadFailure)?.reason.contains("101 bytes") ?? false)
        }
    }

    func testFolderIsRefusedWithoutOpening() throws {
        XCTAssertThrowsError(try readWholeFile(dir, maxBytes: 100)) { error in
            XCTAssertEqual((error as? FileReadFailure)?.reason, "it is a folder")
        }
    }
}
