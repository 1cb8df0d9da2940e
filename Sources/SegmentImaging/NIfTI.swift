// NIfTI-1 / NIfTI-2 volumes (.nii, .nii.gz) through libnifti2 and its znz streams.
//
// Reading: the header is read through znz (gzip recognised by its content, whatever the file name), put in native
// byte order and checked by libnifti (swap_nifti_header, nifti_hdr1/2_looks_good); the voxels are read with znz
// into one buffer in their stored type, native byte order, and handed out as scaled values (float slices along
// any axis, or label arrays), so a 512x512x800 int16 CT costs its 400 MB and nothing more.
// Values are nibabel's get_fdata(): raw * scl_slope + scl_inter in double when the slope is finite and non-zero;
// NaN and Inf voxels are kept as they are (libnifti's own loader would silently zero them).
//
// Writing: a mask copies the input's raw header (native byte order) and changes only the data description
// (datatype, bitpix, scl_slope 1, scl_inter 0, cal_min 0, cal_max, intent NIFTI_INTENT_LABEL) and vox_offset;
// dim, pixdim (incl. qfac), xyzt_units, qform/sform codes, quaternion, offsets and srow are the input's bytes.
// Extensions are not copied. The file is written atomically (SegmentCore.AtomicFile), gzip for a ".gz" name.
import CNIfTI
import Foundation
import SegmentCore

/// Scalar voxel types this module reads (NIfTI DT_* codes). Complex, RGB, float128 and binary are refused.
public enum NIfTIDatatype: Int32, Sendable, CaseIterable {
    case uint8 = 2, int16 = 4, int32 = 8, float32 = 16, float64 = 64, int8 = 256, uint16 = 512, uint32 = 768,
         int64 = 1024, uint64 = 1280

    /// Bytes per voxel.
    public var size: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .int64, .uint64, .float64: return 8
        }
    }
}

/// A 4x4 affine, row-major: (i, j, k, 1) voxel indices -> (x, y, z, 1) RAS+ millimetres, as nibabel's.
public struct Affine: Equatable, Sendable {
    public var m: [[Double]]
    public init(_ m: [[Double]]) {
        precondition(m.count == 4 && m.allSatisfy { $0.count == 4 }, "an affine is 4x4")
        self.m = m
    }
    /// Largest absolute difference of two affines' entries (for grid comparisons with a tolerance).
    public func maxDifference(_ other: Affine) -> Double {
        var d = 0.0
        for r in 0..<4 { for c in 0..<4 { d = max(d, abs(m[r][c] - other.m[r][c])) } }
        return d
    }
}

/// The header of a NIfTI file: the grid (shape, spacing, transforms) and what is needed to write outputs on it.
/// Immutable; shareable between threads.
public final class NIfTIHeader: @unchecked Sendable {
    /// The file it was read from.
    public let path: String
    /// 1 for NIfTI-1, 2 for NIfTI-2 (an output written with this header keeps the version).
    public let version: Int
    /// Shape of the 3D volume handed out, (X, Y, Z) = (dim[1], dim[2], dim[3]); 1 for a missing axis (2D: Z = 1).
    public let shape: [Int]
    /// dim[4] of the file (1 for 3D; the number of volumes of a 4D file).
    public let volumes: Int
    /// The stored voxel type.
    public let datatype: NIfTIDatatype
    /// pixdim[1...3] as stored (voxel size along i, j, k, in `xyzt_units`, usually mm).
    public let spacing: [Double]
    /// (slope, intercept) applied to the stored values, or nil when there is none: slope 0 or not finite (the
    /// NIfTI rule), or slope 1 and intercept 0.
    public let scaling: (slope: Double, inter: Double)?
    public let qformCode: Int
    public let sformCode: Int
    /// The qform built from the quaternion, qoffset, pixdim and qfac (meaningful when qformCode > 0).
    public let qform: Affine
    /// The sform rows srow_x/y/z (meaningful when sformCode > 0).
    public let sform: Affine
    /// nibabel's affine: the sform if sformCode > 0, else the qform if qformCode > 0, else the pixdim-only affine
    /// nibabel uses (x flipped, centred).
    public let affine: Affine
    /// The raw header (348 or 540 bytes, native byte order), the template of every output on this grid.
    let raw: [UInt8]
    /// Byte offset of the voxel data in the (uncompressed) file, whether its bytes must be swapped, whether the
    /// file is gzip-compressed.
    let dataOffset: Int
    let swapped: Bool
    let gzip: Bool

    /// Axis codes of (i, j, k) from `affine`, as nibabel's aff2axcodes (e.g. "RAS", "LPS").
    public var axisCodes: String { get throws { try Orientation.axisCodes(affine, path: path) } }
    /// X * Y * Z.
    public var voxelCount: Int { shape.reduce(1, *) }

