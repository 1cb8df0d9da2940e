// Reading the reference answers of trainer/fixtures/gen_imaging.py (OUTDIR/imaging/...).
import Foundation
import TestSupport
import XCTest
@testable import SegmentImaging

enum Fixtures {
    /// OUTDIR/imaging/<relative>; fails the test when missing.
    static func url(_ relative: String) throws -> URL {
        try TestSupport.fixture("imaging/" + relative)
    }

    static func path(_ relative: String) throws -> String { try url(relative).path }

    /// A section's manifest.json.
    static func manifest(_ section: String) throws -> [String: Any] {
        let data = try Data(contentsOf: url(section + "/manifest.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A raw little-endian array of T.
    static func array<T>(_ relative: String, as: T.Type) throws -> [T] {
        let data = try Data(contentsOf: url(relative))
        return data.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    }

    /// An exact double the generator wrote as a repr string (JSONSerialization may round numbers).
    static func exact(_ any: Any?) throws -> Double {
        try XCTUnwrap(Double(try XCTUnwrap(any as? String)))
    }

    /// A 4x4 matrix from JSON (numbers good to about 1e-15 relative).
    static func matrix(_ any: Any?) throws -> [[Double]] {
        let rows = try XCTUnwrap(any as? [[Any]])
        return try rows.map { try $0.map { try XCTUnwrap(($0 as? NSNumber)?.doubleValue) } }
    }
}

/// Asserts `body` throws the ImagingError case `expected` (by name) whose message names `path`; returns it.
@discardableResult
func assertImagingError<R>(_ body: @autoclosure () throws -> R, _ expected: String, path: String,
                           file: StaticString = #filePath, line: UInt = #line) -> ImagingError? {
    do {
        _ = try body()
        XCTFail("expected \(expected) for \(path), but it succeeded", file: file, line: line)
    } catch let error as ImagingError {
        let name = Mirror(reflecting: error).children.first?.label ?? ""
        XCTAssertEqual(name, expected, "\(error)", file: file, line: line)
        XCTAssertTrue(error.description.contains(path), "message does not name \(path): \(error)", file: file, line: line)
        return error
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
    return nil
}
