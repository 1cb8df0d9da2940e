// The DICOM Segmentation output (docs/DICOM.md, "The SEG written"): a label map on the grid of a source series becomes
// a BINARY SEG through SegmentDCMTK's sdcm_write_seg, written atomically.
import Foundation
import SegmentCore
import SegmentDCMTK

/// One segment of a SEG: the voxels of the label map equal to `label`.
public struct SegmentDescription: Sendable, Equatable {
    public var label: Int                          // the mask value, 1...255
    public var name: String                        // SegmentLabel
    public var category: CodedConcept              // SegmentedPropertyCategoryCodeSequence
    public var type: CodedConcept                  // SegmentedPropertyTypeCodeSequence
    public var cielab: (UInt16, UInt16, UInt16)?   // RecommendedDisplayCIELabValue, DICOM-scaled

    public init(label: Int, name: String, category: CodedConcept, type: CodedConcept, cielab: (UInt16, UInt16, UInt16)? = nil) {
        self.label = label; self.name = name; self.category = category; self.type = type; self.cielab = cielab
    }

    public static func == (a: SegmentDescription, b: SegmentDescription) -> Bool {
        a.label == b.label && a.name == b.name && a.category == b.category && a.type == b.type
            && a.cielab.map { [$0.0, $0.1, $0.2] } == b.cielab.map { [$0.0, $0.1, $0.2] }
    }

    /// SNOMED CT "Tissue" (85756007), the category and type of a class whose model file carries no codes: true of
    /// any segmented region, so a viewer shows it under its name without claiming an anatomy. `SegWriter` users warn
    /// when they fall back to it.
    public static let tissue = CodedConcept(value: "85756007", scheme: "SCT", meaning: "Tissue")

    /// The description of a class without codes: named after the class, category and type `tissue`.
    public static func fallback(label: Int, name: String) -> SegmentDescription {
        SegmentDescription(label: label, name: name, category: tissue, type: tissue, cielab: SegColour.palette(label))
    }
}

/// The slice of the source series a SEG frame is derived from.
public struct SourceFrame: Sendable, Equatable {
    public var path: String
    public var sopClassUID: String
    public var sopInstanceUID: String
    public var frameNumber: Int?     // 1-based, for a multi-frame source
    public var position: [Double]    // ImagePositionPatient, LPS mm

    public init(path: String, sopClassUID: String, sopInstanceUID: String, frameNumber: Int? = nil, position: [Double]) {
        self.path = path; self.sopClassUID = sopClassUID; self.sopInstanceUID = sopInstanceUID
        self.frameNumber = frameNumber; self.position = position
    }
}

/// The grid of the source series, which the SEG shares.
public struct SegGeometry: Sendable, Equatable {
    public var rows: Int
    public var columns: Int
    public var pixelSpacing: [Double]   // [between rows, between columns] mm, as DICOM
    public var sliceThickness: Double
    public var orientation: [Double]    // ImageOrientationPatient, 6 values

    public init(rows: Int, columns: Int, pixelSpacing: [Double], sliceThickness: Double, orientation: [Double]) {
        self.rows = rows; self.columns = columns; self.pixelSpacing = pixelSpacing
        self.sliceThickness = sliceThickness; self.orientation = orientation
    }
}

/// Who made the segmentation: written to each segment's SegmentationAlgorithmIdentificationSequence and to the
/// General Equipment module.
public struct SegAlgorithm: Sendable, Equatable {
    public var name: String            // "segment"
    public var version: String
    public var modelName: String
    public var modelChecksum: String

    public init(name: String, version: String, modelName: String, modelChecksum: String) {
        self.name = name; self.version = version; self.modelName = modelName; self.modelChecksum = modelChecksum
    }
}

/// What a SEG holds, for the run report.
public struct SegSummary: Codable, Sendable, Equatable {
    public var seriesInstanceUID: String
    public var sopInstanceUID: String
    public var frames: Int
    public var segments: Int
    /// Segments with no voxel in the mask: described in the SEG, with one empty frame on the first slice.
    public var emptySegments: [String]

    enum CodingKeys: String, CodingKey {
        case seriesInstanceUID = "series_instance_uid", sopInstanceUID = "sop_instance_uid", frames, segments
        case emptySegments = "empty_segments"
    }
}

/// Why a SEG was not written.
public enum SegWriteError: SegmentError, Equatable {
    /// The source series cannot supply what a SEG must copy (exit 3).
    case source(path: String, reason: String)
    /// The caller's arguments are inconsistent: a bug of segment (exit 1).
    case request(reason: String)
    /// DCMTK could not build or write the file (exit 5).
    case write(path: String, reason: String)

    public var exitCode: ExitStatus {
        switch self {
        case .source: return .invalidInput
        case .request: return .internalError
        case .write: return .outputNotWritable
        }
    }

