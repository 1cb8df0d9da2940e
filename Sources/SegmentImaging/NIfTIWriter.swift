// Writing outputs on a NIfTI grid (see NIfTI.swift for the header rules).
import CNIfTI
import Foundation
import SegmentCore

enum NIfTIWriter {
    static func writeMask(_ labels: [UInt8], header: NIfTIHeader, to path: String) throws { fatalError("not implemented yet") }
    static func writeMask(_ labels: [UInt16], header: NIfTIHeader, to path: String) throws { fatalError("not implemented yet") }
    static func writeFloats(_ values: [Float], channels: Int, header: NIfTIHeader, to path: String) throws { fatalError("not implemented yet") }
}
