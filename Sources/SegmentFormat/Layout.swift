// The byte layout of a model file (docs/FORMAT.md is the full specification; keep both in step).
//
//   offset  size  field
//   0       4     magic "SEGM" (53 45 47 4D)
//   4       4     u32 version (1)
//   8       8     u64 checksum: XXH64, seed 0, of bytes [16, file_size)
//   16      8     u64 file_size
//   24      8     u64 header_size: end of the tensor table
//   32      8     u64 metadata_count
//   40      8     u64 tensor_count
//   48      8     u64 data_offset = header_size rounded up to 64
//   56      ...   metadata_count entries, then tensor_count tensor entries, then zero padding to data_offset,
//                 then the tensor data (each tensor at data_offset + its offset, a multiple of 64).
// All integers little-endian; strings are u64 byte length + UTF-8 (no terminator).

#if _endian(big)
#error("model files are little-endian and memory-mapped as they are: big-endian hosts are not supported")
#endif

enum ModelFileLayout {
    static let magic: [UInt8] = Array("SEGM".utf8)
    static let version: UInt32 = 1
    static let alignment = 64
    static let fixedHeaderSize = 56
    static let checksumOffset = 8
    static let checksummedFrom = 16

    // Bounds that keep a hostile header from making the reader allocate or loop without end.
    static let maxNameBytes = 256          // metadata keys and tensor names
    static let maxStringBytes = 1 << 16    // string values
    static let maxArrayCount = 1 << 16     // array values
    static let maxRank = 8

    static func aligned(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

/// Metadata value types (docs/FORMAT.md, "Metadata").
enum MetadataValue: Equatable {
    case int(Int64)          // type 1: i64
    case float(Double)       // type 2: f64
    case string(String)      // type 3: string
    case ints([Int64])       // type 4: u64 count, count x i64
    case strings([String])   // type 5: u64 count, count x string

    var typeCode: UInt32 {
        switch self { case .int: return 1; case .float: return 2; case .string: return 3; case .ints: return 4; case .strings: return 5 }
    }

    var typeName: String {
        switch self { case .int: return "int"; case .float: return "float"; case .string: return "string"; case .ints: return "int array"; case .strings: return "string array" }
    }
}

/// Appends little-endian fields to a byte buffer.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += s.utf8 }

    mutating func value(_ v: MetadataValue) {
        u32(v.typeCode)
        switch v {
        case .int(let x): i64(x)
        case .float(let x): f64(x)
        case .string(let s): string(s)
        case .ints(let a): u64(UInt64(a.count)); a.forEach { i64($0) }
        case .strings(let a): u64(UInt64(a.count)); a.forEach { string($0) }
        }
    }
}

/// Reads little-endian fields from [position, end) of a buffer; every read is bounds-checked and a failure
/// throws `corruptHeader` saying what was being read.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    let end: Int
    let path: String

    func fail(_ what: String) -> ModelFileError {
        .corruptHeader(path: path, reason: what)
    }

    mutating func take(_ n: Int, _ what: String) throws -> Int {
        guard n >= 0, n <= end - position else {
            throw fail("\(what) at byte \(position) runs past the end of the header (byte \(end))")
        }
        defer { position += n }
        return position
    }

    mutating func u32(_ what: String) throws -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4, what), as: UInt32.self))
    }

    mutating func u64(_ what: String) throws -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8, what), as: UInt64.self))
    }

    mutating func i64(_ what: String) throws -> Int64 { Int64(bitPattern: try u64(what)) }

    /// A u64 that must fit in `limit`: counts and sizes.
    mutating func count(_ what: String, limit: Int) throws -> Int {
        let v = try u64(what)
        guard v <= UInt64(limit) else { throw fail("\(what) is \(v), more than the limit \(limit)") }
        return Int(v)
    }

    mutating func string(_ what: String, limit: Int) throws -> String {
        let n = try count("length of \(what)", limit: limit)
        let start = try take(n, what)
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<start + n])
        let s = String(decoding: raw, as: UTF8.self)   // replaces invalid sequences, so compare to detect them
        guard s.utf8.elementsEqual(raw) else { throw fail("\(what) is not valid UTF-8") }
        return s
    }

    mutating func value(_ what: String) throws -> MetadataValue {
        let type = try u32("type of \(what)")
        switch type {
        case 1: return .int(try i64(what))
        case 2: return .float(Double(bitPattern: try u64(what)))
        case 3: return .string(try string(what, limit: ModelFileLayout.maxStringBytes))
        case 4:
            let n = try count("length of \(what)", limit: min(ModelFileLayout.maxArrayCount, (end - position) / 8))
            return .ints(try (0..<n).map { _ in try i64(what) })
        case 5:
            let n = try count("length of \(what)", limit: min(ModelFileLayout.maxArrayCount, (end - position) / 8))
            return .strings(try (0..<n).map { i in try string("\(what)[\(i)]", limit: ModelFileLayout.maxStringBytes) })
        default:
            throw fail("\(what) has the unknown value type \(type) (known: 1 int, 2 float, 3 string, 4 int array, 5 string array)")
        }
    }
}