    public var description: String {
        switch self {
        case let .source(path, reason): return "cannot write a DICOM SEG of the series of \(path): \(reason)."
        case let .request(reason): return "cannot write a DICOM SEG: \(reason) (a bug of segment: please report it)."
        case let .write(path, reason): return "cannot write \(path): \(reason). Check the folder exists and is writable, and there is free space."
        }
    }
}

public enum SegWriter {
    /// Writes a BINARY DICOM Segmentation of `labels` to `path`, atomically.
    ///
    /// labels: (slices, rows, columns), columns fastest: slice k is the frame of sources[k] (sources in slice order),
    /// rows and columns as the source's pixel rows and columns (no reorientation: the SEG shares the source's grid).
    /// One segment per description; frames only for (segment, slice) pairs with a voxel of that segment. A segment
    /// with no voxel at all (and so a mask with no foreground) still is described, with one empty frame on the first
    /// slice, since DCMTK and readers refuse a segment no frame refers to; the summary lists it in `emptySegments`.
    /// Every nonzero label in the mask must have a description.
    public static func write(labels: [UInt8], geometry: SegGeometry, sources: [SourceFrame], segments: [SegmentDescription],
                             algorithm: SegAlgorithm, seriesDescription: String, to path: String) throws -> SegSummary {
        try check(labels: labels, geometry: geometry, sources: sources, segments: segments)
        var present = [Bool](repeating: false, count: 256)
        for v in labels { present[Int(v)] = true }
        let empty = segments.filter { !present[$0.label] }.map(\.name)

        let strings = CStrings()
        let first = sources[0].path
        var params = sdcm_seg_params()
        params.rows = UInt32(geometry.rows)
        params.columns = UInt32(geometry.columns)
        params.pixel_spacing = (geometry.pixelSpacing[0], geometry.pixelSpacing[1])
        params.slice_thickness = geometry.sliceThickness
        let o = geometry.orientation
        params.orientation = (o[0], o[1], o[2], o[3], o[4], o[5])
        params.first_source_path = strings[first]
        params.series_description = strings[seriesDescription]
        params.algorithm_name = strings[algorithm.name]
        params.algorithm_version = strings[algorithm.version]
        params.model_name = strings[algorithm.modelName]
        params.model_checksum = strings[algorithm.modelChecksum]

        let cSources = sources.map { s in
            sdcm_seg_source(sop_class_uid: strings[s.sopClassUID], sop_instance_uid: strings[s.sopInstanceUID],
                            frame_number: UInt32(s.frameNumber ?? 0), position: (s.position[0], s.position[1], s.position[2]))
        }
        let cSegments = segments.map { d in
            sdcm_seg_segment(label: UInt8(d.label), name: strings[d.name],
                             category: sdcm_code(value: strings[d.category.value], scheme: strings[d.category.scheme],
                                                 meaning: strings[d.category.meaning]),
                             type: sdcm_code(value: strings[d.type.value], scheme: strings[d.type.scheme], meaning: strings[d.type.meaning]),
                             has_cielab: d.cielab == nil ? 0 : 1,
                             cielab: d.cielab ?? (0, 0, 0))
        }
        // The C structs point into `strings`: it must outlive the call.
        return try withExtendedLifetime(strings) { try AtomicFile.write(to: path) { tmp in
            var result = sdcm_seg_result()
            var err = [CChar](repeating: 0, count: 1024)
            let rc = sdcm_write_seg(&params, cSources, cSources.count, cSegments, cSegments.count, labels, tmp, &result, &err, err.count)
            let reason = String(cString: err)
            switch rc {
            case Int32(SDCM_SEG_OK): break
            case Int32(SDCM_SEG_BAD_SOURCE): throw SegWriteError.source(path: first, reason: reason)
            case Int32(SDCM_SEG_BAD_REQUEST): throw SegWriteError.request(reason: reason)
            default: throw SegWriteError.write(path: path, reason: reason)
            }
            let series = withUnsafeBytes(of: result.series_instance_uid) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            let instance = withUnsafeBytes(of: result.sop_instance_uid) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            return SegSummary(seriesInstanceUID: series, sopInstanceUID: instance, frames: result.frames,
                              segments: segments.count, emptySegments: empty)
        } }
    }

