// Headers that lie: every number a NIfTI or PNG header declares is checked before it is used or allocated for
// (docs/RELIABILITY.md). Each file here is a valid fixture with one field changed, so the refusal is that field's.
import Foundation
import SegmentCore
import SegmentImaging
import TestSupport
import XCTest

final class HostileHeaderTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try TestSupport.temporaryDirectory(self) }

    /// `broken/full.nii` (a valid little-endian NIfTI-1 file) with `patch` applied, written as NAME.
    func nifti1(_ name: String, _ patch: (inout Data) -> Void) throws -> String {
        var data = try Data(contentsOf: Fixtures.url("broken/full.nii"))
        patch(&data)
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    func put<T>(_ value: T, at offset: Int, in data: inout Data) {
        withUnsafeBytes(of: value) { data.replaceSubrange(offset ..< offset + $0.count, with: $0) }
    }

    /// The error `body` throws, checked to be `ImagingError` (or `MemoryBudget.TooLarge`) naming `path` and holding `fragment`.
    func assertRefused<T>(_ body: @autoclosure () throws -> T, _ fragment: String, _ path: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            let text = (e as? SegmentError)?.description ?? "\(e)"
            XCTAssertEqual((e as? SegmentError)?.exitCode, .invalidInput, text, file: file, line: line)
            XCTAssertTrue(text.contains(path) && text.contains(fragment), "\(text) lacks \(fragment)", file: file, line: line)
        }
    }

    func testNIfTI1FieldsAreCheckedBeforeUse() throws {
        // vox_offset (float at byte 108): NaN, infinite, beyond any file.
        for (name, v) in [("nan", Float.nan), ("inf", Float.infinity), ("big", 1e20), ("negative", -352)] {
            let p = try nifti1("vox_\(name).nii") { put(v, at: 108, in: &$0) }
            assertRefused(try NIfTIHeader.read(p), "vox_offset", p)
        }
        // A 352-byte header declaring 2000^3 int16 voxels: refused from the file size, before any allocation.
        let huge = try nifti1("huge.nii") { d in
            for (i, v) in [3, 2000, 2000, 2000, 1, 1, 1, 1].enumerated() { put(Int16(v), at: 40 + 2 * i, in: &d) }
            d = d.prefix(352)
        }
        assertRefused(try NIfTIVolume.read(huge), "bytes (voxel data from byte 352) but the file has 352", huge)
        // pixdim (floats at 76): a NaN voxel size.
        let spacing = try nifti1("pixdim.nii") { put(Float.nan, at: 80, in: &$0) }
        assertRefused(try NIfTIHeader.read(spacing), "pixdim[1]", spacing)
        // A qform that is the geometry (sform_code 0) with b² + c² + d² > 1: nibabel refuses it too.
        let quaternion = try nifti1("quaternion.nii") { d in
            put(Int16(1), at: 252, in: &d); put(Int16(0), at: 254, in: &d)
            put(Float(0.9), at: 256, in: &d); put(Float(0.9), at: 260, in: &d); put(Float(0), at: 264, in: &d)
        }
        assertRefused(try NIfTIHeader.read(quaternion), "not a rotation", quaternion)
        // The same quaternion under a valid sform is not used, and the file reads (as nibabel).
        let ignored = try nifti1("quaternion_sform.nii") { d in
            put(Int16(1), at: 252, in: &d); put(Int16(1), at: 254, in: &d)
            put(Float(0.9), at: 256, in: &d); put(Float(0.9), at: 260, in: &d)
            for (i, v) in [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0].enumerated() { put(Float(v), at: 280 + 4 * i, in: &d) }
        }
        XCTAssertNoThrow(try NIfTIVolume.read(ignored))
        // A non-finite sform in use.
        let sform = try nifti1("sform.nii") { d in put(Int16(1), at: 254, in: &d); put(Float.infinity, at: 284, in: &d) }
        assertRefused(try NIfTIHeader.read(sform), "srow", sform)
    }

    /// NIfTI-2 dims are 64-bit: a product that overflows Int is refused, not trapped on.
    func testNIfTI2DimsWhoseProductOverflows() throws {
        let source = try Data(contentsOf: Fixtures.url("header/sform_only_n2.nii.gz"))
        let plain = dir.appendingPathComponent("n2.nii.gz")
        try source.write(to: plain)
        let header = try NIfTIHeader.read(plain.path)
        XCTAssertEqual(header.version, 2)
        // Decompress with the project's Python, patch dim[1...3] (int64 at 16 + 8 i), write plain.
        let out = dir.appendingPathComponent("overflow.nii").path
        try TestSupport.python("""
            import gzip, struct, sys
            b = bytearray(gzip.open(sys.argv[1]).read())
            struct.pack_into('<4q', b, 16, 3, 2**40, 2**40, 2**40)
            open(sys.argv[2], 'wb').write(b)
            """, [plain.path, out])
        assertRefused(try NIfTIHeader.read(out), "more voxels than any file can hold", out)
    }

    /// A .nii.gz whose header declares more than deflate can expand its bytes to is refused before allocating.
    func testGzipThatCannotHoldTheDeclaredVoxels() throws {
        let out = dir.appendingPathComponent("bomb.nii.gz").path
        try TestSupport.python("""
            import gzip, struct, sys
            b = bytearray(open(sys.argv[1], 'rb').read()[:352])
            struct.pack_into('<8h', b, 40, 3, 1000, 1000, 1000, 1, 1, 1, 1)
            open(sys.argv[2], 'wb').write(gzip.compress(bytes(b)))
            """, [try Fixtures.path("broken/full.nii"), out])
        assertRefused(try NIfTIHeader.read(out), "gzip cannot expand", out)
    }

    /// A budget smaller than the voxels refuses the file with the numbers; a budget that fits reads it.
    func testMemoryBudget() throws {
        let path = try Fixtures.path("broken/full.nii")
        let bytes = try NIfTIHeader.read(path).voxelCount * NIfTIHeader.read(path).datatype.size
        assertRefused(try NIfTIVolume.read(path, budget: MemoryBudget(bytes: bytes - 1)), "memory budget", path)
        XCTAssertNoThrow(try NIfTIVolume.read(path, budget: MemoryBudget(bytes: bytes)))
        XCTAssertEqual(MemoryBudget(parsing: "8G")?.bytes, 8 << 30)
        XCTAssertEqual(MemoryBudget(parsing: "512m")?.bytes, 512 << 20)
        XCTAssertEqual(MemoryBudget(parsing: "1000")?.bytes, 1000)
        for bad in ["", "0", "-1G", "8GB", "1e9", "99999999999T"] { XCTAssertNil(MemoryBudget(parsing: bad), bad) }
    }

    /// FIFOs and devices are refused without being opened (opening a FIFO for reading would wait forever).
    func testNonRegularInputsAreRefusedWithoutBlocking() throws {
        for name in ["pipe.nii", "pipe.png"] {
            let fifo = dir.appendingPathComponent(name).path
            XCTAssertEqual(mkfifo(fifo, 0o600), 0)
            if name.hasSuffix(".png") { assertRefused(try PNGImage.read(fifo), "FIFO", fifo) }
            else { assertRefused(try NIfTIVolume.read(fifo), "FIFO", fifo) }
        }
        assertRefused(try PNGImage.read("/dev/zero"), "device", "/dev/zero")
        assertRefused(try NIfTIHeader.read("/dev/zero"), "device", "/dev/zero")
    }

    /// PNG headers declaring huge images in a few bytes: refused from the header, before pixels are allocated.
    func testPNGDimensionBombs() throws {
        func png(_ name: String, width: UInt32, height: UInt32, idat: [UInt8]) throws -> String {
            func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
                let typed = Array(type.utf8) + body
                return UInt32(body.count).bigEndianBytes + typed + crc32(typed).bigEndianBytes
            }
            let ihdr = width.bigEndianBytes + height.bigEndianBytes + [8, 2, 0, 0, 0]
            let bytes = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", [])
            let url = dir.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            return url.path
        }
        let tiny: [UInt8] = [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]   // zlib of one zero byte
        let wide = try png("30000.png", width: 30000, height: 30000, idat: tiny)
        assertRefused(try PNGImage.read(wide), "deflate cannot expand", wide)
        let bounded = try png("100.png", width: 100, height: 100, idat: tiny)
        assertRefused(try PNGImage.read(bounded, budget: MemoryBudget(bytes: 1 << 10)), "memory budget", bounded)
    }
}

private extension UInt32 {
    var bigEndianBytes: [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: self >> (24 - 8 * $0)) } }
}

/// CRC-32 (ISO 3309, as PNG chunks use), bit by bit: test data only.
private func crc32(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
    }
    return c ^ 0xFFFF_FFFF
}
