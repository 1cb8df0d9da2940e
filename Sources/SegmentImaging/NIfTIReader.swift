// Reading NIfTI headers and voxels (the rules are in NIfTI.swift).
import CNIfTI
import Foundation
import SegmentCore

/// The header fields this module uses, read from a native-order nifti_1_header or nifti_2_header.
struct NIfTIFields {
    var dim: [Int]          // dim[0...7]
    var pixdim: [Double]    // pixdim[0...7]; pixdim[0] carries qfac
    var datatype: Int32
    var voxOffset: Double   // a float in NIfTI-1: checked (finite, in range) before it becomes a byte offset
    var sclSlope: Double
    var sclInter: Double
    var qformCode: Int
    var sformCode: Int
    var quatern: [Double]   // b, c, d
    var qoffset: [Double]   // x, y, z
    var srow: [[Double]]    // srow_x, srow_y, srow_z
    var magic: [UInt8]      // 4 (NIfTI-1) or 8 (NIfTI-2) bytes

    init(_ h: nifti_1_header) {
        dim = tupleArray(h.dim, Int16.self).map(Int.init)
        pixdim = tupleArray(h.pixdim, Float.self).map(Double.init)
        datatype = Int32(h.datatype)
        voxOffset = Double(h.vox_offset)
        sclSlope = Double(h.scl_slope); sclInter = Double(h.scl_inter)
        qformCode = Int(h.qform_code); sformCode = Int(h.sform_code)
        quatern = [h.quatern_b, h.quatern_c, h.quatern_d].map(Double.init)
        qoffset = [h.qoffset_x, h.qoffset_y, h.qoffset_z].map(Double.init)
        srow = [tupleArray(h.srow_x, Float.self), tupleArray(h.srow_y, Float.self), tupleArray(h.srow_z, Float.self)]
            .map { $0.map(Double.init) }
        magic = tupleArray(h.magic, CChar.self).map { UInt8(bitPattern: $0) }
    }

    init(_ h: nifti_2_header) {
        dim = tupleArray(h.dim, Int64.self).map(Int.init)
        pixdim = tupleArray(h.pixdim, Double.self)
        datatype = Int32(h.datatype)
        voxOffset = Double(h.vox_offset)
        sclSlope = h.scl_slope; sclInter = h.scl_inter
        qformCode = Int(h.qform_code); sformCode = Int(h.sform_code)
        quatern = [h.quatern_b, h.quatern_c, h.quatern_d]
        qoffset = [h.qoffset_x, h.qoffset_y, h.qoffset_z]
        srow = [tupleArray(h.srow_x, Double.self), tupleArray(h.srow_y, Double.self), tupleArray(h.srow_z, Double.self)]
        magic = tupleArray(h.magic, CChar.self).map { UInt8(bitPattern: $0) }
    }
}

/// The elements of a homogeneous C array imported as a tuple.
func tupleArray<Tuple, T>(_ tuple: Tuple, _ type: T.Type) -> [T] {
    withUnsafeBytes(of: tuple) { Array($0.bindMemory(to: T.self)) }
}

/// A scalar type voxels are stored as.
protocol StoredScalar {
    /// The value as a Double (exact for every type but 64-bit integers beyond 2^53, rounded as numpy does).
    var double: Double { get }
    /// For integer types: the value if it is >= 0, else nil. For floating-point types: nil.
    var unsigned: UInt64? { get }
}
extension StoredScalar where Self: BinaryInteger {
    var double: Double { Double(self) }
    var unsigned: UInt64? { UInt64(exactly: self) }
}
extension StoredScalar where Self: BinaryFloatingPoint {
    var double: Double { Double(self) }
    var unsigned: UInt64? { nil }
}
extension UInt8: StoredScalar {}
extension Int8: StoredScalar {}
extension UInt16: StoredScalar {}
extension Int16: StoredScalar {}
extension UInt32: StoredScalar {}
extension Int32: StoredScalar {}
extension UInt64: StoredScalar {}
extension Int64: StoredScalar {}
extension Float: StoredScalar {}
extension Double: StoredScalar {}

enum NIfTIReader {
    /// libnifti prints its own diagnostics to stderr; this module reports typed errors instead.
    static let quiet: Void = nifti_set_debug_level(0)

    // MARK: header