    /// The arguments' consistency: shapes, labels, codes and numbers (before DCMTK sees them).
    static func check(labels: [UInt8], geometry g: SegGeometry, sources: [SourceFrame], segments: [SegmentDescription]) throws {
        func fail(_ reason: String) -> SegWriteError { .request(reason: reason) }
        guard (1...65535).contains(g.rows), (1...65535).contains(g.columns) else {
            throw fail("rows \(g.rows) and columns \(g.columns) must be 1...65535")
        }
        guard !sources.isEmpty else { throw fail("no source frame") }
        guard labels.count == sources.count * g.rows * g.columns else {
            throw fail("the label map has \(labels.count) voxels, not \(sources.count) slices x \(g.rows) rows x \(g.columns) columns")
        }
        guard g.pixelSpacing.count == 2, g.orientation.count == 6 else { throw fail("PixelSpacing needs 2 values and ImageOrientationPatient 6") }
        let first = sources[0].path
        guard (g.pixelSpacing + [g.sliceThickness] + g.orientation).allSatisfy(\.isFinite),
              g.pixelSpacing.allSatisfy({ $0 > 0 }), g.sliceThickness >= 0 else {
            throw SegWriteError.source(path: first, reason: "its PixelSpacing \(g.pixelSpacing), SliceThickness \(g.sliceThickness) or ImageOrientationPatient \(g.orientation) is not a valid geometry")
        }
        for s in sources {
            guard s.position.count == 3, s.position.allSatisfy(\.isFinite) else {
                throw SegWriteError.source(path: s.path, reason: "its ImagePositionPatient \(s.position) is not 3 finite numbers")
            }
            if let f = s.frameNumber, !(1...65535).contains(f) { throw fail("source frame number \(f) of \(s.path) is outside 1...65535") }
            guard !s.sopClassUID.isEmpty, !s.sopInstanceUID.isEmpty else {
                throw SegWriteError.source(path: s.path, reason: "it lacks SOPClassUID or SOPInstanceUID, which the SEG must reference")
            }
        }
        guard !segments.isEmpty, segments.count <= 255 else { throw fail("\(segments.count) segments (a SEG of a label map has 1...255)") }
        var described = [Bool](repeating: false, count: 256)
        for d in segments {
            guard (1...255).contains(d.label) else { throw fail("segment \"\(d.name)\" has label \(d.label), outside 1...255") }
            guard !described[d.label] else { throw fail("label \(d.label) is described twice") }
            described[d.label] = true
            guard !d.name.isEmpty, d.name.count <= 64, !d.name.contains("\\") else {
                throw fail("segment \(d.label)'s name \"\(d.name)\" must have 1...64 characters and no backslash")
            }
            if let p = d.category.problem { throw fail("segment \"\(d.name)\"'s category \(d.category): \(p)") }
            if let p = d.type.problem { throw fail("segment \"\(d.name)\"'s type \(d.type): \(p)") }
        }
        var seen = [Bool](repeating: false, count: 256)
        for v in labels { seen[Int(v)] = true }
        if let undescribed = (1...255).first(where: { seen[$0] && !described[$0] }) {
            throw fail("the mask holds label \(undescribed), which no segment describes")
        }
    }
}

/// Recommended display colours, as DICOM's CIELab values (PS3.3 C.10.7.1.1: L* scaled from 0...100 and a*, b* from
/// -128...127 to 0...65535).
public enum SegColour {
    /// The DICOM CIELab value of an sRGB colour (components 0...255): sRGB to linear light, to CIE XYZ (sRGB's D65
    /// matrix), to CIE L*a*b* relative to the D65 white point.
    public static func cielab(red: Int, green: Int, blue: Int) -> (UInt16, UInt16, UInt16) {
        func linear(_ c: Int) -> Double {
            let v = Double(c) / 255
            return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4)
        }
        let r = linear(red), g = linear(green), b = linear(blue)
        let x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047
        let y = (0.2126729 * r + 0.7151522 * g + 0.0721750 * b) / 1.0
        let z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883
        func f(_ t: Double) -> Double { t > 216.0 / 24389.0 ? cbrt(t) : (24389.0 / 27.0 * t + 16) / 116 }
        let l = 116 * f(y) - 16, a = 500 * (f(x) - f(y)), bb = 200 * (f(y) - f(z))
        func scale(_ v: Double, _ lo: Double, _ hi: Double) -> UInt16 {
            UInt16(max(0, min(65535, ((v - lo) * 65535 / (hi - lo)).rounded())))
        }
        return (scale(l, 0, 100), scale(a, -128, 127), scale(bb, -128, 127))
    }

    /// The sRGB colours of labels 1, 2, ... (cycled): distinct hues readable over a grey CT.
    static let rgb: [(Int, Int, Int)] = [(221, 130, 101), (241, 214, 145), (128, 174, 128), (111, 184, 210),
                                         (216, 101, 79), (183, 156, 220), (144, 238, 144), (255, 255, 0)]

    /// The default colour of label `label` (1...).
    public static func palette(_ label: Int) -> (UInt16, UInt16, UInt16) {
        let c = rgb[(max(label, 1) - 1) % rgb.count]
        return cielab(red: c.0, green: c.1, blue: c.2)
    }
}

/// C copies of Swift strings that live as long as this value (the C structs point into them).
private final class CStrings {
    private var owned: [UnsafeMutablePointer<CChar>] = []
    subscript(_ s: String) -> UnsafePointer<CChar> {
        let p = strdup(s)!
        owned.append(p)
        return UnsafePointer(p)
    }
    deinit { owned.forEach { free($0) } }
}
