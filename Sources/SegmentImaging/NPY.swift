// NumPy .npy files (format version 1.0), written atomically.
import Foundation
import SegmentCore

/// Writer of float32 .npy arrays.
public enum NPYWriter {
    /// Writes `values` as a little-endian float32 array of `shape`. `values` are in first-axis-fastest order
    /// (the array order of NIfTI data, (X, Y, Z, C) with X fastest), stored with fortran_order True, so that
    /// numpy.load(path)[x, y, z, c] is the value at (x, y, z, c) with no copy.
    public static func writeFloat32(_ values: [Float], shape: [Int], to path: String) throws {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values do not fill shape \(shape)")
        try AtomicFile.write(to: path) { tmp in
            guard let file = fopen(tmp, "wb") else {
                throw ImagingError.notWritable(path: path, reason: String(cString: strerror(errno)))
            }
            var ok = true
            let header = headerBytes(shape)
            ok = header.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) == $0.count }
            if ok {
                // Float is little-endian on every platform Swift targets here (x86-64, arm64).
                ok = values.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) == $0.count }
            }
            let closed = fclose(file) == 0
            guard ok && closed else {
                throw ImagingError.notWritable(path: path, reason: String(cString: strerror(errno)))
            }
        }
    }

    /// Magic, version 1.0, header length (little-endian) and the dict, padded with spaces and ended by "\n" so
    /// that the data starts at a multiple of 64 bytes.
    static func headerBytes(_ shape: [Int]) -> [UInt8] {
        let dims = shape.count == 1 ? "\(shape[0])," : shape.map(String.init).joined(separator: ", ")
        var dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (\(dims)), }"
        let unpadded = 10 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let length = UInt16(dict.utf8.count)
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(dict.utf8)
    }
}
