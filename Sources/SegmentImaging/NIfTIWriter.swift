// Writing outputs on a NIfTI grid (the header rules are in NIfTI.swift).
import CNIfTI
import Foundation
import SegmentCore

enum NIfTIWriter {
    /// What an output stores, written over a copy of the input's raw header.
    struct DataDescription {
        var datatype: NIfTIDatatype
        var calMax: Double
        var intent: Int32           // NIFTI_INTENT_* code
        var channels: Int           // dim[4] of the output (1 = the input's 3D grid)
    }

    static let intentLabel: Int32 = 1002   // NIFTI_INTENT_LABEL
    static let intentNone: Int32 = 0

    static func writeMask(_ labels: [UInt8], header: NIfTIHeader, to path: String) throws {
        precondition(labels.count == header.voxelCount, "mask has \(labels.count) labels for \(header.voxelCount) voxels")
        let maxLabel = labels.max() ?? 0
        let description = DataDescription(datatype: .uint8, calMax: Double(maxLabel), intent: intentLabel, channels: 1)
        try write(header: header, description: description, to: path) { sink in
            try labels.withUnsafeBytes { try sink($0) }
        }
    }

    static func writeMask(_ labels: [UInt16], header: NIfTIHeader, to path: String) throws {
        precondition(labels.count == header.voxelCount, "mask has \(labels.count) labels for \(header.voxelCount) voxels")
        let maxLabel = labels.max() ?? 0
        guard maxLabel > 255 else {
            // Stored as uint8, converted a chunk at a time.
            let description = DataDescription(datatype: .uint8, calMax: Double(maxLabel), intent: intentLabel, channels: 1)
            try write(header: header, description: description, to: path) { sink in
                let chunk = 1 << 20
                for start in stride(from: 0, to: labels.count, by: chunk) {
                    let bytes = labels[start ..< min(start + chunk, labels.count)].map { UInt8($0) }
                    try bytes.withUnsafeBytes { try sink($0) }
                }
            }
            return
        }
        let description = DataDescription(datatype: .uint16, calMax: Double(maxLabel), intent: intentLabel, channels: 1)
        try write(header: header, description: description, to: path) { sink in
            try labels.withUnsafeBytes { try sink($0) }
        }
    }

    static func writeFloats(_ values: [Float], channels: Int, header: NIfTIHeader, to path: String) throws {
        precondition(channels >= 1 && values.count == header.voxelCount * channels,
                     "\(values.count) values are not \(channels) volume(s) of \(header.voxelCount) voxels")
        let description = DataDescription(datatype: .float32, calMax: 0, intent: intentNone, channels: channels)
        try write(header: header, description: description, to: path) { sink in
            try values.withUnsafeBytes { try sink($0) }
        }
    }

    /// Writes header + empty extension flag + data through znz (gzip for a ".gz" name), atomically.
    /// `data` hands the voxel bytes (native order) to the sink, in order, in one or more pieces.
    static func write(header: NIfTIHeader, description: DataDescription, to path: String,
                      data: (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let bytes = headerBytes(header, description)
        let gz = nifti_is_gzfile(path) != 0
        try AtomicFile.write(to: path) { tmp in
            guard let opened = znzopen(tmp, gz ? "wb1" : "wb", gz ? 1 : 0) else {
                throw ImagingError.notWritable(path: path, reason: String(cString: strerror(errno)))
            }
            var fp: znzFile? = opened
            var closed = false
            defer { if !closed { Xznzclose(&fp) } }
            func put(_ buffer: UnsafeRawBufferPointer) throws {
                guard buffer.count > 0 else { return }
                let written = znzwrite(buffer.baseAddress, 1, buffer.count, fp)
                guard written == buffer.count else {
                    throw ImagingError.notWritable(path: path, reason: "short write (\(String(cString: strerror(errno))))")
                }
            }
            try bytes.withUnsafeBytes { try put($0) }
            try data(put)
            closed = true
            guard Xznzclose(&fp) == 0 else {
                throw ImagingError.notWritable(path: path, reason: "closing the file failed (\(String(cString: strerror(errno))))")
            }
        }
    }

    /// The input's raw header with the data description changed, then the 4-byte extension flag (no extensions).
    static func headerBytes(_ header: NIfTIHeader, _ d: DataDescription) -> [UInt8] {
        var out: [UInt8]
        if header.version == 1 {
            var h = header.raw.withUnsafeBytes { $0.loadUnaligned(as: nifti_1_header.self) }
            h.datatype = Int16(d.datatype.rawValue)
            h.bitpix = Int16(d.datatype.size * 8)
            h.scl_slope = 1; h.scl_inter = 0
            h.cal_min = 0; h.cal_max = Float(d.calMax)
            h.intent_code = Int16(d.intent)
            h.intent_p1 = 0; h.intent_p2 = 0; h.intent_p3 = 0
            _ = withUnsafeMutableBytes(of: &h.intent_name) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
            h.vox_offset = 352
            withUnsafeMutableBytes(of: &h.dim) { raw in
                let dim = raw.bindMemory(to: Int16.self)
                setDims(dim, header: header, channels: d.channels)
            }
            out = withUnsafeBytes(of: h) { Array($0) }
        } else {
            var h = header.raw.withUnsafeBytes { $0.loadUnaligned(as: nifti_2_header.self) }
            h.datatype = Int16(d.datatype.rawValue)
            h.bitpix = Int16(d.datatype.size * 8)
            h.scl_slope = 1; h.scl_inter = 0
            h.cal_min = 0; h.cal_max = d.calMax
            h.intent_code = d.intent
            h.intent_p1 = 0; h.intent_p2 = 0; h.intent_p3 = 0
            _ = withUnsafeMutableBytes(of: &h.intent_name) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
            h.vox_offset = 544
            withUnsafeMutableBytes(of: &h.dim) { raw in
                let dim = raw.bindMemory(to: Int64.self)
                setDims(dim, header: header, channels: d.channels)
            }
            out = withUnsafeBytes(of: h) { Array($0) }
        }
        out += [0, 0, 0, 0]
        return out
    }

    /// dim of an output: the input's, except that a 4D input read as one volume becomes 3D, and `channels` > 1
    /// volumes make it 4D with dim[4] = channels.
    static func setDims<T: FixedWidthInteger>(_ dim: UnsafeMutableBufferPointer<T>, header: NIfTIHeader, channels: Int) {
        if header.volumes > 1 || channels > 1 {
            for i in 4...7 { dim[i] = 1 }
            dim[0] = min(dim[0], 3)
            // The grid keeps its 3 spatial axes even when the input named fewer (a 2D input with channels).
            if channels > 1 {
                for i in 1...3 where Int(dim[0]) < i { dim[i] = 1 }
                dim[0] = 4
                dim[4] = T(channels)
            }
        }
    }
}
