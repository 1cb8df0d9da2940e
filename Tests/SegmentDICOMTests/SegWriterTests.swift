// SegWriter against real source series: pydicom's bundled CT5N series (5 axial 16 x 16 CT slices) and an odd-sized,
// flipped sagittal series written by pydicom in the test. The SEG is read back through DCMTK (DICOMFile); the pixel
// data, the nested source references and the standard's rules are checked by trainer/tests/test_seg_writer.py
// (highdicom, pydicom, dciodvfy), which runs these tests with SEGMENT_SEG_OUT set: every SEG written here is then
// copied there with a JSON sidecar of its mask and sources.
import Foundation
import SegmentCore
import SegmentDICOM
import TestSupport
import XCTest

final class SegWriterTests: XCTestCase {
    static let segStorage = "1.2.840.10008.5.1.4.1.1.66.4"
    static let liver = SegmentDescription(label: 1, name: "liver",
                                          category: CodedConcept(value: "123037004", scheme: "SCT", meaning: "Anatomical Structure"),
                                          type: CodedConcept(value: "10200004", scheme: "SCT", meaning: "Liver"),
                                          cielab: SegColour.palette(1))
    static let tumour = SegmentDescription(label: 2, name: "liver tumour",
                                           category: CodedConcept(value: "49755003", scheme: "SCT", meaning: "Morphologically Altered Structure"),
                                           type: CodedConcept(value: "108369006", scheme: "SCT", meaning: "Neoplasm"),
                                           cielab: SegColour.palette(2))
    static let algorithm = SegAlgorithm(name: "segment", version: "0.9.0", modelName: "swin-unet-test",
                                        modelChecksum: String(repeating: "ab", count: 32))

    /// A series on disk: its files in slice order and the geometry they share, read back through DICOMFile.
    struct Series {
        var sources: [SourceFrame]
        var geometry: SegGeometry
    }

    func series(_ paths: [String]) throws -> Series {
        var sources: [SourceFrame] = []
        var geometry: SegGeometry?
        for p in paths {
            let f = try DICOMFile(p)
            sources.append(SourceFrame(path: p, sopClassUID: try XCTUnwrap(f.string(Tag.sopClassUID)),
                                       sopInstanceUID: try XCTUnwrap(f.string(Tag.sopInstanceUID)),
                                       position: try XCTUnwrap(f.numbers(Tag.imagePositionPatient, count: 3))))
            if geometry == nil {
                geometry = SegGeometry(rows: Int(try XCTUnwrap(f.number(Tag.rows))), columns: Int(try XCTUnwrap(f.number(Tag.columns))),
                                       pixelSpacing: try XCTUnwrap(f.numbers(Tag.pixelSpacing, count: 2)),
                                       sliceThickness: f.number(Tag.sliceThickness) ?? 0,
                                       orientation: try XCTUnwrap(f.numbers(Tag.imageOrientationPatient, count: 6)))
            }
        }
        return Series(sources: sources, geometry: try XCTUnwrap(geometry))
    }

    /// pydicom's CT5N series, files in name order (which is slice order: z falls by 2.5 mm from file to file).
    func ct5n() throws -> Series {
        let dir = try TestSupport.python("import pydicom, os; print(os.path.dirname(pydicom.__file__))")
            .trimmingCharacters(in: .whitespacesAndNewlines) + "/data/test_files/dicomdirtests/98892001/CT5N"
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertEqual(names.count, 5)
        return try series(names.map { dir + "/" + $0 })
    }

