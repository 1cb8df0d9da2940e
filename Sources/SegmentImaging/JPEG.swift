// JPEG images through libjpeg-turbo. The decoding itself is the C target SegmentJPEG: libjpeg reports errors by
// longjmp, which must never cross a Swift frame, so the setjmp and every libjpeg call live in C and come back here
// as a return code and a message.
//
// What is read: baseline, extended and progressive files (Huffman or arithmetic coded), gray and YCbCr/RGB; CMYK
// and YCCK are refused. Decoder settings (libjpeg's defaults, which Pillow uses too): ISLOW integer DCT, fancy
// chroma upsampling, full scale, RGB out. Any libjpeg warning (truncated or corrupt entropy-coded data, extraneous
// bytes) is an error: libjpeg would otherwise fill the rest of the image with gray and carry on.
//
// EXIF orientation (APP1 "Exif", TIFF IFD0 tag 0x0112, a SHORT 1...8) is applied after decoding, so the pixels are
// the picture as viewers show it and the mask written for it overlays that picture. An orientation outside 1...8,
// of another type or count, or an Exif block that cannot be walked is ignored (orientation 1), as Pillow's
// ImageOps.exif_transpose ignores it. XMP orientation is not read.
import Foundation
import SegmentCore
import SegmentJPEG

/// A decoded JPEG: its 8-bit samples as stored and as shown.
public struct JPEGPicture: Sendable {
    /// Width and height as shown (after the EXIF orientation).
    public let width: Int
    public let height: Int
    /// 1 (gray) or 3 (RGB).
    public let channels: Int
    /// (height, width, channels) samples as shown, row-major.
    public let samples: [UInt8]
    /// The EXIF orientation applied (1 when the file has none).
    public let orientation: Int
    public let progressive: Bool
    /// Scans the file holds (1 for a baseline file with all components interleaved).
    public let scans: Int

    /// The picture as the value PNG reading returns: samples / 255 in [0, 1], bit depth 8.
    public func image(path: String) -> PNGImage {
        PNGImage(width: width, height: height, channels: channels, bitDepth: 8,
                 pixels: samples.map { Float($0) / 255 }, path: path)
    }
}

public enum JPEG {
    /// Reads `path` as a gray or RGB image in [0, 1] (the value `PNGImage.read` returns), EXIF orientation applied.
    /// Throws `ImagingError.invalidJPEG` / `.unreadable`, or `MemoryBudget.TooLarge` when the decoded image does not
    /// fit `budget` (checked from the header, before anything is decoded); all exit 3.
    public static func read(_ path: String, budget: MemoryBudget = .machineDefault) throws -> PNGImage {
        try decode(path, budget: budget).image(path: path)
    }

    /// libjpeg's JPEG_MAX_DIMENSION.
    static let maximumSide = 65500

    /// A progressive file has about 10 scans; each scan is a pass over every coefficient, so thousands of tiny
    /// scans are a way to make a small file cost minutes.
    static let maximumScans = 1000

