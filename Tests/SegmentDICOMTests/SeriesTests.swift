// Series discovery and assembly on files written byte by byte (DICOMTestSupport): slice order, the grid and its
// affine, stored values and rescaling, multi-frame functional groups, and the edges of every check's tolerance.
import DICOMTestSupport
import Foundation
import SegmentCore
import SegmentDICOM
import SegmentImaging
import TestSupport
import XCTest

final class SeriesTests: XCTestCase {
    let uid = "1.2.826.0.1.3680043.10.99.2"

    /// Writes `files` (name -> bytes) into a fresh folder and returns it.
    func folder(_ files: [(String, Data)]) throws -> String {
        let dir = try TestSupport.temporaryDirectory(self).appendingPathComponent("series")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, data) in files { try data.write(to: dir.appendingPathComponent(name)) }
        return dir.path
    }

    func only(_ dir: String) throws -> DICOMSeries {
        let all = try SeriesDiscovery.series(in: dir)
        XCTAssertEqual(all.count, 1)
        return try XCTUnwrap(all.first)
    }

    /// A slice whose pixels are all `value` (stored).
    func slice(_ k: Int, z: Double, value: UInt16, rows: Int = 3, columns: Int = 4, extra: [Element] = [],
               position: [Double]? = nil, slope: Double = 1, intercept: Double = -1024) -> Data {
        DICOMTestFiles.ctSlice(series: uid, instance: k, position: position ?? [-10, -20, z], rows: rows, columns: columns,
                               pixels: [UInt16](repeating: value, count: rows * columns), slope: slope, intercept: intercept,
                               extra: extra)
    }

    func testSortedByPositionAlongTheNormalNotByNameOrInstanceNumber() throws {
        // Names and InstanceNumbers run against the positions; the stored value tells which slice is where.
        let dir = try folder([("a", slice(1, z: 30, value: 300)), ("b", slice(2, z: 10, value: 100)),
                              ("c", slice(3, z: 20, value: 200)), ("notes.txt", Data("not DICOM".utf8))])
        let v = try SeriesAssembly.assemble(only(dir), budget: .machineDefault)
        XCTAssertEqual(v.volume.shape, [4, 3, 3])
        XCTAssertEqual((0..<3).map { v.volume.value(0, 0, $0) }, [100 - 1024, 200 - 1024, 300 - 1024])
        XCTAssertEqual(v.frames.map { ($0.path as NSString).lastPathComponent }, ["b", "c", "a"])
        XCTAssertEqual(v.volume.header.datatype, .int16, "one rescale and 12 stored bits: int16 with NIfTI scaling")
    }

    /// The affine, worked by hand for a sagittal series: rows along +y (P), columns along -z (I), the normal
    /// row x column = (0,1,0) x (0,0,-1) = (-1,0,0): slices step towards the patient's right.
    func testAffineOfASagittalSeriesInRAS() throws {
        let iop: [Double] = [0, 1, 0, 0, 0, -1]
        func s(_ k: Int, x: Double) -> Data {
            DICOMTestFiles.ctSlice(series: uid, instance: k, position: [x, -50, 80], orientation: iop, spacing: [0.5, 0.7],
                                   rows: 2, columns: 3, pixels: [UInt16](repeating: 10, count: 6))
        }
        let v = try SeriesAssembly.assemble(only(try folder([("1", s(1, x: 4)), ("2", s(2, x: 6.5)), ("3", s(3, x: 9))])),
                                            budget: .machineDefault)
        // Sorted along n = (-1,0,0): x = 9, 6.5, 4. LPS columns: i = row direction * column spacing (0.7),
        // j = column direction * row spacing (0.5), k = (-2.5, 0, 0), origin (9, -50, 80); RAS negates x and y.
        let expected: [[Double]] = [[0, 0, 2.5, -9], [-0.7, 0, 0, 50], [0, -0.5, 0, 80], [0, 0, 0, 1]]
        XCTAssertLessThan(v.volume.header.affine.maxDifference(Affine(expected)), 1e-12)
        XCTAssertEqual(v.volume.header.spacing, [0.7, 0.5, 2.5])
        XCTAssertEqual(try v.volume.header.axisCodes, "PIR")
    }

    func testStoredBitsSignednessAndRescale() throws {
        // BitsStored 12: bits above are not part of the value (0xF0A5 holds 0x0A5 = 165).
        var dir = try folder([("1", slice(1, z: 0, value: 0xF0A5)), ("2", slice(2, z: 1, value: 0xF0A5))])
        var v = try SeriesAssembly.assemble(only(dir), budget: .machineDefault)
        XCTAssertEqual(v.volume.value(2, 1, 1), 165 - 1024)

        // Signed 16-bit: 0xFC18 is -1000.
        let signed = { (k: Int, z: Double) in
            DICOMTestFiles.ctSlice(series: self.uid, instance: k, position: [0, 0, z], rows: 2, columns: 2,
                                   pixels: [0xFC18, 5, 0x7FFF, 0x8000], bitsStored: 16, signed: true, intercept: 0)
        }
        dir = try folder([("1", signed(1, 0)), ("2", signed(2, 2))])
        v = try SeriesAssembly.assemble(only(dir), budget: .machineDefault)
        XCTAssertEqual([v.volume.value(0, 0, 0), v.volume.value(1, 0, 0), v.volume.value(0, 1, 1), v.volume.value(1, 1, 1)],
                       [-1000, 5, 32767, -32768])

        // Rescale that differs between slices (as PET does): float32 values, each slice with its own.
        dir = try folder([("1", slice(1, z: 0, value: 10, slope: 0.5, intercept: 1)),
                          ("2", slice(2, z: 1, value: 10, slope: 2, intercept: -3))])
        v = try SeriesAssembly.assemble(only(dir), budget: .machineDefault)
        XCTAssertEqual(v.volume.header.datatype, .float32)
        XCTAssertEqual([v.volume.value(0, 0, 0), v.volume.value(0, 0, 1)], [6, 17])
    }

    /// 1 % of the slice step (docs/DICOM.md): 0.9 % passes, 1.1 % is refused, for gaps and for sideways moves.
    func testToleranceEdges() throws {
        func run(_ positions: [[Double]]) throws -> SeriesVolume {
            try SeriesAssembly.assemble(only(try folder(positions.enumerated().map { k, p in
                ("s\(k)", slice(k, z: 0, value: 1, position: p))
            })), budget: .machineDefault)
        }
        func check(of error: Error) -> String? {
            guard case .inconsistentSeries(_, let check, _)? = error as? DICOMError else { return nil }
            return check
        }
        XCTAssertNoThrow(try run([[0, 0, 0], [0, 0, 2], [0, 0, 4.018], [0, 0, 6.018]]))
        XCTAssertThrowsError(try run([[0, 0, 0], [0, 0, 2], [0, 0, 4.022], [0, 0, 6.022]])) { XCTAssertEqual(check(of: $0), "slice spacing") }
        XCTAssertThrowsError(try run([[0, 0, 0], [0, 0, 2], [0, 0, 6], [0, 0, 8]])) { e in
            XCTAssertEqual(check(of: e), "slice spacing")
            XCTAssertTrue("\(e)".contains("gap"), "\(e)")
        }
        XCTAssertNoThrow(try run([[0, 0, 0], [0, 0.018, 2], [0, 0.036, 4]]))
        XCTAssertThrowsError(try run([[0, 0, 0], [0, 0.022, 2], [0, 0.044, 4]])) { XCTAssertEqual(check(of: $0), "slice alignment") }
        XCTAssertThrowsError(try run([[0, 0, 0], [0, 0, 2], [0, 0, 2]])) { XCTAssertEqual(check(of: $0), "slice positions") }
    }

    /// An enhanced multi-frame object: geometry from per-frame and shared functional groups, frames stored in the
    /// reverse of their spatial order.
    func testMultiFrameFunctionalGroups() throws {
        let (rows, columns) = (2, 2)
        let perFrame: [[Element]] = [12.0, 9.0, 6.0].map { z in
            [Element(0x0020_9113, items: [[.decimals(0x0020_0032, [1, 2, z])]])]
        }
        let shared: [Element] = [
            Element(0x0020_9116, items: [[.decimals(0x0020_0037, [1, 0, 0, 0, 1, 0])]]),
            Element(0x0028_9110, items: [[.decimals(0x0028_0030, [0.8, 0.9]), .decimals(0x0018_0050, [3])]]),
            Element(0x0028_9145, items: [[.decimals(0x0028_1052, [-100]), .decimals(0x0028_1053, [2])]]),
        ]
        let pixels: [UInt16] = [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]     // frame f holds f + 1
        let data = DICOMTestFiles.part10(sopClass: "1.2.840.10008.5.1.4.1.1.2.1", sopInstance: "\(uid).1", [
            .string(0x0020_000E, "UI", uid), .string(0x0028_0008, "IS", "3"),
            .us(0x0028_0002, 1), .string(0x0028_0004, "CS", "MONOCHROME2"),
            .us(0x0028_0010, rows), .us(0x0028_0011, columns),
            .us(0x0028_0100, 16), .us(0x0028_0101, 16), .us(0x0028_0102, 15), .us(0x0028_0103, 0),
            Element(0x5200_9229, items: [shared]), Element(0x5200_9230, items: perFrame),
            .pixels16(pixels),
        ])
        let dir = try folder([("enhanced.dcm", data)])
        let series = try only(dir)
        XCTAssertEqual(series.frames.map(\.frame), [0, 1, 2])
        let v = try SeriesAssembly.assemble(series, budget: .machineDefault)
        // z = 6, 9, 12 are frames 3, 2, 1; value = stored * 2 - 100. 16 unsigned bits do not fit int16: float32.
        XCTAssertEqual((0..<3).map { v.volume.value(1, 1, $0) }, [-94, -96, -98])
        XCTAssertEqual(v.volume.header.datatype, .float32)
        XCTAssertEqual(v.volume.header.spacing, [0.9, 0.8, 3])
        XCTAssertEqual(v.frames.map(\.frame), [2, 1, 0])
    }

    func testSeveralSeriesInSubfoldersAndSkippedObjects() throws {
        let other = "1.2.826.0.1.3680043.10.99.3"
        let seg = DICOMTestFiles.part10(sopClass: "1.2.840.10008.5.1.4.1.1.66.4", sopInstance: "1.2.3.4",
                                        [.string(0x0020_000E, "UI", "1.2.3"), .us(0x0028_0010, 2), .pixels16([0, 0])])
        let dir = try TestSupport.temporaryDirectory(self).appendingPathComponent("study")
        for (sub, name, data) in [("a", "1", slice(1, z: 0, value: 1)), ("a", "2", slice(2, z: 1, value: 1)),
                                  ("b/c", "x.dcm", DICOMTestFiles.ctSlice(series: other, instance: 1, position: [0, 0, 0],
                                                                         rows: 1, columns: 1, pixels: [7])),
                                  ("b", "seg.dcm", seg)] {
            let d = dir.appendingPathComponent(sub)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            try data.write(to: d.appendingPathComponent(name))
        }
        let all = try SeriesDiscovery.series(in: dir.path)
        XCTAssertEqual(all.map(\.seriesInstanceUID), [uid, other], "in UID order; the SEG is not a case")
        XCTAssertEqual(all.map(\.files.count), [2, 1])
        XCTAssertEqual(all[0].folder, dir.appendingPathComponent("a").path)
    }
}