    /// Three 7-row x 5-column sagittal slices with both in-plane directions negated (row direction -y, column
    /// direction -z): odd frame sizes (35 bits, not a whole byte) and the orientation where writers mirror A/P.
    func flippedSeries(in dir: URL) throws -> Series {
        try TestSupport.python("""
        import sys, pydicom
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian, generate_uid
        import numpy as np
        out = sys.argv[1]
        study, series, frame = generate_uid(), generate_uid(), generate_uid()
        for k in range(3):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.2'
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset(); ds.file_meta = meta
            ds.SOPClassUID = meta.MediaStorageSOPClassUID; ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.PatientName = 'Flip^Sagittal'; ds.PatientID = 'FLIP1'; ds.PatientBirthDate = ''; ds.PatientSex = 'O'
            ds.StudyInstanceUID = study; ds.StudyDate = '20240102'; ds.StudyTime = '101500'; ds.StudyID = '7'
            ds.AccessionNumber = 'A7'; ds.ReferringPhysicianName = ''
            ds.SeriesInstanceUID = series; ds.SeriesNumber = 3; ds.Modality = 'CT'
            ds.FrameOfReferenceUID = frame; ds.PositionReferenceIndicator = ''
            ds.Manufacturer = 'test'; ds.InstanceNumber = k + 1; ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
            ds.ImagePositionPatient = [12.5 - 1.5 * k, 40.0, 30.0]
            ds.ImageOrientationPatient = [0, -1, 0, 0, 0, -1]
            ds.PixelSpacing = [0.8, 0.6]; ds.SliceThickness = 1.5
            ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = 'MONOCHROME2'
            ds.Rows = 7; ds.Columns = 5; ds.BitsAllocated = 16; ds.BitsStored = 16; ds.HighBit = 15
            ds.PixelRepresentation = 1; ds.RescaleIntercept = 0; ds.RescaleSlope = 1; ds.KVP = 120
            ds.AcquisitionNumber = 1
            ds.PixelData = (np.arange(35, dtype='<i2').reshape(7, 5) * (k + 1)).tobytes()
            ds.save_as(f'{out}/slice{k}.dcm', enforce_file_format=True)
        """, [dir.path])
        return try series((0..<3).map { dir.appendingPathComponent("slice\($0).dcm").path })
    }

    /// Writes a SEG, copies it (and its mask and sources) to SEGMENT_SEG_OUT when set, and returns its summary.
    func write(_ name: String, _ labels: [UInt8], _ s: Series, _ segments: [SegmentDescription], to path: String) throws -> SegSummary {
        let summary = try SegWriter.write(labels: labels, geometry: s.geometry, sources: s.sources, segments: segments,
                                          algorithm: Self.algorithm, seriesDescription: "segment \(name)", to: path)
        if let out = ProcessInfo.processInfo.environment["SEGMENT_SEG_OUT"], !out.isEmpty {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let dest = URL(fileURLWithPath: out).appendingPathComponent("\(name).dcm")
            try? FileManager.default.removeItem(at: dest)
            try FileManager.default.copyItem(atPath: path, toPath: dest.path)
            let sidecar: [String: Any] = [
                "slices": s.sources.count, "rows": s.geometry.rows, "columns": s.geometry.columns,
                "labels": labels.map(Int.init),
                "sources": s.sources.map { ["path": $0.path, "sop_instance_uid": $0.sopInstanceUID, "position": $0.position] },
                "segments": segments.map { ["label": $0.label, "name": $0.name, "type": $0.type.value, "category": $0.category.value] },
                "frames": summary.frames,
            ]
            try JSONSerialization.data(withJSONObject: sidecar)
                .write(to: URL(fileURLWithPath: out).appendingPathComponent("\(name).json"))
        }
        return summary
    }

    /// A label map of `s`: value(k, r, c) for slice k, row r, column c. Buffer [slices][rows][columns].
    func labels(_ s: Series, _ value: (Int, Int, Int) -> UInt8) -> [UInt8] {
        var out: [UInt8] = []
        for k in 0..<s.sources.count { for r in 0..<s.geometry.rows { for c in 0..<s.geometry.columns { out.append(value(k, r, c)) } } }
        return out
    }

    /// The frames of a written SEG: (referenced segment number, plane position) per frame, in file order.
    func frames(_ path: String) throws -> [(segment: Int, position: [Double])] {
        let f = try DICOMFile(path)
        let n = Int(try XCTUnwrap(f.number(Tag.numberOfFrames)))
        return try (0..<n).map { i in
            let segment = try XCTUnwrap(f.frameNumbers(i, group: 0x0062_000A, 0x0062_000B, count: 1))[0]
            let position = try XCTUnwrap(f.frameNumbers(i, group: Tag.planePositionSequence, Tag.imagePositionPatient, count: 3))
            return (Int(segment), position)
        }
    }