    /// Decodes `path` (see `read`).
    public static func decode(_ path: String, budget: MemoryBudget = .machineDefault) throws -> JPEGPicture {
        // Before any open: reading a FIFO would block, and a device never ends.
        if let problem = notARegularFile(path) { throw ImagingError.unreadable(path: path, reason: problem) }
        var st = stat()
        if stat(path, &st) == 0 { try budget.check(Int(st.st_size), path: path, what: "reading the file") }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) }
        catch { throw ImagingError.unreadable(path: path, reason: "permission denied or I/O error") }
        guard !data.isEmpty else { throw ImagingError.invalidJPEG(path: path, problem: "the file is empty (0 bytes)") }
        return try data.withUnsafeBytes { try decode($0, path: path, budget: budget) }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, path: String, budget: MemoryBudget,
                       maximumScans: Int = JPEG.maximumScans) throws -> JPEGPicture {
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var info = segment_jpeg_info()
        guard segment_jpeg_read_header(base, bytes.count, &info) == Int32(SEGMENT_JPEG_OK) else {
            var problem = message(info)
            if let (w, h) = JPEGMarkers.declaredSize(bytes), max(w, h) > maximumSide {
                problem = "it declares \(w) x \(h) pixels; libjpeg reads at most \(maximumSide) a side (\(problem))"
            }
            throw ImagingError.invalidJPEG(path: path, problem: problem)
        }
        let (W, H) = (Int(info.width), Int(info.height))
        guard info.output_channels != 0 else {
            let space = [Int32(SEGMENT_JPEG_CMYK): "CMYK", Int32(SEGMENT_JPEG_YCCK): "YCCK (Adobe CMYK)"][info.color_space]
                ?? "an unknown colour space"
            throw ImagingError.invalidJPEG(path: path, problem: "it is \(space) with \(info.components) components; "
                + "this tool reads gray, YCbCr and RGB JPEGs (convert it to RGB first)")
        }
        let C = Int(info.output_channels)
        // Huffman coding spends at least one bit on every 8x8 block (its DC category), so a file shorter than
        // blocks / 8 bytes cannot hold the image it declares: refused before the pixels are allocated. Arithmetic
        // coding has no such floor; the memory budget alone bounds those files.
        let leastBytes = Int(info.blocks) / 8
        guard info.arithmetic != 0 || leastBytes <= bytes.count else {
            throw ImagingError.invalidJPEG(path: path, problem: "it declares \(W) x \(H) pixels, \(info.blocks) blocks of "
                + "at least one bit each, but has only \(bytes.count) bytes: the image data is missing or truncated")
        }
        // libjpeg's coefficients (2 bytes a sample, for files read in several scans), the decoded samples, their
        // oriented copy, and the floats handed out.
        let perPixel = 2 * Int(info.components) + 2 * C + 4 * C
        try budget.check(checkedProduct([W, H, perPixel]), path: path, what: "decoding its \(W) x \(H) pixels")

        var stored = [UInt8](repeating: 0, count: W * H * C)         // (H, W, C) as stored
        let status = stored.withUnsafeMutableBytes {
            segment_jpeg_decode(base, bytes.count, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count,
                                Int32(clamping: maximumScans), Int(clamping: budget.bytes), &info)
        }
        guard status == Int32(SEGMENT_JPEG_OK) else {
            throw ImagingError.invalidJPEG(path: path, problem: message(info))
        }
        let orientation = EXIFOrientation.read(bytes)
        let (samples, shownW, shownH) = EXIFOrientation.apply(orientation, stored, width: W, height: H, channels: C)
        return JPEGPicture(width: shownW, height: shownH, channels: C, samples: samples, orientation: orientation,
                           progressive: info.progressive != 0, scans: Int(info.scans))
    }

    static func message(_ info: segment_jpeg_info) -> String {
        let text = withUnsafeBytes(of: info.message) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        return text.isEmpty ? "libjpeg could not decode it" : text
    }
}

/// The header segments of a JPEG file, walked without libjpeg (for what it does not hand out).
enum JPEGMarkers {
    /// Calls `visit(marker, payload)` for each segment from SOI to the first scan, until it returns true. Stops
    /// quietly at anything malformed: a segment whose length runs past the file is never visited.
    static func walk(_ b: UnsafeRawBufferPointer, _ visit: (UInt8, UnsafeRawBufferPointer) -> Bool) {
        let n = b.count
        guard n >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return }
        var i = 2
        while i + 1 < n {
            guard b[i] == 0xFF else { return }
            while i + 1 < n && b[i + 1] == 0xFF { i += 1 }     // fill bytes
            guard i + 1 < n else { return }
            let marker = b[i + 1]
            if marker == 0xDA || marker == 0xD9 { return }       // first scan, or the end: no more headers
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }   // no length
            guard i + 4 <= n else { return }
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])     // counts its own 2 bytes
            guard length >= 2, i + 2 + length <= n else { return }
            if visit(marker, UnsafeRawBufferPointer(rebasing: b[(i + 4)..<(i + 2 + length)])) { return }
            i += 2 + length
        }
    }

    /// (width, height) of the first SOF segment, or nil.
    static func declaredSize(_ b: UnsafeRawBufferPointer) -> (Int, Int)? {
        var size: (Int, Int)?
        walk(b) { marker, p in
            // SOF0...SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width, components.
            guard (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker), p.count >= 5 else { return false }
            size = (Int(p[3]) << 8 | Int(p[4]), Int(p[1]) << 8 | Int(p[2]))
            return true
        }
        return size
    }
}

