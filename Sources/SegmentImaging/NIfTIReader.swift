// Reading NIfTI headers and voxels (see NIfTI.swift for the rules).
import CNIfTI
import Foundation

enum NIfTIReader {
    static func header(_ path: String) throws -> NIfTIHeader { fatalError("not implemented yet") }
    static func volume(_ path: String, volume: Int?) throws -> NIfTIVolume { fatalError("not implemented yet") }
    static func scaled(_ storage: UnsafeMutableRawBufferPointer, _ header: NIfTIHeader, offset: Int) -> Double { fatalError("not implemented yet") }
    static func slice(_ storage: UnsafeMutableRawBufferPointer, _ header: NIfTIHeader, _ index: Int, _ layout: VolumeLayout) -> [Float] { fatalError("not implemented yet") }
    static func floats(_ storage: UnsafeMutableRawBufferPointer, _ header: NIfTIHeader) -> [Float] { fatalError("not implemented yet") }
    static func labels<T: FixedWidthInteger & UnsignedInteger>(_ storage: UnsafeMutableRawBufferPointer, _ header: NIfTIHeader, as: T.Type) throws -> [T] { fatalError("not implemented yet") }
}
