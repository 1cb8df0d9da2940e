// A minimal zip reader for PyTorch's archive format (torch.save since 1.6): it reads the central directory
// (zip64 too), checks every offset and size against the file, and hands out stored (uncompressed) entries as
// views of the mapped file after checking their CRC-32. Compressed, encrypted or multi-disk archives are refused:
// PyTorch never writes them.
import SegmentCore

struct ZipEntry {
    let name: String
    let flags: Int
    let method: Int
    let crc32: UInt32
    let compressedSize: Int
    let size: Int
    let localHeaderOffset: Int
    /// Where the entry's local header and data must end: the next entry's local header, or the central directory.
    var limit = 0
}

struct ZipArchive {
    let file: MappedFile
    /// Entries in central-directory order, and by name.
    let entries: [ZipEntry]
    let byName: [String: ZipEntry]
    /// Where the central directory starts: every entry's data must end before it.
    let centralDirectoryOffset: Int

    static func isZip(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4B && (bytes[2], bytes[3]) == (3, 4)
    }

    init(_ file: MappedFile) throws {
        self.file = file
        let path = file.path, bytes = file.bytes
        func corrupt(_ reason: String) -> ConvertError { .malformedArchive(path: path, reason: reason) }

        // End of central directory record: the last "PK\5\6" within the 64 KiB comment window.
        let eocdSize = 22
        guard bytes.count >= eocdSize else { throw ConvertError.truncated(path: path, what: "the zip archive has no end-of-directory record") }
        var eocd = -1
        var p = bytes.count - eocdSize
        let lowest = max(0, bytes.count - eocdSize - 0xFFFF)
        while p >= lowest {
            if bytes[p] == 0x50 && bytes[p + 1] == 0x4B && bytes[p + 2] == 5 && bytes[p + 3] == 6 { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else {
            throw ConvertError.truncated(path: path, what: "the zip archive has no end-of-directory record (the end of the file is missing)")
        }
        var r = ByteReader(bytes, from: eocd + 4) { corrupt("the end-of-directory record is cut short (\($0))") }
        let disk = try r.u16("the disk number"), cdDisk = try r.u16("the directory disk")
        _ = try r.u16("the entries on this disk")
        var count = try r.u16("the entry count")
        var cdSize = try r.u32("the directory size"), cdOffset = try r.u32("the directory offset")
        guard disk == 0 && cdDisk == 0 else { throw corrupt("it spans several disks") }

        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // Zip64: a locator just before the record points at the zip64 end-of-directory record.
            guard eocd >= 20 else { throw corrupt("the zip64 locator is missing") }
            var l = ByteReader(bytes, from: eocd - 20, to: eocd) { corrupt("the zip64 locator is cut short (\($0))") }
            guard try l.uintLE(4, "the locator signature") == 0x0706_4B50 else { throw corrupt("the zip64 locator is missing") }
            _ = try l.u32("the zip64 disk")
            let recordOffset = try l.u64("the zip64 record offset")
            guard recordOffset >= 0, recordOffset < eocd - 20 else { throw corrupt("the zip64 record offset \(recordOffset) is outside the file") }
            var z = ByteReader(bytes, from: recordOffset, to: eocd - 20) { corrupt("the zip64 record is cut short (\($0))") }
            guard try z.uintLE(4, "the zip64 signature") == 0x0606_4B50 else { throw corrupt("the zip64 end-of-directory record is missing") }
            try z.skip(8 + 2 + 2 + 4 + 4 + 8, "the zip64 record header")
            count = try z.u64("the zip64 entry count")
            cdSize = try z.u64("the zip64 directory size")
            cdOffset = try z.u64("the zip64 directory offset")
        }
        guard cdOffset >= 0, cdSize >= 0, cdOffset <= eocd, cdSize <= eocd - cdOffset else {
            throw ConvertError.truncated(path: path, what: "the zip central directory (offset \(cdOffset), \(cdSize) bytes) lies outside the file's \(bytes.count) bytes")
        }
        let fixedSize = 46
        guard count >= 0, count <= cdSize / fixedSize else { throw corrupt("\(count) entries cannot fit in a \(cdSize)-byte directory") }

        var list: [ZipEntry] = [], byName: [String: ZipEntry] = [:]
        var c = ByteReader(bytes, from: cdOffset, to: cdOffset + cdSize) { corrupt("the central directory is cut short (\($0))") }
        for _ in 0..<count {
            guard try c.uintLE(4, "an entry signature") == 0x0201_4B50 else { throw corrupt("a central directory entry has a bad signature") }
            try c.skip(4, "version fields")
            let flags = try c.u16("flags"), method = try c.u16("the method")
            try c.skip(4, "the time and date")
            let crc = UInt32(try c.uintLE(4, "the CRC"))
            var csize = try c.u32("the compressed size"), usize = try c.u32("the size")
            let nameLength = try c.u16("the name length"), extraLength = try c.u16("the extra length")
            let commentLength = try c.u16("the comment length")
            let startDisk = try c.u16("the start disk")
            try c.skip(6, "attributes")
            var offset = try c.u32("the local header offset")
            let nameBytes = try c.take(nameLength, "an entry name")
            guard let name = String(validating: nameBytes, as: UTF8.self) else { throw corrupt("an entry name is not UTF-8") }
            // The zip64 extra field holds, in this order, the 32-bit fields that are saturated.
            var e = ByteReader(try c.take(extraLength, "the extra field of \(shown(name))")) { corrupt("the extra field of \(shown(name)) is cut short (\($0))") }
            while e.remaining >= 4 {
                let id = try e.u16("an extra id"), size = try e.u16("an extra size")
                var x = ByteReader(try e.take(size, "an extra block")) { corrupt("the zip64 field of \(shown(name)) is cut short (\($0))") }
                guard id == 0x0001 else { continue }
                if usize == 0xFFFF_FFFF { usize = try x.u64("the zip64 size") }
                if csize == 0xFFFF_FFFF { csize = try x.u64("the zip64 compressed size") }
                if offset == 0xFFFF_FFFF { offset = try x.u64("the zip64 offset") }
            }
            try c.skip(commentLength, "the comment of \(shown(name))")
            guard startDisk == 0 || startDisk == 0xFFFF else { throw corrupt("entry \(shown(name)) is on another disk") }
            guard usize >= 0, csize >= 0, offset >= 0 else { throw corrupt("entry \(shown(name)) has sizes or an offset beyond 2^63") }
            let entry = ZipEntry(name: name, flags: flags, method: method, crc32: crc, compressedSize: csize, size: usize,
                                 localHeaderOffset: offset)
            guard byName[name] == nil else { throw corrupt("entry \(shown(name)) appears twice") }
            list.append(entry); byName[name] = entry
        }
        // Entries must not overlap: each one's local header and data end before the next local header (a second
        // entry inside another's data would alias its bytes). Two entries at one offset are refused outright.
        let offsets = list.map(\.localHeaderOffset).sorted()
        var next: [Int: Int] = [:]
        for (a, b) in zip(offsets, offsets.dropFirst()) {
            if a == b {
                let same = list.filter { $0.localHeaderOffset == a }.map(\.name)
                throw corrupt("entries \(same[0]) and \(same[1]) share the local header at byte \(a)")
            }
            next[a] = b
        }
        for i in list.indices {
            list[i].limit = min(next[list[i].localHeaderOffset] ?? cdOffset, cdOffset)
            byName[list[i].name] = list[i]
        }
        entries = list
        self.byName = byName
        centralDirectoryOffset = cdOffset
    }

    /// The bytes of a stored entry, as a view of the mapped file, after checking its local header, its place in
    /// the file and its CRC-32.
    func data(_ entry: ZipEntry) throws -> UnsafeRawBufferPointer {
        let path = file.path, name = entry.name
        func corrupt(_ reason: String) -> ConvertError { .malformedArchive(path: path, reason: "entry \(shown(name)) \(reason)") }
        guard entry.flags & 1 == 0 else { throw corrupt("is encrypted") }
        guard entry.method == 0 else { throw ConvertError.compressedEntry(path: path, entry: name, method: entry.method) }
        guard entry.compressedSize == entry.size else { throw corrupt("is stored but its sizes differ (\(entry.compressedSize) and \(entry.size))") }
        let overlaps = entry.limit < centralDirectoryOffset
        var r = ByteReader(file.bytes, from: entry.localHeaderOffset, to: entry.limit) { _ in
            overlaps
                ? corrupt("has a local header at byte \(entry.localHeaderOffset) that runs into the next entry at byte \(entry.limit) (the entries overlap)")
                : ConvertError.truncated(path: path, what: "zip entry \(shown(name)) starts at byte \(entry.localHeaderOffset), past the end of the archive's data (\(centralDirectoryOffset) bytes)")
        }
        guard try r.uintLE(4, "a local header") == 0x0403_4B50 else { throw corrupt("has no local header at byte \(entry.localHeaderOffset)") }
        try r.skip(22, "a local header")
        let nameLength = try r.u16("a local header"), extraLength = try r.u16("a local header")
        let localName = try r.take(nameLength, "a local header")
        guard localName.elementsEqual(name.utf8) else { throw corrupt("has a different name in its local header") }
        try r.skip(extraLength, "a local header")
        let start = r.position
        guard entry.size <= centralDirectoryOffset - start else {
            throw ConvertError.truncated(path: path, what: "zip entry \(shown(name)) claims \(entry.size) bytes at byte \(start), past the end of the archive's data (\(centralDirectoryOffset) bytes)")
        }
        guard entry.size <= r.remaining else {
            throw corrupt("claims \(entry.size) bytes at byte \(start), which run into the next entry at byte \(entry.limit) (the entries overlap)")
        }
        let bytes = try r.take(entry.size, "entry data")
        guard CRC32.checksum(bytes) == entry.crc32 else { throw ConvertError.checksumMismatch(path: path, entry: name) }
        return bytes
    }
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zip stores it.
enum CRC32 {
    /// table[k][b]: the CRC of byte b followed by k zero bytes (slicing-by-8).
    static let table: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for b in 0..<256 {
            var c = UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[0][b] = c
        }
        for k in 1..<8 { for b in 0..<256 { t[k][b] = (t[k - 1][b] >> 8) ^ t[0][Int(t[k - 1][b] & 0xFF)] } }
        return t
    }()

    /// The naive twin: one table lookup per byte.
    static func checksumBytewise(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        let t0 = table[0]
        for b in bytes { c = t0[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return ~c
    }

    /// Slicing-by-8: eight bytes per step through eight tables (same result as `checksumBytewise`).
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        let flat = table.flatMap { $0 }
        return flat.withUnsafeBufferPointer { t in
            var i = 0
            let n = bytes.count
            while i + 8 <= n {
                let lo = c ^ (UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                  ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                  ^ t[3 * 256 + Int(bytes[i + 4])] ^ t[2 * 256 + Int(bytes[i + 5])]
                  ^ t[1 * 256 + Int(bytes[i + 6])] ^ t[Int(bytes[i + 7])]
                i += 8
            }
            while i < n { c = t[Int((c ^ UInt32(bytes[i])) & 0xFF)] ^ (c >> 8); i += 1 }
            return ~c
        }
    }
}