/// The EXIF orientation of a JPEG: how the stored rows and columns map onto the picture as shown.
public enum EXIFOrientation {
    /// The orientation tag of the first APP1 Exif segment before the first scan; 1 when there is none or it is
    /// unusable. Every offset is checked against the segment it lies in.
    public static func read(_ b: UnsafeRawBufferPointer) -> Int {
        var orientation = 1
        JPEGMarkers.walk(b) { marker, payload in
            guard marker == 0xE1, payload.count >= 6, payload.prefix(6).elementsEqual([0x45, 0x78, 0x69, 0x66, 0, 0]) else {
                return false
            }
            orientation = tiffOrientation(UnsafeRawBufferPointer(rebasing: payload[6...]))
            return true
        }
        return orientation
    }

    /// Tag 0x0112 of IFD0 of a TIFF header, or 1.
    static func tiffOrientation(_ t: UnsafeRawBufferPointer) -> Int {
        let m = t.count
        guard m >= 8 else { return 1 }
        let little: Bool
        switch (t[0], t[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return 1
        }
        func u16(_ at: Int) -> Int { little ? Int(t[at]) | Int(t[at + 1]) << 8 : Int(t[at]) << 8 | Int(t[at + 1]) }
        func u32(_ at: Int) -> Int { little ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2) }
        guard u16(2) == 42 else { return 1 }
        let ifd = u32(4)
        guard ifd <= m - 2 else { return 1 }
        let entries = u16(ifd)
        for k in 0..<entries {
            let e = ifd + 2 + 12 * k
            guard e + 12 <= m else { return 1 }
            guard u16(e) == 0x0112 else { continue }
            // A SHORT (type 3), one value, stored in the first two bytes of the value field.
            guard u16(e + 2) == 3, u32(e + 4) == 1 else { return 1 }
            let value = u16(e + 8)
            return (1...8).contains(value) ? value : 1
        }
        return 1
    }

    /// `stored` (height, width, channels) as shown under `orientation`: returns the (shownH, shownW, channels)
    /// samples and the shown width and height (swapped for 5...8).
    ///   1 as stored; 2 mirrored left-right; 3 turned 180 degrees; 4 mirrored top-bottom; 5 transposed (mirrored
    ///   about the main diagonal); 6 turned 90 degrees clockwise; 7 transversed (mirrored about the anti-diagonal);
    ///   8 turned 90 degrees anticlockwise.
    public static func apply<T>(_ orientation: Int, _ stored: [T], width W: Int, height H: Int, channels C: Int)
        -> (samples: [T], width: Int, height: Int) {
        precondition(stored.count == W * H * C, "samples are not height x width x channels")
        guard (2...8).contains(orientation) else { return (stored, W, H) }
        let swaps = orientation >= 5
        let (outW, outH) = swaps ? (H, W) : (W, H)
        // The stored (row, column) shown at (r, c).
        let source: (Int, Int) -> (Int, Int)
        switch orientation {
        case 2: source = { r, c in (r, W - 1 - c) }
        case 3: source = { r, c in (H - 1 - r, W - 1 - c) }
        case 4: source = { r, c in (H - 1 - r, c) }
        case 5: source = { r, c in (c, r) }
        case 6: source = { r, c in (H - 1 - c, r) }
        case 7: source = { r, c in (H - 1 - c, W - 1 - r) }
        default: source = { r, c in (c, W - 1 - r) }
        }
        var out = stored                                            // (outH, outW, C) as shown
        for r in 0..<outH {
            for c in 0..<outW {
                let (sr, sc) = source(r, c)
                for k in 0..<C { out[(r * outW + c) * C + k] = stored[(sr * W + sc) * C + k] }
            }
        }
        return (out, outW, outH)
    }
}