    static func header(_ path: String) throws -> NIfTIHeader {
        _ = quiet
        // Before any open: opening a FIFO would block, and a device never ends.
        if let problem = notARegularFile(path) { throw ImagingError.unreadable(path: path, reason: problem) }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ImagingError.unreadable(path: path, reason: "permission denied")
        }
        // gzip or not from the content (the name may lie); zlib reads both through znz.
        let gz = try isGzip(path)
        guard let opened = znzopen(path, "rb", gz ? 1 : 0) else {
            throw ImagingError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        var fp: znzFile? = opened
        var bytes = [UInt8](repeating: 0, count: MemoryLayout<nifti_2_header>.size)
        let got = znzread(&bytes, 1, bytes.count, fp)
        Xznzclose(&fp)
        if got < 0 { throw ImagingError.invalidNIfTI(path: path, problem: "the gzip stream is corrupt") }
        guard got >= 4 else { throw ImagingError.invalidNIfTI(path: path, problem: "the file is shorter than a NIfTI header") }

        // sizeof_hdr decides the version (348 or 540) and the byte order.
        let size = bytes.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        let version: Int, swapped: Bool
        switch size {
        case 348, Int32(348).byteSwapped: version = 1; swapped = size != 348
        case 540, Int32(540).byteSwapped: version = 2; swapped = size != 540
        default: throw ImagingError.invalidNIfTI(path: path, problem: "sizeof_hdr is \(size), neither 348 (NIfTI-1) nor 540 (NIfTI-2)")
        }
        let headerSize = version == 1 ? 348 : 540
        guard got >= headerSize else {
            throw ImagingError.invalidNIfTI(path: path, problem: "the file ends inside the \(headerSize)-byte header")
        }
        // The header in native byte order, checked by libnifti (dim, datatype), then the single-file magic.
        let raw: [UInt8]
        let f: NIfTIFields
        if version == 1 {
            var h = bytes.withUnsafeBytes { $0.loadUnaligned(as: nifti_1_header.self) }
            if swapped { swap_nifti_header(&h, 1) }
            raw = withUnsafeBytes(of: h) { Array($0) }
            f = NIfTIFields(h)
            guard f.magic[0...2] == [0x6E, 0x2B, 0x31] else {   // "n+1"
                throw ImagingError.invalidNIfTI(path: path, problem: f.magic[0...2] == [0x6E, 0x69, 0x31]
                    ? "it is a header/image pair (.hdr/.img)" : "the magic is not \"n+1\" (an ANALYZE file?)")
            }
            guard nifti_hdr1_looks_good(&h) != 0 else {
                throw ImagingError.invalidNIfTI(path: path, problem: "libnifti finds the header invalid (dim \(f.dim), datatype \(f.datatype))")
            }
        } else {
            var h = bytes.withUnsafeBytes { $0.loadUnaligned(as: nifti_2_header.self) }
            if swapped { swap_nifti_header(&h, 2) }
            raw = withUnsafeBytes(of: h) { Array($0) }
            f = NIfTIFields(h)
            guard f.magic[0...2] == [0x6E, 0x2B, 0x32] else {   // "n+2"
                throw ImagingError.invalidNIfTI(path: path, problem: "the magic is not \"n+2\" (a header/image pair?)")
            }
            guard nifti_hdr2_looks_good(&h) != 0 else {
                throw ImagingError.invalidNIfTI(path: path, problem: "libnifti finds the header invalid (dim \(f.dim), datatype \(f.datatype))")
            }
        }

        guard let datatype = NIfTIDatatype(rawValue: f.datatype) else {
            throw ImagingError.unsupportedDatatype(path: path, datatype: String(cString: nifti_datatype_string(f.datatype)))
        }
        let ndim = f.dim[0]
        guard (1...7).contains(ndim) else {
            throw ImagingError.invalidNIfTI(path: path, problem: "dim[0] is \(ndim), not in 1...7")
        }
        if ndim >= 5, let extra = (5...ndim).first(where: { f.dim[$0] > 1 }) {
            throw ImagingError.invalidNIfTI(path: path, problem: "dim[\(extra)] is \(f.dim[extra]): images of more than 4 dimensions are not supported")
        }
        let shape = (1...3).map { $0 <= ndim ? f.dim[$0] : 1 }
        let volumes = ndim >= 4 ? f.dim[4] : 1
        guard shape.allSatisfy({ $0 > 0 }), volumes > 0 else {
            throw ImagingError.invalidNIfTI(path: path, problem: "dim \(Array(f.dim[1...ndim])) has a non-positive size")
        }
        // Every size derived from dim must be representable: bytes of all volumes, and offsets past them.
        guard let total = checkedProduct(shape + [volumes, datatype.size]), total <= Int.max / 4 else {
            throw ImagingError.invalidNIfTI(path: path, problem: "dim \(Array(f.dim[1...ndim])) declares more voxels than any file can hold")
        }
        let spacing = (1...3).map { $0 <= ndim ? f.pixdim[$0] : 1.0 }
        if let a = (1...3).first(where: { !spacing[$0 - 1].isFinite }) {
            throw ImagingError.invalidNIfTI(path: path, problem: "pixdim[\(a)] (the voxel size) is \(spacing[a - 1])")
        }
        // vox_offset: where the voxels start; NIfTI-1 stores it as a float. nibabel truncates it to an integer.
        guard f.voxOffset.isFinite, f.voxOffset >= 0, f.voxOffset <= Double(Int.max / 4) else {
            throw ImagingError.invalidNIfTI(path: path, problem: "vox_offset is \(f.voxOffset), not a byte offset")
        }
        // A single file's voxels start after the header and the 4-byte extension flag. Below that, readers disagree
        // (libnifti reads from byte 348, nibabel from 0 or refuses), so such a file has no one meaning.
        let dataOffset = Int(f.voxOffset)
        guard dataOffset >= headerSize + 4 else {
            throw ImagingError.invalidNIfTI(path: path, problem: "vox_offset \(f.voxOffset) lies inside the \(headerSize + 4)-byte header of a single-file NIfTI-\(version), where the voxels cannot start")
        }
        // The declared size against the file, before anything is allocated for it. A gzip stream's length is only
        // known by reading it (reading stops at the declared size), but it cannot expand beyond deflate's ratio.
        let needed = dataOffset + total
        var st = stat()
        if stat(path, &st) == 0 {
            if !gz && Int(st.st_size) < needed {
                throw ImagingError.truncated(path: path, problem: "its header declares \(needed) bytes (voxel data from byte \(dataOffset)) but the file has \(st.st_size)")
            }
            if gz && needed / deflateMaximumRatio > Int(st.st_size) + 1 {
                throw ImagingError.truncated(path: path, problem: "its header declares \(needed) bytes but gzip cannot expand the file's \(st.st_size) bytes that far")
            }
        }

        // nibabel's get_slope_inter: no scaling for a zero or non-finite slope; a valid slope needs a finite intercept.
        // (1, 0) changes nothing and is treated as no scaling.
        var scaling: (slope: Double, inter: Double)? = nil
        if f.sclSlope != 0 && f.sclSlope.isFinite {
            guard f.sclInter.isFinite else {
                throw ImagingError.invalidNIfTI(path: path, problem: "scl_slope is \(f.sclSlope) but scl_inter is \(f.sclInter)")
            }
            if f.sclSlope != 1 || f.sclInter != 0 { scaling = (f.sclSlope, f.sclInter) }
        }

        let qform = quaternionAffine(f, version: version)
        let sform = Affine(f.srow + [[0, 0, 0, 1]])
        let affine: Affine
        if f.sformCode > 0 {
            guard f.srow.joined().allSatisfy(\.isFinite) else {
                throw ImagingError.invalidNIfTI(path: path, problem: "sform_code is \(f.sformCode) but srow_x/y/z hold non-finite values \(f.srow)")
            }
            affine = sform
        } else if f.qformCode > 0 {
            guard (f.quatern + f.qoffset).allSatisfy(\.isFinite) else {
                throw ImagingError.invalidNIfTI(path: path, problem: "qform_code is \(f.qformCode) but the quaternion \(f.quatern) or the offsets \(f.qoffset) are not finite")
            }
            // nibabel refuses b² + c² + d² > 1 beyond rounding: such a header is not a rotation, and a mask written
            // on it could not be read back.
            let norm = f.quatern.reduce(0) { $0 + $1 * $1 }
            guard 1 - norm >= -quaternionThreshold(version: version) else {
                throw ImagingError.invalidNIfTI(path: path, problem: "the qform quaternion (b, c, d) = \(f.quatern) has b² + c² + d² = \(norm) > 1, so it is not a rotation")
            }
            affine = qform
        } else {
            affine = baseAffine(shape: shape, spacing: spacing)
        }

        return NIfTIHeader(path: path, version: version, shape: shape, volumes: volumes, datatype: datatype,
                           spacing: spacing, scaling: scaling, qformCode: f.qformCode, sformCode: f.sformCode,
                           qform: qform, sform: sform, affine: affine, raw: raw,
                           dataOffset: dataOffset, swapped: swapped, gzip: gz)
    }

