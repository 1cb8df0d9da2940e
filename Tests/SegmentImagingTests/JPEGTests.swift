// JPEG decoding against Pillow (trainer/fixtures/gen_jpeg.py, OUTDIR/jpeg/decode/): every sample of every file equal,
// EXIF orientation included; and the refusals of damaged and hostile files.
import Foundation
import SegmentCore
import TestSupport
import XCTest
@testable import SegmentImaging

final class JPEGTests: XCTestCase {
    struct Entry: Decodable {
        let file: String
        let source: String
        let mode: String
        let orientation: Int
        let progressive: Bool
        let shape: [Int]
    }

    /// The uint8 samples of a .npy file numpy wrote (format 1.0, C order): the bytes after the header.
    func npyBytes(_ url: URL) throws -> [UInt8] {
        let data = try Data(contentsOf: url)
        XCTAssertEqual(Array(data.prefix(8)), [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.contains("'descr': '|u1'") && header.contains("'fortran_order': False"), header)
        return Array(data[(10 + headerLength)...])
    }

    /// Decoder settings as documented (ISLOW, fancy upsampling) give Pillow's samples exactly, for the scikit-image
    /// photos and the synthetic encodings (qualities, 4:2:0 / 4:2:2 / 4:4:4, progressive, gray, odd sizes,
    /// orientations 1-8 in both byte orders).
    func testDecodeEqualsPillow() throws {
        let folder = try TestSupport.fixture("jpeg/decode")
        let entries = try JSONDecoder().decode([Entry].self, from: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
        XCTAssertGreaterThanOrEqual(entries.count, 25)
        XCTAssertEqual(Set(entries.map(\.orientation)), Set(1...8))
        XCTAssertTrue(entries.contains { $0.progressive } && entries.contains { $0.mode == "L" })
        XCTAssertTrue(entries.contains { $0.source.hasPrefix("scikit-image") })
        var samples = 0
        for e in entries {
            let path = folder.appendingPathComponent(e.file).path
            let picture = try JPEG.decode(path)
            let want = try npyBytes(folder.appendingPathComponent(String(e.file.dropLast(4)) + ".npy"))
            XCTAssertEqual([picture.height, picture.width] + (picture.channels == 3 ? [3] : []), e.shape, e.file)
            XCTAssertEqual(picture.channels, e.mode == "L" ? 1 : 3, e.file)
            XCTAssertEqual(picture.orientation, e.orientation, e.file)
            XCTAssertEqual(picture.progressive, e.progressive, e.file)
            guard picture.samples.count == want.count else { XCTFail("\(e.file): sample count"); continue }
            let differing = zip(picture.samples, want).filter { $0 != $1 }.count
            let largest = zip(picture.samples, want).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertEqual(differing, 0, "\(e.file): \(differing) samples differ from Pillow's, by up to \(largest)")
            samples += want.count
            // The image value handed to the pipeline: samples / 255.
            let image = picture.image(path: path)
            XCTAssertEqual(image.bitDepth, 8)
            XCTAssertEqual(image.pixels.map { UInt8(($0 * 255).rounded()) }, picture.samples, e.file)
        }
        print("JPEG decode vs Pillow: \(entries.count) files, \(samples) samples, all equal")
    }

    /// The orientation transforms against a small array with known answers (the fixtures check them on pictures).
    func testOrientationTransforms() {
        // (H, W) = (2, 3):  a b c / d e f
        let s = Array("abcdef")
        func shown(_ o: Int) -> String {
            let r = EXIFOrientation.apply(o, s, width: 3, height: 2, channels: 1)
            return String(r.samples) + " \(r.width)x\(r.height)"
        }
        XCTAssertEqual(shown(1), "abcdef 3x2")
        XCTAssertEqual(shown(2), "cbafed 3x2")
        XCTAssertEqual(shown(3), "fedcba 3x2")
        XCTAssertEqual(shown(4), "defabc 3x2")
        XCTAssertEqual(shown(5), "adbecf 2x3")
        XCTAssertEqual(shown(6), "daebfc 2x3")
        XCTAssertEqual(shown(7), "fcebda 2x3")
        XCTAssertEqual(shown(8), "cfbead 2x3")
        XCTAssertEqual(shown(9), "abcdef 3x2", "values outside 1...8 are ignored")
    }

    /// Exif blocks that lie about their offsets are ignored, never read past.
    func testDamagedExifIsIgnored() {
        func orientation(_ bytes: [UInt8]) -> Int { bytes.withUnsafeBytes { EXIFOrientation.read($0) } }
        let exif: [UInt8] = Array("Exif".utf8) + [0, 0]
        func app1(_ tiff: [UInt8]) -> [UInt8] {
            let length = exif.count + tiff.count + 2
            return [0xFF, 0xD8, 0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + exif + tiff + [0xFF, 0xD9]
        }
        let good: [UInt8] = [0x4D, 0x4D, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]
        XCTAssertEqual(orientation(app1(good)), 6)
        var farIFD = good; farIFD[7] = 0xF0                       // IFD0 past the segment
        XCTAssertEqual(orientation(app1(farIFD)), 1)
        var manyEntries = good; manyEntries[9] = 0xFF; manyEntries[11] = 0   // 255 entries (the first not 0x0112) in 26 bytes
        XCTAssertEqual(orientation(app1(manyEntries)), 1)
        var long = good; long[13] = 4                               // a LONG, not a SHORT
        XCTAssertEqual(orientation(app1(long)), 1)
        var zero = good; zero[19] = 0
        XCTAssertEqual(orientation(app1(zero)), 1)
        var segment = app1(good); segment[5] = 0xFF                 // APP1 length past the file's end
        XCTAssertEqual(orientation(segment), 1)
        XCTAssertEqual(orientation(Array(app1(good).prefix(9))), 1)
        XCTAssertEqual(orientation([]), 1)
    }

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = try TestSupport.temporaryDirectory(self).appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func fixtureBytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: TestSupport.fixture("jpeg/decode/" + name)))
    }