    func testCT5NLiverAndTumourFramesOnlyWhereTheyAre() throws {
        let s = try ct5n()
        let dir = try TestSupport.temporaryDirectory(self)
        // Liver: a 6 x 8 block in slices 1...3; tumour: a 2 x 3 block inside it on slice 2; slices 0 and 4 empty.
        let mask = labels(s) { k, r, c in
            if k == 2 && (5...6).contains(r) && (4...6).contains(c) { return 2 }
            return (1...3).contains(k) && (3...8).contains(r) && (2...9).contains(c) ? 1 : 0
        }
        let out = dir.appendingPathComponent("seg.dcm").path
        let summary = try write("ct5n", mask, s, [Self.liver, Self.tumour], to: out)
        XCTAssertEqual(summary.frames, 4)   // liver on slices 1, 2, 3; tumour on slice 2
        XCTAssertEqual(summary.segments, 2)
        XCTAssertEqual(summary.emptySegments, [])

        let seg = try DICOMFile(out)
        let source = try DICOMFile(s.sources[0].path)
        XCTAssertEqual(seg.string(Tag.sopClassUID), Self.segStorage)
        XCTAssertEqual(seg.string(Tag.modality), "SEG")
        XCTAssertEqual(seg.string(Tag.sopInstanceUID), summary.sopInstanceUID)
        XCTAssertEqual(seg.string(Tag.seriesInstanceUID), summary.seriesInstanceUID)
        XCTAssertNotEqual(summary.seriesInstanceUID, source.string(Tag.seriesInstanceUID))
        for tag in [Tag.studyInstanceUID, Tag.frameOfReferenceUID, Tag.patientID] {
            XCTAssertNotNil(source.string(tag))
            XCTAssertEqual(seg.string(tag), source.string(tag), String(format: "tag %08X", tag))
        }
        XCTAssertEqual(seg.string(0x0062_0001), "BINARY")   // SegmentationType
        XCTAssertEqual(seg.number(Tag.bitsAllocated), 1)
        XCTAssertEqual(seg.number(Tag.rows), 16)
        XCTAssertEqual(seg.string(Tag.seriesDescription), "segment ct5n")
        let f = try frames(out)
        XCTAssertEqual(f.map(\.segment), [1, 1, 1, 2])
        // Each frame's plane position is its source slice's, exactly as DS can hold it (the sources' values have
        // at most 6 decimals, well within DS's 16 characters).
        for (frame, k) in zip(f, [1, 2, 3, 2]) {
            for i in 0..<3 { XCTAssertEqual(frame.position[i], s.sources[k].position[i], accuracy: 1e-9) }
        }
        // Orientation and spacing are shared, and equal the source's.
        XCTAssertEqual(seg.frameNumbers(0, group: Tag.planeOrientationSequence, Tag.imageOrientationPatient, count: 6),
                       s.geometry.orientation)
        XCTAssertEqual(seg.frameNumbers(0, group: Tag.pixelMeasuresSequence, Tag.pixelSpacing, count: 2), s.geometry.pixelSpacing)
    }