    init(path: String, version: Int, shape: [Int], volumes: Int, datatype: NIfTIDatatype, spacing: [Double],
         scaling: (slope: Double, inter: Double)?, qformCode: Int, sformCode: Int, qform: Affine, sform: Affine,
         affine: Affine, raw: [UInt8], dataOffset: Int, swapped: Bool, gzip: Bool) {
        self.path = path; self.version = version; self.shape = shape; self.volumes = volumes; self.datatype = datatype
        self.spacing = spacing; self.scaling = scaling; self.qformCode = qformCode; self.sformCode = sformCode
        self.qform = qform; self.sform = sform; self.affine = affine; self.raw = raw; self.dataOffset = dataOffset
        self.swapped = swapped; self.gzip = gzip
    }

    /// Reads and validates only the header of `path`.
    public static func read(_ path: String) throws -> NIfTIHeader {
        try NIfTIReader.header(path)
    }

    /// Writes a label mask on this grid to `path` (.nii or .nii.gz; NIfTI-1 or -2 as this header), atomically.
    /// `labels` has `voxelCount` values in array order (X fastest, then Y, then Z). Stored as uint8.
    public func writeMask(_ labels: [UInt8], to path: String) throws {
        try NIfTIWriter.writeMask(labels, header: self, to: path)
    }

    /// As `writeMask(_ labels: [UInt8], ...)` for up to 65535 labels: stored as uint8 when the largest is <= 255,
    /// else as uint16.
    public func writeMask(_ labels: [UInt16], to path: String) throws {
        try NIfTIWriter.writeMask(labels, header: self, to: path)
    }

    /// Writes float32 values on this grid: `channels` volumes (X, Y, Z, channels), X fastest, channel slowest
    /// (e.g. per-class probabilities). A 3D file when channels == 1, else 4D with dim[4] = channels.
    public func writeFloats(_ values: [Float], channels: Int, to path: String) throws {
        try NIfTIWriter.writeFloats(values, channels: channels, header: self, to: path)
    }
}

/// A NIfTI volume: its header and its voxels in their stored type. Values are handed out scaled (nibabel's
/// get_fdata) as float slices in a model's layout, whole float arrays, or label arrays.
public final class NIfTIVolume: @unchecked Sendable {
    public let header: NIfTIHeader
    /// The voxels, `header.voxelCount * datatype.size` bytes, native byte order, X fastest.
    let storage: UnsafeMutableRawBufferPointer

    init(header: NIfTIHeader, storage: UnsafeMutableRawBufferPointer) {
        self.header = header; self.storage = storage
    }
    deinit { storage.deallocate() }

    /// Reads `path`. A 4D file (dim[4] > 1) needs `volume` (0-based); dim[4] == 1 is 3D and `volume` may be nil or 0.
    /// Throws `ImagingError` (exit 3) naming the file and the problem.
    /// The stored voxels must fit `budget` (else `MemoryBudget.TooLarge`, exit 3), checked before any allocation.
    public static func read(_ path: String, volume: Int? = nil, budget: MemoryBudget = .machineDefault) throws -> NIfTIVolume {
        try NIfTIReader.volume(path, volume: volume, budget: budget)
    }

    /// (X, Y, Z).
    public var shape: [Int] { header.shape }

    /// The scaled value of voxel (x, y, z), as nibabel's get_fdata()[x, y, z].
    public func value(_ x: Int, _ y: Int, _ z: Int) -> Double {
        let s = header.shape
        precondition(x >= 0 && x < s[0] && y >= 0 && y < s[1] && z >= 0 && z < s[2], "voxel out of range")
        return NIfTIReader.scaled(storage, header, offset: x + s[0] * (y + s[1] * z))
    }

    /// Slice `index` of the volume seen through `layout`: rows x cols scaled values, row-major, as Float.
    /// (rows, cols) = layout.canonicalShape(shape)[1...2].
    public func slice(_ index: Int, layout: VolumeLayout) -> [Float] {
        NIfTIReader.slice(storage, header, index, layout)
    }

    /// Every voxel, scaled, as Float, in array order (X fastest). Costs 4 bytes a voxel: prefer `slice` for big volumes.
    public func floats() -> [Float] {
        NIfTIReader.floats(storage, header)
    }

    /// Every voxel as a label in array order (X fastest). Throws `notALabelImage` for a value that is not an
    /// integer in T's range (negative, fractional, NaN, too large), naming the first such voxel.
    public func labels<T: FixedWidthInteger & UnsignedInteger>(as type: T.Type = UInt16.self) throws -> [T] {
        // The conversion runs in this module on raw memory (T is UInt8, UInt16, UInt32 or UInt64 in layout), so
        // it is specialised per stored type whatever T the caller asks for.
        let n = header.voxelCount
        var bad: Int? = nil
        let labels = [T](unsafeUninitializedCapacity: n) { buffer, count in
            bad = NIfTIReader.labels(storage, header, into: UnsafeMutableRawBufferPointer(buffer), width: MemoryLayout<T>.size)
            count = bad == nil ? n : 0
        }
        if let bad { throw NIfTIReader.notALabel(storage, header, offset: bad, width: MemoryLayout<T>.size) }
        return labels
    }
}
