// Read-only access to a checkpoint's bytes: the file memory-mapped once, and a bounds-checked cursor over a range
// of it. Every read checks the remaining length first, so no length field can make a reader allocate or read
// past the end of the file.
import Foundation
import SegmentCore

/// A cursor over `bytes[start..<end]` of a file; `position` is absolute (a file offset), for error messages.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let end: Int
    var position: Int
    /// Builds the error thrown when a read would cross `end`.
    let overrun: (_ what: String) -> ConvertError

    init(_ bytes: UnsafeRawBufferPointer, from start: Int = 0, to end: Int? = nil,
         overrun: @escaping (_ what: String) -> ConvertError) {
        self.bytes = bytes
        self.end = end ?? bytes.count
        self.position = start
        self.overrun = overrun
    }

    var remaining: Int { end - position }
    var atEnd: Bool { position >= end }

    /// Checks `n` bytes remain (n may come from the file: negative or huge values fail here, before any use).
    func require(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, n <= remaining else { throw overrun(what()) }
    }

    mutating func u8(_ what: @autoclosure () -> String = "a byte") throws -> UInt8 {
        try require(1, what())
        defer { position += 1 }
        return bytes[position]
    }

    /// An unsigned little-endian integer of `size` bytes (1...8).
    mutating func uintLE(_ size: Int, _ what: @autoclosure () -> String) throws -> UInt64 {
        try require(size, what())
        var v: UInt64 = 0
        for i in 0..<size { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += size
        return v
    }

    mutating func u16(_ what: @autoclosure () -> String) throws -> Int { Int(try uintLE(2, what())) }
    mutating func u32(_ what: @autoclosure () -> String) throws -> Int { Int(try uintLE(4, what())) }
    /// A u64 as Int; values beyond Int.max come back negative and so fail any later `require`.
    mutating func u64(_ what: @autoclosure () -> String) throws -> Int { Int(truncatingIfNeeded: try uintLE(8, what())) }

    /// The next `n` bytes, without copying.
    mutating func take(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try require(n, what())
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
    }

    mutating func skip(_ n: Int, _ what: @autoclosure () -> String) throws {
        try require(n, what())
        position += n
    }
}