    /// How far below zero 1 - (b² + c² + d²) may be and still count as a unit quaternion (nibabel's threshold:
    /// 3 eps of the header's float type).
    static func quaternionThreshold(version: Int) -> Double {
        3 * (version == 1 ? Double(Float.ulpOfOne) : Double.ulpOfOne)
    }

    /// The qform as nibabel's get_qform: w = sqrt(1 - (b² + c² + d²)), taken as 0 when |1 - (b² + c² + d²)| is
    /// below 3 eps of the header's float type (or negative, where nibabel refuses the header), rotation of the
    /// normalised quaternion, columns scaled by pixdim[1], pixdim[2], pixdim[3] * qfac (qfac = -1 when
    /// pixdim[0] < 0, else 1), offsets qoffset_x/y/z. (libnifti's own version differs near 180-degree rotations.)
    static func quaternionAffine(_ f: NIfTIFields, version: Int) -> Affine {
        let (x, y, z) = (f.quatern[0], f.quatern[1], f.quatern[2])
        let w2 = 1 - (x * x + y * y + z * z)
        let threshold = quaternionThreshold(version: version)
        let w = abs(w2) < threshold || w2 < 0 ? 0 : w2.squareRoot()
        var r: [[Double]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        let n = w * w + x * x + y * y + z * z
        if n >= Double.ulpOfOne {
            let s = 2 / n
            let (X, Y, Z) = (x * s, y * s, z * s)
            let (wX, wY, wZ) = (w * X, w * Y, w * Z)
            let (xX, xY, xZ) = (x * X, x * Y, x * Z)
            let (yY, yZ, zZ) = (y * Y, y * Z, z * Z)
            r = [[1 - (yY + zZ), xY - wZ, xZ + wY],
                 [xY + wZ, 1 - (xX + zZ), yZ - wX],
                 [xZ - wY, yZ + wX, 1 - (xX + yY)]]
        }
        let zoom = [f.pixdim[1], f.pixdim[2], f.pixdim[3] * (f.pixdim[0] < 0 ? -1 : 1)]
        var m = (0..<3).map { i in (0..<3).map { j in r[i][j] * zoom[j] } + [f.qoffset[i]] }
        m.append([0, 0, 0, 1])
        return Affine(m)
    }

    /// Whether the file starts with the gzip magic 1f 8b.
    static func isGzip(_ path: String) throws -> Bool {
        guard let file = fopen(path, "rb") else {
            throw ImagingError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { fclose(file) }
        var magic: [UInt8] = [0, 0]
        return fread(&magic, 1, 2, file) == 2 && magic == [0x1F, 0x8B]
    }

    /// nibabel's affine for a header without qform or sform: diag(-dx, dy, dz) centred on the array.
    static func baseAffine(shape: [Int], spacing: [Double]) -> Affine {
        var m: [[Double]] = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
        for a in 0..<3 {
            let zoom = a == 0 ? -spacing[a] : spacing[a]
            m[a][a] = zoom
            m[a][3] = -Double(shape[a] - 1) / 2 * zoom
        }
        return Affine(m)
    }

    // MARK: voxels

    static func volume(_ path: String, volume index: Int?, budget: MemoryBudget) throws -> NIfTIVolume {
        let header = try header(path)
        if header.volumes > 1 && index == nil {
            throw ImagingError.needsVolumeIndex(path: path, volumes: header.volumes)
        }
        let k = index ?? 0
        guard k >= 0 && k < header.volumes else {
            throw ImagingError.volumeIndexOutOfRange(path: path, index: k, volumes: header.volumes)
        }
        let bytes = header.voxelCount * header.datatype.size   // cannot overflow: checked with the header
        try budget.check(bytes, path: path, what: "its \(header.shape.map(String.init).joined(separator: " x ")) \(header.datatype) voxels")
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 16)
        do {
            try readData(path, header: header, offset: header.dataOffset + k * bytes, into: storage)
        } catch {
            storage.deallocate()
            throw error
        }
        if header.swapped && header.datatype.size > 1 {
            nifti_swap_Nbytes(Int64(header.voxelCount), Int32(header.datatype.size), storage.baseAddress)
        }
        return NIfTIVolume(header: header, storage: storage)
    }

    /// Reads `storage.count` bytes at `offset` of the (decompressed) file.
    static func readData(_ path: String, header: NIfTIHeader, offset: Int, into storage: UnsafeMutableRawBufferPointer) throws {
        guard let opened = znzopen(path, "rb", header.gzip ? 1 : 0) else {
            throw ImagingError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        var fp: znzFile? = opened
        defer { Xznzclose(&fp) }
        let total = offset + storage.count
        if znzseek(fp, offset, SEEK_SET) < 0 {
            throw ImagingError.truncated(path: path, problem: "the voxel data should start at byte \(offset) but the file is shorter (\(total) bytes needed)")
        }
        let chunk = 1 << 26
        var done = 0
        while done < storage.count {
            let n = min(chunk, storage.count - done)
            let got = znzread(storage.baseAddress! + done, 1, n, fp)
            if got < 0 {
                throw ImagingError.truncated(path: path, problem: "the gzip stream is corrupt after \(offset + done) bytes")
            }
            done += got
            if got < n {
                throw ImagingError.truncated(path: path, problem: "it ends after \(offset + done) bytes but the header needs \(total)")
            }
        }
    }

    /// Runs `visitor` on the voxels typed as stored: one dispatch per call, loops specialised per stored type.
    static func visit<V: VoxelVisitor>(_ storage: UnsafeMutableRawBufferPointer, _ type: NIfTIDatatype, _ visitor: V) -> V.Result {
        func typed<T: StoredScalar>(_ t: T.Type) -> UnsafeBufferPointer<T> {
            UnsafeBufferPointer(start: storage.baseAddress!.assumingMemoryBound(to: T.self), count: storage.count / MemoryLayout<T>.size)
        }
        switch type {
        case .uint8: return visitor.visit(typed(UInt8.self))
        case .int8: return visitor.visit(typed(Int8.self))
        case .uint16: return visitor.visit(typed(UInt16.self))
        case .int16: return visitor.visit(typed(Int16.self))
        case .uint32: return visitor.visit(typed(UInt32.self))
        case .int32: return visitor.visit(typed(Int32.self))
        case .uint64: return visitor.visit(typed(UInt64.self))
        case .int64: return visitor.visit(typed(Int64.self))
        case .float32: return visitor.visit(typed(Float.self))
        case .float64: return visitor.visit(typed(Double.self))
        }
    }

    static func scaled(_ storage: UnsafeMutableRawBufferPointer, _ header: NIfTIHeader, offset: Int) -> Double {
        let raw = rawValue(storage, header.datatype, offset)
        guard let s = header.scaling else { return raw }
        return raw * s.slope + s.inter
    }

    static func rawValue(_ storage: UnsafeMutableRawBufferPointer, _ type: NIfTIDatatype, _ offset: Int) -> Double {
        switch type {
        case .uint8: return storage.load(fromByteOffset: offset, as: UInt8.self).double
        case .int8: return storage.load(fromByteOffset: offset, as: Int8.self).double
        case .uint16: return storage.load(fromByteOffset: offset * 2, as: UInt16.self).double
        case .int16: return storage.load(fromByteOffset: offset * 2, as: Int16.self).double
        case .uint32: return storage.load(fromByteOffset: offset * 4, as: UInt32.self).double
        case .int32: return storage.load(fromByteOffset: offset * 4, as: Int32.self).double
        case .uint64: return storage.load(fromByteOffset: offset * 8, as: UInt64.self).double
        case .int64: return storage.load(fromByteOffset: offset * 8, as: Int64.self).double
        case .float32: return storage.load(fromByteOffset: offset * 4, as: Float.self).double
        case .float64: return storage.load(fromByteOffset: offset * 8, as: Double.self).double
        }
    }

    static func slice(_ storage: UnsafeMutableRawBufferPointer, _ header: NIfTIHeader, _ index: Int,
                      _ layout: VolumeLayout) -> [Float] {
        let shape = layout.canonicalShape(header.shape)
        precondition(index >= 0 && index < shape[0], "slice \(index) out of 0..<\(shape[0])")
        let (origin, steps) = layout.addressing(header.shape)
        return visit(storage, header.datatype, SliceGather(start: origin + index * steps[0], rows: shape[1], cols: shape[2],
                                                           rowStep: steps[1], colStep: steps[2], scaling: header.scaling))
    }

    static func floats(_ storage: UnsafeMutableRawBufferPointer, _ header: NIfTIHeader) -> [Float] {
        // The whole array is one "slice" of voxelCount columns with step 1.
        visit(storage, header.datatype, SliceGather(start: 0, rows: 1, cols: header.voxelCount, rowStep: 0, colStep: 1,
                                                    scaling: header.scaling))
    }

    /// Writes every voxel as an unsigned integer of `width` bytes into `out`; returns nil, or the first offset
    /// whose value is not a label (negative, fractional, NaN, or not below 2^(8 * width)).
    static func labels(_ storage: UnsafeMutableRawBufferPointer, _ header: NIfTIHeader,
                       into out: UnsafeMutableRawBufferPointer, width: Int) -> Int? {
        visit(storage, header.datatype, LabelConversion(out: out, width: width, count: header.voxelCount, scaling: header.scaling))
    }

    static func notALabel(_ storage: UnsafeMutableRawBufferPointer, _ header: NIfTIHeader, offset: Int, width: Int) -> ImagingError {
        let s = header.shape
        let x = scaled(storage, header, offset: offset)
        let limit = width == 8 ? "18446744073709551615" : String((1 << (8 * width)) - 1)
        return .notALabelImage(path: header.path, problem: "voxel (\(offset % s[0]), \(offset / s[0] % s[1]), \(offset / (s[0] * s[1]))) is \(x), not an integer label in 0...\(limit)")
    }
}

/// An operation on the voxels, generic over their stored type.
protocol VoxelVisitor {
    associatedtype Result
    func visit<T: StoredScalar>(_ v: UnsafeBufferPointer<T>) -> Result
}

/// Gathers rows x cols scaled values at start + r*rowStep + c*colStep, row-major, as Float.
struct SliceGather: VoxelVisitor {
    let start, rows, cols, rowStep, colStep: Int
    let scaling: (slope: Double, inter: Double)?

    func visit<T: StoredScalar>(_ v: UnsafeBufferPointer<T>) -> [Float] {
        let slope = scaling?.slope ?? 1, inter = scaling?.inter ?? 0
        return [Float](unsafeUninitializedCapacity: rows * cols) { out, count in
            for r in 0..<rows {
                let row = start + r * rowStep
                for c in 0..<cols { out[r * cols + c] = Float(v[row + c * colStep].double * slope + inter) }
            }
            count = rows * cols
        }
    }
}

/// Converts every scaled voxel to an unsigned integer label of `width` bytes; returns nil or the first offset
/// that is not a label.
struct LabelConversion: VoxelVisitor {
    let out: UnsafeMutableRawBufferPointer
    let width, count: Int
    let scaling: (slope: Double, inter: Double)?

    func visit<T: StoredScalar>(_ v: UnsafeBufferPointer<T>) -> Int? {
        switch width {
        case 1: return convert(v, UInt8.self)
        case 2: return convert(v, UInt16.self)
        case 4: return convert(v, UInt32.self)
        default: return convert(v, UInt64.self)
        }
    }

    func convert<T: StoredScalar, L: FixedWidthInteger & UnsignedInteger>(_ v: UnsafeBufferPointer<T>, _: L.Type) -> Int? {
        let labels = out.bindMemory(to: L.self)
        if scaling == nil && T.self is any BinaryInteger.Type {
            // Unscaled integers: checked and converted without going through Double.
            let top = UInt64(L.max)
            for i in 0..<count {
                guard let u = v[i].unsigned, u <= top else { return i }
                labels[i] = L(truncatingIfNeeded: u)
            }
            return nil
        }
        let slope = scaling?.slope ?? 1, inter = scaling?.inter ?? 0
        let bound = pow(2.0, Double(L.bitWidth))   // exact; labels are below it
        for i in 0..<count {
            let x = v[i].double * slope + inter
            // NaN fails every comparison; below 2^64 the conversion is exact for integers and truncates others.
            guard x >= 0 && x < bound else { return i }
            let u = UInt64(x)
            guard Double(u) == x else { return i }
            labels[i] = L(truncatingIfNeeded: u)
        }
        return nil
    }
}
