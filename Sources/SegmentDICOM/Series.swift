// DICOM series as cases: every DICOM Part 10 file under a folder, grouped by SeriesInstanceUID. Only headers are read
// here (pixel data stays on disk until the series is assembled); what a file holds is recorded frame by frame, so a
// multi-frame (enhanced) object and a stack of single-frame files are the same thing to the assembly.
import Foundation
import SegmentCore

/// One frame of a series: which file (and which frame of it) holds its pixels, and where it lies.
public struct SeriesFrame: Codable, Equatable, Sendable {
    public var path: String
    /// 0-based frame of a multi-frame file; nil for a single-frame file.
    public var frame: Int?
    public var sopClassUID: String
    public var sopInstanceUID: String
    /// ImagePositionPatient: the centre of the first transmitted pixel, LPS mm. Nil when the file lacks it.
    public var position: [Double]?
    /// ImageOrientationPatient: the row direction (along a row, i.e. as the column index grows), then the column
    /// direction, LPS unit vectors. Nil when absent.
    public var orientation: [Double]?
    public var rows: Int
    public var columns: Int
    /// PixelSpacing: [between rows, between columns] mm. Nil when absent.
    public var pixelSpacing: [Double]?
    /// SliceThickness, mm (used only for a series of one slice).
    public var sliceThickness: Double?
    /// BitsStored and PixelRepresentation 1 (two's complement), which bound the stored values.
    public var bitsStored: Int
    public var signed: Bool
    /// RescaleSlope and RescaleIntercept (1 and 0 when absent, as for MR).
    public var slope: Double
    public var intercept: Double
}

/// A series found on disk.
public struct DICOMSeries: Codable, Equatable, Sendable {
    public var seriesInstanceUID: String
    public var studyInstanceUID: String?
    public var frameOfReferenceUID: String?
    public var description: String?
    public var modality: String?
    /// The files holding the series, in path order.
    public var files: [String]
    /// Frames in file order (the assembly sorts them in space).
    public var frames: [SeriesFrame]
    /// Transfer syntax UIDs of the files (usually one).
    public var transferSyntaxes: [String]

    /// The deepest folder holding every file of the series.
    public var folder: String {
        var common = files.first.map { ($0 as NSString).deletingLastPathComponent.split(separator: "/", omittingEmptySubsequences: false) } ?? []
        for f in files.dropFirst() {
            let parts = (f as NSString).deletingLastPathComponent.split(separator: "/", omittingEmptySubsequences: false)
            common = Array(zip(common, parts).prefix { $0 == $1 }.map(\.0))
        }
        let joined = common.joined(separator: "/")
        return joined.isEmpty ? (files.first?.hasPrefix("/") == true ? "/" : ".") : joined
    }
}

public enum SeriesDiscovery {
    /// Storage SOP classes that hold no image to segment although some carry pixel data (a segmentation, say).
    static let nonImageClasses: Set<String> = [
        "1.2.840.10008.1.3.10",             // Media Storage Directory (DICOMDIR)
        "1.2.840.10008.5.1.4.1.1.66.4",     // Segmentation
        "1.2.840.10008.5.1.4.1.1.481.3",    // RT Structure Set
    ]

    /// The series under `folder` (searched recursively; hidden entries skipped), ordered by SeriesInstanceUID. Files
    /// that are not DICOM Part 10 are ignored, as are DICOMDIR, segmentations and objects without pixel data. A
    /// Part 10 file that DCMTK cannot read fails the whole search (it cannot be told to which series it belongs).
    public static func series(in folder: String) throws -> [DICOMSeries] {
        try group(files(under: folder).filter(DICOMFile.isPart10))
    }

    /// The series of one Part 10 file (a multi-frame object, or a single slice).
    public static func series(ofFile path: String) throws -> [DICOMSeries] {
        try group([path])
    }

