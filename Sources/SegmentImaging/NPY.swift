// NumPy .npy files (format version 1.0), written atomically.
import Foundation
import SegmentCore

/// Writer of float32 .npy arrays.
public enum NPYWriter {
    /// Writes `values` as a little-endian float32 array of `shape`. `values` are in first-axis-fastest order
    /// (the array order of NIfTI data, (X, Y, Z, C) with X fastest), stored with fortran_order True, so that
    /// numpy.load(path)[x, y, z, c] is the value at (x, y, z, c) with no copy.
    public static func writeFloat32(_ values: [Float], shape: [Int], to path: String) throws {
        fatalError("NPYWriter.writeFloat32: not implemented yet")
    }
}
