// A volume that was never a NIfTI file (a DICOM series assembled in memory) given a NIfTI-1 header, so the run
// pipeline treats it exactly as a file read from disk: the same slicing, orientation handling and outputs, and a
// mask or probability map written on its grid carries its geometry (sform and qform, code 1: scanner anatomical).
import CNIfTI
import Foundation
import SegmentCore

/// How an in-memory volume stores its values.
public enum MemoryStorage {
    /// Integers and the scaling that gives their values (value = stored * slope + inter).
    case int16(slope: Double, inter: Double)
    /// Values as they are.
    case float32
}

extension NIfTIVolume {
    /// A volume of `shape` (X, Y, Z) on the grid `affine` (voxel indices -> RAS+ mm), named `name` in messages.
    /// `spacing` is the voxel size along (i, j, k), the affine's column norms. `fill` writes the voxels, in array order
    /// (X fastest), into the volume's own storage (Int16 or Float, as `storage` says): no copy is made.
    public static func inMemory(name: String, shape: [Int], spacing: [Double], affine: Affine, storage kind: MemoryStorage,
                                fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> NIfTIVolume {
        precondition(shape.count == 3 && spacing.count == 3, "a 3D shape")
        var h = nifti_1_header()
        h.sizeof_hdr = 348
        h.dim.0 = 3; h.dim.1 = Int16(clamping: shape[0]); h.dim.2 = Int16(clamping: shape[1]); h.dim.3 = Int16(clamping: shape[2])
        h.dim.4 = 1; h.dim.5 = 1; h.dim.6 = 1; h.dim.7 = 1
        let datatype: NIfTIDatatype
        var scaling: (slope: Double, inter: Double)? = nil
        switch kind {
        case .int16(let slope, let inter):
            datatype = .int16
            h.scl_slope = Float(slope); h.scl_inter = Float(inter)
            if slope != 1 || inter != 0 { scaling = (slope, inter) }
        case .float32:
            datatype = .float32
            h.scl_slope = 1; h.scl_inter = 0
        }
        h.datatype = Int16(datatype.rawValue)
        h.bitpix = Int16(8 * datatype.size)
        h.vox_offset = 352
        h.xyzt_units = 2                            // NIFTI_UNITS_MM
        h.qform_code = 1; h.sform_code = 1          // NIFTI_XFORM_SCANNER_ANAT
        let m = affine.m
        h.srow_x = (Float(m[0][0]), Float(m[0][1]), Float(m[0][2]), Float(m[0][3]))
        h.srow_y = (Float(m[1][0]), Float(m[1][1]), Float(m[1][2]), Float(m[1][3]))
        h.srow_z = (Float(m[2][0]), Float(m[2][1]), Float(m[2][2]), Float(m[2][3]))
        // The quaternion of the same rotation (libnifti's conversion), with qfac in pixdim[0].
        var R = nifti_dmat44()
        withUnsafeMutableBytes(of: &R.m) { raw in
            let p = raw.bindMemory(to: Double.self)
            for r in 0..<4 { for c in 0..<4 { p[4 * r + c] = m[r][c] } }
        }
        var qb = 0.0, qc = 0.0, qd = 0.0, qx = 0.0, qy = 0.0, qz = 0.0, dx = 0.0, dy = 0.0, dz = 0.0, qfac = 0.0
        nifti_dmat44_to_quatern(R, &qb, &qc, &qd, &qx, &qy, &qz, &dx, &dy, &dz, &qfac)
        h.quatern_b = Float(qb); h.quatern_c = Float(qc); h.quatern_d = Float(qd)
        h.qoffset_x = Float(qx); h.qoffset_y = Float(qy); h.qoffset_z = Float(qz)
        h.pixdim = (Float(qfac), Float(spacing[0]), Float(spacing[1]), Float(spacing[2]), 0, 0, 0, 0)
        h.magic = (0x6E, 0x2B, 0x31, 0)             // "n+1"

        let raw = withUnsafeBytes(of: h) { Array($0) }
        let fields = NIfTIFields(h)
        let header = NIfTIHeader(path: name, version: 1, shape: shape, volumes: 1, datatype: datatype,
                                 spacing: spacing, scaling: scaling, qformCode: 1, sformCode: 1,
                                 qform: NIfTIReader.quaternionAffine(fields, version: 1), sform: affine, affine: affine,
                                 raw: raw, dataOffset: 352, swapped: false, gzip: false)
        let bytes = shape.reduce(1, *) * datatype.size
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes, 1), alignment: 16)
        do {
            try fill(UnsafeMutableRawBufferPointer(rebasing: storage[0 ..< bytes]))
        } catch {
            storage.deallocate()
            throw error
        }
        return NIfTIVolume(header: header, storage: storage)
    }
}
