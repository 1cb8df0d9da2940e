// One DICOM file through SegmentDCMTK: its attributes by tag, and its pixel values.
import Foundation
import SegmentCore
import SegmentDCMTK

/// The attributes segment reads, as (group << 16) | element.
public enum Tag {
    public static let transferSyntaxUID: UInt32 = 0x0002_0010
    public static let mediaStorageSOPClassUID: UInt32 = 0x0002_0002
    public static let sopClassUID: UInt32 = 0x0008_0016
    public static let sopInstanceUID: UInt32 = 0x0008_0018
    public static let modality: UInt32 = 0x0008_0060
    public static let seriesDescription: UInt32 = 0x0008_103E
    public static let patientID: UInt32 = 0x0010_0020
    public static let studyInstanceUID: UInt32 = 0x0020_000D
    public static let seriesInstanceUID: UInt32 = 0x0020_000E
    public static let seriesNumber: UInt32 = 0x0020_0011
    public static let instanceNumber: UInt32 = 0x0020_0013
    public static let imagePositionPatient: UInt32 = 0x0020_0032
    public static let imageOrientationPatient: UInt32 = 0x0020_0037
    public static let frameOfReferenceUID: UInt32 = 0x0020_0052
    public static let samplesPerPixel: UInt32 = 0x0028_0002
    public static let photometricInterpretation: UInt32 = 0x0028_0004
    public static let numberOfFrames: UInt32 = 0x0028_0008
    public static let rows: UInt32 = 0x0028_0010
    public static let columns: UInt32 = 0x0028_0011
    public static let pixelSpacing: UInt32 = 0x0028_0030
    public static let bitsAllocated: UInt32 = 0x0028_0100
    public static let bitsStored: UInt32 = 0x0028_0101
    public static let pixelRepresentation: UInt32 = 0x0028_0103
    public static let rescaleIntercept: UInt32 = 0x0028_1052
    public static let rescaleSlope: UInt32 = 0x0028_1053
    public static let sliceThickness: UInt32 = 0x0018_0050
    public static let spacingBetweenSlices: UInt32 = 0x0018_0088
    public static let pixelData: UInt32 = 0x7FE0_0010
    // Functional group macros of multi-frame objects, and their attributes.
    public static let perFrameFunctionalGroupsSequence: UInt32 = 0x5200_9230
    public static let sharedFunctionalGroupsSequence: UInt32 = 0x5200_9229
    public static let planePositionSequence: UInt32 = 0x0020_9113
    public static let planeOrientationSequence: UInt32 = 0x0020_9116
    public static let pixelMeasuresSequence: UInt32 = 0x0028_9110
    public static let pixelValueTransformationSequence: UInt32 = 0x0028_9145
}

/// An opened DICOM Part 10 file. Not shared between threads.
public final class DICOMFile {
    public let path: String
    private let handle: OpaquePointer

    /// Opens `path`; throws DICOMError.unreadable naming the file and DCMTK's reason.
    public init(_ path: String) throws {
        self.path = path
        var err = [CChar](repeating: 0, count: 512)
        guard let h = sdcm_open(path, &err, err.count) else {
            throw DICOMError.unreadable(path: path, reason: String(cString: err))
        }
        handle = h
    }
    deinit { sdcm_close(handle) }

    /// True when `path` is a regular file starting with the DICOM Part 10 preamble and "DICM".
    public static func isPart10(_ path: String) -> Bool { sdcm_is_part10(path) != 0 }

    /// A string attribute (all its values, backslash-separated), or nil when absent or empty.
    public func string(_ tag: UInt32) -> String? {
        var out = [CChar](repeating: 0, count: 4096)
        guard sdcm_string(handle, tag, &out, out.count) == SDCM_OK else { return nil }
        return String(cString: out)
    }

    /// Value `index` of a numeric attribute, or nil when absent or not a number.
    public func number(_ tag: UInt32, _ index: Int = 0) -> Double? {
        var v = 0.0
        return sdcm_number(handle, tag, UInt32(index), &v) == SDCM_OK && v.isFinite ? v : nil
    }

    /// All `count` values of a numeric attribute, or nil unless it has exactly `count` finite numbers.
    public func numbers(_ tag: UInt32, count: Int) -> [Double]? {
        guard sdcm_value_count(handle, tag) == Int32(count) else { return nil }
        let v = (0..<count).compactMap { number(tag, $0) }
        return v.count == count ? v : nil
    }

    /// `count` values of numeric attribute `tag` in functional group `group` of frame `frame` (0-based): per-frame
    /// groups first, then shared.
    public func frameNumbers(_ frame: Int, group: UInt32, _ tag: UInt32, count: Int) -> [Double]? {
        var out: [Double] = []
        for i in 0..<count {
            var v = 0.0
            guard sdcm_frame_number(handle, UInt32(frame), group, tag, UInt32(i), &v) == SDCM_OK, v.isFinite else { return nil }
            out.append(v)
        }
        return out
    }

    /// True when the dataset has PixelData.
    public var hasPixelData: Bool { sdcm_has(handle, Tag.pixelData) != 0 }

    /// True for a multi-frame object whose geometry is in functional groups (enhanced CT/MR and their kin).
    public var hasFunctionalGroups: Bool {
        sdcm_has(handle, Tag.perFrameFunctionalGroupsSequence) != 0 || sdcm_has(handle, Tag.sharedFunctionalGroupsSequence) != 0
    }

    /// The stored values of all frames (`count` = Rows * Columns * frames), BitsStored and signedness applied.
    public func pixels(count: Int) throws -> [Int32] {
        var err = [CChar](repeating: 0, count: 512)
        var failed = false
        let values = [Int32](unsafeUninitializedCapacity: count) { buffer, n in
            failed = sdcm_pixels(handle, buffer.baseAddress, count, &err, err.count) != 0
            n = failed ? 0 : count
        }
        if failed { throw DICOMError.pixels(path: path, reason: String(cString: err)) }
        return values
    }
}