    func testFlippedOddSizedSeriesKeepsItsPositions() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let s = try flippedSeries(in: dir)
        XCTAssertEqual(s.geometry.orientation, [0, -1, 0, 0, 0, -1])
        // An asymmetric pattern (an L in the first rows) shows any mirroring; label 2 only on the last slice.
        let mask = labels(s) { k, r, c in
            if k == 2 && r == 6 && c == 4 { return 2 }
            return (r == 0 || c == 0) && k < 2 ? 1 : 0
        }
        let out = dir.appendingPathComponent("flipped.dcm").path
        let summary = try write("flipped", mask, s, [Self.liver, Self.tumour], to: out)
        XCTAssertEqual(summary.frames, 3)
        let f = try frames(out)
        XCTAssertEqual(f.map(\.segment), [1, 1, 2])
        for (frame, k) in zip(f, [0, 1, 2]) { XCTAssertEqual(frame.position, s.sources[k].position) }
    }

    func testAClassWithNoVoxelGetsOneEmptyFrame() throws {
        let s = try ct5n()
        let dir = try TestSupport.temporaryDirectory(self)
        let mask = labels(s) { k, r, c in k == 0 && r == 0 && c < 3 ? 1 : 0 }
        let summary = try write("no-tumour", mask, s, [Self.liver, Self.tumour], to: dir.appendingPathComponent("seg.dcm").path)
        XCTAssertEqual(summary.frames, 2)   // the liver's frame on slice 0, and the tumour's empty frame there
        XCTAssertEqual(summary.emptySegments, ["liver tumour"])
        let f = try frames(dir.appendingPathComponent("seg.dcm").path)
        XCTAssertEqual(f.map(\.segment), [1, 2])
        XCTAssertEqual(f[1].position, s.sources[0].position)
    }

    func testAnEmptyMaskGetsOneEmptyFramePerSegment() throws {
        let s = try ct5n()
        let dir = try TestSupport.temporaryDirectory(self)
        let out = dir.appendingPathComponent("seg.dcm").path
        let summary = try write("empty", labels(s) { _, _, _ in 0 }, s, [Self.liver, Self.tumour], to: out)
        XCTAssertEqual(summary.frames, 2)
        XCTAssertEqual(summary.emptySegments, ["liver", "liver tumour"])
        let f = try frames(out)
        XCTAssertEqual(f.map(\.segment), [1, 2])
        XCTAssertEqual(f.map(\.position), [s.sources[0].position, s.sources[0].position])
    }

    func testFallbackCodesAreTissue() throws {
        let d = SegmentDescription.fallback(label: 3, name: "kidney")
        XCTAssertEqual(d.type, CodedConcept(value: "85756007", scheme: "SCT", meaning: "Tissue"))
        XCTAssertEqual(d.category, d.type)
        XCTAssertEqual(d.name, "kidney")
        XCTAssertNotNil(d.cielab)
    }

    func testRefusals() throws {
        let s = try ct5n()
        let dir = try TestSupport.temporaryDirectory(self)
        let out = dir.appendingPathComponent("seg.dcm").path
        let mask = labels(s) { k, _, _ in k == 1 ? 3 : 0 }
        // A label no segment describes would silently vanish from the SEG: refused, as a bug of the caller.
        XCTAssertThrowsError(try write("x", mask, s, [Self.liver], to: out)) { e in
            XCTAssertEqual((e as? SegmentError)?.exitCode, .internalError)
            XCTAssertTrue("\(e)".contains("label 3"), "\(e)")
        }
        // A source file that cannot be read: exit 3, naming it.
        var missing = s
        missing.sources[0].path = dir.appendingPathComponent("gone.dcm").path
        XCTAssertThrowsError(try write("x", labels(s) { _, _, _ in 1 }, missing, [Self.liver], to: out)) { e in
            XCTAssertEqual((e as? SegmentError)?.exitCode, .invalidInput)
            XCTAssertTrue("\(e)".contains("gone.dcm"), "\(e)")
        }
        // A code DICOM cannot hold (a code value over 16 characters).
        var long = Self.liver
        long.type.value = String(repeating: "1", count: 17)
        XCTAssertThrowsError(try write("x", labels(s) { _, _, _ in 1 }, s, [long], to: out))
        // An output folder that does not exist: exit 5, and nothing is left behind.
        let bad = dir.appendingPathComponent("no/such/folder/seg.dcm").path
        XCTAssertThrowsError(try write("x", labels(s) { _, _, _ in 1 }, s, [Self.liver], to: bad)) { e in
            XCTAssertEqual((e as? SegmentError)?.exitCode, .outputNotWritable)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testASourceWithoutFrameOfReferenceIsRefused() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let s = try flippedSeries(in: dir)
        try TestSupport.python("""
        import sys, pydicom
        ds = pydicom.dcmread(sys.argv[1]); del ds.FrameOfReferenceUID; ds.save_as(sys.argv[1])
        """, [s.sources[0].path])
        let out = dir.appendingPathComponent("seg.dcm").path
        XCTAssertThrowsError(try write("x", labels(s) { _, _, _ in 1 }, s, [Self.liver], to: out)) { e in
            XCTAssertEqual((e as? SegmentError)?.exitCode, .invalidInput)
            XCTAssertTrue("\(e)".contains("FrameOfReferenceUID"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