    /// The offset of the SOF0/SOF2 marker's height field.
    func sofHeightOffset(_ b: [UInt8]) -> Int? {
        var i = 2
        while i + 4 < b.count {
            guard b[i] == 0xFF else { return nil }
            if b[i + 1] == 0xC0 || b[i + 1] == 0xC2 { return i + 5 }
            i += 2 + (Int(b[i + 2]) << 8 | Int(b[i + 3]))
        }
        return nil
    }

    func testTruncatedEmptyAndDamagedFilesAreRefused() throws {
        let good = try fixtureBytes("synth_q90_444.jpg")
        let truncated = try write(Array(good.prefix(good.count / 2)), "truncated.jpg")
        let e = assertImagingError(try JPEG.read(truncated), "invalidJPEG", path: truncated)
        XCTAssertEqual(e?.exitCode, .invalidInput)
        XCTAssertTrue("\(e!)".lowercased().contains("premature end") || "\(e!)".contains("truncated"), "\(e!)")

        let progressive = try fixtureBytes("synth_progressive.jpg")
        let cut = try write(Array(progressive.prefix(progressive.count * 2 / 3)) + [0xFF, 0xD9], "cut_progressive.jpg")
        assertImagingError(try JPEG.read(cut), "invalidJPEG", path: cut)

        let empty = try write([], "empty.jpg")
        let emptyError = assertImagingError(try JPEG.read(empty), "invalidJPEG", path: empty)
        XCTAssertTrue("\(emptyError!)".contains("empty"))

        let png = try write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0], "png.jpg")
        assertImagingError(try JPEG.read(png), "invalidJPEG", path: png)

        // Entropy-coded bytes flipped in the middle of the scan: corrupt data is an error, not gray.
        var flipped = good
        for k in stride(from: good.count / 2, to: good.count / 2 + 400, by: 7) { flipped[k] = 0xFF }
        let corrupt = try write(flipped, "corrupt.jpg")
        assertImagingError(try JPEG.read(corrupt), "invalidJPEG", path: corrupt)
    }

    /// 65500 x 65500 (libjpeg's largest) declared by a file of a few KB: refused from the header, nothing decoded.
    func testDimensionBombIsRefusedBeforeDecoding() throws {
        var b = try fixtureBytes("synth_one_pixel.jpg")
        let at = try XCTUnwrap(sofHeightOffset(b))
        b[at] = 0xFF; b[at + 1] = 0xDC; b[at + 2] = 0xFF; b[at + 3] = 0xDC       // 65500 x 65500
        let path = try write(b, "bomb.jpg")
        let e = assertImagingError(try JPEG.read(path, budget: MemoryBudget(bytes: 1 << 50)), "invalidJPEG", path: path)
        XCTAssertTrue("\(e!)".contains("65500 x 65500"), "\(e!)")
        // Within the byte bound but not the budget: the budget's refusal, with the numbers.
        let small = try write(try fixtureBytes("synth_q95_420.jpg"), "small.jpg")
        XCTAssertThrowsError(try JPEG.read(small, budget: MemoryBudget(bytes: 100_000))) { error in
            XCTAssertTrue(error is MemoryBudget.TooLarge, "\(error)")
        }
    }

    /// The scan limit, exercised with a limit below the 10 scans of Pillow's progressive file.
    func testScanLimit() throws {
        let bytes = try fixtureBytes("synth_progressive.jpg")
        let scans = try bytes.withUnsafeBytes { try JPEG.decode($0, path: "p.jpg", budget: .machineDefault) }.scans
        XCTAssertGreaterThan(scans, 4)
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try JPEG.decode($0, path: "p.jpg", budget: .machineDefault, maximumScans: 4) }) { e in
            XCTAssertTrue("\(e)".contains("more than 4 scans"), "\(e)")
        }
        XCTAssertEqual(try bytes.withUnsafeBytes { try JPEG.decode($0, path: "p.jpg", budget: .machineDefault, maximumScans: scans) }.scans, scans)
    }

    func testCMYKIsRefused() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let path = dir.appendingPathComponent("cmyk.jpg").path
        try TestSupport.python("""
            import sys; from PIL import Image
            Image.new('CMYK', (16, 12), (10, 20, 30, 40)).save(sys.argv[1], quality=90)
            """, [path])
        let e = assertImagingError(try JPEG.read(path), "invalidJPEG", path: path)
        XCTAssertTrue("\(e!)".contains("CMYK") || "\(e!)".contains("YCCK"), "\(e!)")
    }

    func testFIFOIsRefusedWithoutOpening() throws {
        let path = try TestSupport.temporaryDirectory(self).appendingPathComponent("x.jpg").path
        XCTAssertEqual(mkfifo(path, 0o600), 0)
        let e = assertImagingError(try JPEG.read(path), "unreadable", path: path)
        XCTAssertTrue("\(e!)".contains("FIFO"), "\(e!)")
    }
}