    /// Regular files under `folder`, in path order, hidden entries and symbolic-link loops skipped.
    static func files(under folder: String) throws -> [String] {
        let fm = FileManager.default
        guard let walker = fm.enumerator(at: URL(fileURLWithPath: folder), includingPropertiesForKeys: [.isRegularFileKey],
                                         options: [.skipsHiddenFiles]) else {
            throw DICOMError.unreadable(path: folder, reason: "the folder cannot be listed")
        }
        var out: [String] = []
        for case let url as URL in walker {
            if (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true { out.append(url.path) }
        }
        return out.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    static func group(_ paths: [String]) throws -> [DICOMSeries] {
        var bySeries: [String: DICOMSeries] = [:]
        for path in paths {
            let f = try DICOMFile(path)
            let sopClass = f.string(Tag.sopClassUID) ?? f.string(Tag.mediaStorageSOPClassUID) ?? ""
            if nonImageClasses.contains(sopClass) { continue }
            guard f.number(Tag.rows) != nil || f.number(Tag.numberOfFrames) != nil, f.hasPixelData else { continue }
            guard let uid = f.string(Tag.seriesInstanceUID) else {
                throw DICOMError.missingAttribute(path: path, attribute: "SeriesInstanceUID (0020,000E)")
            }
            var s = bySeries[uid] ?? DICOMSeries(
                seriesInstanceUID: uid, studyInstanceUID: f.string(Tag.studyInstanceUID),
                frameOfReferenceUID: f.string(Tag.frameOfReferenceUID), description: f.string(Tag.seriesDescription),
                modality: f.string(Tag.modality), files: [], frames: [], transferSyntaxes: [])
            s.files.append(path)
            let ts = f.string(Tag.transferSyntaxUID) ?? ""
            if !s.transferSyntaxes.contains(ts) { s.transferSyntaxes.append(ts) }
            s.frames += try frames(of: f, sopClass: sopClass)
            bySeries[uid] = s
        }
        return bySeries.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { bySeries[$0]! }
    }

    /// The frames of one file. A multi-frame object's geometry is in its functional groups; a single-frame image's
    /// in its top-level attributes.
    static func frames(of f: DICOMFile, sopClass: String) throws -> [SeriesFrame] {
        let rows = Int(f.number(Tag.rows) ?? 0), columns = Int(f.number(Tag.columns) ?? 0)
        let sop = f.string(Tag.sopInstanceUID) ?? ""
        let count = Int(f.number(Tag.numberOfFrames) ?? 1)
        guard count >= 1, count <= 1 << 20 else {
            throw DICOMError.unsupported(path: f.path, what: "NumberOfFrames is \(count)")
        }
        let bitsStored = Int(f.number(Tag.bitsStored) ?? 16), signed = f.number(Tag.pixelRepresentation) == 1
        let multiFrame = f.hasFunctionalGroups
        return (0..<count).map { k in
            if multiFrame {
                let rescale = f.frameNumbers(k, group: Tag.pixelValueTransformationSequence, Tag.rescaleSlope, count: 1)
                let intercept = f.frameNumbers(k, group: Tag.pixelValueTransformationSequence, Tag.rescaleIntercept, count: 1)
                return SeriesFrame(
                    path: f.path, frame: k, sopClassUID: sopClass, sopInstanceUID: sop,
                    position: f.frameNumbers(k, group: Tag.planePositionSequence, Tag.imagePositionPatient, count: 3),
                    orientation: f.frameNumbers(k, group: Tag.planeOrientationSequence, Tag.imageOrientationPatient, count: 6),
                    rows: rows, columns: columns,
                    pixelSpacing: f.frameNumbers(k, group: Tag.pixelMeasuresSequence, Tag.pixelSpacing, count: 2),
                    sliceThickness: f.frameNumbers(k, group: Tag.pixelMeasuresSequence, Tag.sliceThickness, count: 1)?[0],
                    bitsStored: bitsStored, signed: signed,
                    slope: rescale?[0] ?? f.number(Tag.rescaleSlope) ?? 1,
                    intercept: intercept?[0] ?? f.number(Tag.rescaleIntercept) ?? 0)
            }
            return SeriesFrame(
                path: f.path, frame: count > 1 ? k : nil, sopClassUID: sopClass, sopInstanceUID: sop,
                position: f.numbers(Tag.imagePositionPatient, count: 3),
                orientation: f.numbers(Tag.imageOrientationPatient, count: 6),
                rows: rows, columns: columns, pixelSpacing: f.numbers(Tag.pixelSpacing, count: 2),
                sliceThickness: f.number(Tag.sliceThickness), bitsStored: bitsStored, signed: signed,
                slope: f.number(Tag.rescaleSlope) ?? 1, intercept: f.number(Tag.rescaleIntercept) ?? 0)
        }
    }
}
