// PNG images through libpng's simplified API (png_image): errors come back as return values and a message,
// never through setjmp/longjmp.
//
// How each file is read (the simplified API converts to the format asked for; these choices avoid every
// conversion except bit-depth expansion):
//   gray files -> gray, colour and palette files -> RGB; a file with alpha (or tRNS) is read with its alpha
//   channel, which is then dropped (asking for a format without alpha would composite onto a background).
//   8-bit and smaller: 8-bit output (1/2/4-bit gray and palette entries expanded to 0...255 by libpng).
//   16-bit: 16-bit "linear" output, which for a file without a gAMA/sRGB chunk is the stored value. With alpha,
//   libpng premultiplies that output by alpha; the colour is recovered by dividing by alpha (exact where opaque,
//   within 0.5 / alpha of full scale elsewhere, 0 where fully transparent). libpng's 16-to-8-bit alternative
//   (PNG_IMAGE_FLAG_16BIT_sRGB) scrambles interlaced images in libpng 1.6.39, so it is not used.
// A gAMA or sRGB chunk makes libpng convert gamma (to sRGB for 8-bit output, to linear for 16-bit output).
import CPNG
import Foundation
import SegmentCore

/// A decoded PNG: gray or RGB floats in [0, 1].
///
/// Every colour type and bit depth is read (gray 1/2/4/8/16, gray+alpha, RGB, RGBA, palette, interlaced).
/// Alpha (and tRNS transparency) is dropped: the colour stored under it is kept, never composited. Values are
/// v / (2^depth - 1) of the decoded sample: 8-bit v / 255, 16-bit v / 65535 (the same full-range scaling);
/// 1/2/4-bit gray and palette entries are decoded to 8 bits first. 16-bit images with alpha: exact where opaque,
/// within 0.5 / alpha elsewhere, 0 where fully transparent (see above). A gray file gives one channel, a colour
/// or palette file three.
public struct PNGImage: Sendable {
    public let width: Int
    public let height: Int
    /// 1 (gray) or 3 (RGB).
    public let channels: Int
    /// Stored bit depth per channel (8 for 1/2/4/8-bit and palette files, 16 for 16-bit files).
    public let bitDepth: Int
    /// (height, width, channels), row-major, values in [0, 1].
    public let pixels: [Float]
    /// The file it was read from ("" when made in memory).
    public let path: String

    public init(width: Int, height: Int, channels: Int, bitDepth: Int, pixels: [Float], path: String = "") {
        precondition(pixels.count == width * height * channels, "pixels is not height x width x channels")
        self.width = width; self.height = height; self.channels = channels; self.bitDepth = bitDepth
        self.pixels = pixels; self.path = path
    }

    /// The integer samples of a gray image, for label masks (0/255 or 0, 1, 2, ...): pixel * (2^bitDepth - 1),
    /// exact. Throws `notALabelImage` for a colour image.
    public func labels() throws -> [UInt16] {
        guard channels == 1 else {
            throw ImagingError.notALabelImage(path: path, problem: "it is a colour image (\(channels) channels), not a gray mask")
        }
        let scale: Float = bitDepth == 16 ? 65535 : 255
        return pixels.map { UInt16(($0 * scale).rounded()) }
    }

    /// Reads `path`. Throws `ImagingError.invalidPNG` / `.unreadable` (exit 3).
    /// The decoded image must fit `budget` (else `MemoryBudget.TooLarge`, exit 3): checked from the header, before
    /// the pixels are allocated.
    public static func read(_ path: String, budget: MemoryBudget = .machineDefault) throws -> PNGImage {
        // Before any open: reading a FIFO would block, and a device never ends.
        if let problem = notARegularFile(path) { throw ImagingError.unreadable(path: path, reason: problem) }
        var st = stat()
        if stat(path, &st) == 0 {
            // Foundation's Data(contentsOf:) leaks a page-sized buffer on an empty file; nothing is read from one.
            guard st.st_size > 0 else { throw ImagingError.invalidPNG(path: path, problem: "the file is empty (0 bytes)") }
            try budget.check(Int(st.st_size), path: path, what: "reading the file")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) }
        catch {
            throw ImagingError.unreadable(path: path, reason: "permission denied or I/O error")
        }
        if let problem = data.withUnsafeBytes(PNGImage.chunkProblem) { throw ImagingError.invalidPNG(path: path, problem: problem) }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let begun = data.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard begun != 0 else {
            throw ImagingError.invalidPNG(path: path, problem: PNGImage.message(image))
        }
        let file = image.format
        let color = file & (PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_COLORMAP) != 0
        let alpha = file & PNG_FORMAT_FLAG_ALPHA != 0
        let sixteen = file & PNG_FORMAT_FLAG_LINEAR != 0
        image.format = (color ? PNG_FORMAT_FLAG_COLOR : 0) | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0)
            | (sixteen ? PNG_FORMAT_FLAG_LINEAR : 0)

        let W = Int(image.width), H = Int(image.height)
        let C = color ? 3 : 1                   // channels handed out
        let stored = C + (alpha ? 1 : 0)        // channels decoded
        let samples = W * H * stored
        // libpng's compiled-in limits keep W and H at most 1,000,000 (docs/RELIABILITY.md), so these cannot overflow.
        let decoded = samples * (sixteen ? 2 : 1) + W * H * C * MemoryLayout<Float>.size
        // Even a 1-bit image is a filter byte and W / 8 bytes a row before compression.
        let leastRaw = H * (1 + (W + 7) / 8)
        guard leastRaw / deflateMaximumRatio <= data.count else {
            png_image_free(&image)
            throw ImagingError.invalidPNG(path: path, problem: "it declares \(W) x \(H) pixels, at least \(leastRaw) bytes of image data, but deflate cannot expand its \(data.count) bytes that far: the image data is missing or truncated")
        }
        do { try budget.check(decoded, path: path, what: "decoding its \(W) x \(H) pixels") }
        catch { png_image_free(&image); throw error }
        var pixels = [Float](repeating: 0, count: W * H * C)
        // (H, W, stored) decoded samples -> (H, W, C) floats, alpha dropped.
        func convert<T: BinaryInteger>(_ decoded: UnsafeBufferPointer<T>, _ scale: Float) {
            for p in 0..<(W * H) {
                for c in 0..<C { pixels[p * C + c] = Float(decoded[p * stored + c]) / scale }
            }
        }
        // 16-bit with alpha: (H, W, stored) colour premultiplied by alpha -> (H, W, C) floats.
        func unpremultiply(_ decoded: UnsafeBufferPointer<UInt16>) {
            for p in 0..<(W * H) {
                let a = Double(decoded[p * stored + C])
                for c in 0..<C {
                    let v = a > 0 ? min(65535, (Double(decoded[p * stored + c]) * 65535 / a).rounded()) : 0
                    pixels[p * C + c] = Float(v) / 65535
                }
            }
        }
        let ok: Int32
        if sixteen {
            var buffer = [UInt16](repeating: 0, count: samples)
            ok = buffer.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            if ok != 0 { buffer.withUnsafeBufferPointer { alpha ? unpremultiply($0) : convert($0, 65535) } }
        } else {
            var buffer = [UInt8](repeating: 0, count: samples)
            ok = buffer.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            if ok != 0 { buffer.withUnsafeBufferPointer { convert($0, 255) } }
        }
        guard ok != 0 else {
            let problem = PNGImage.message(image)
            png_image_free(&image)
            throw ImagingError.invalidPNG(path: path, problem: problem)
        }
        return PNGImage(width: W, height: H, channels: C, bitDepth: sixteen ? 16 : 8, pixels: pixels, path: path)
    }

    /// Walks the chunk list before libpng sees it: every chunk's declared length must lie within the file (libpng
    /// would otherwise allocate what a lying length says, up to 2 GB, before noticing the file ends), and IHDR's
    /// size within libpng's limits. Returns the problem, or nil (a file that is not a PNG at all is left to libpng).
    static func chunkProblem(_ bytes: UnsafeRawBufferPointer) -> String? {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard bytes.count >= 8, bytes.prefix(8).elementsEqual(signature) else { return nil }
        func u32(_ at: Int) -> Int { bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        var at = 8
        while at + 8 <= bytes.count {
            let length = u32(at)
            let type = String(decoding: bytes[at + 4..<at + 8].map { (0x20...0x7E).contains($0) ? $0 : 0x3F }, as: UTF8.self)
            guard length <= Int(Int32.max), at + 12 + length <= bytes.count else {
                return "chunk \(type) at byte \(at) declares \(length) bytes but the file has \(bytes.count - at - 12) left: it is truncated or damaged"
            }
            if type == "IHDR" && length >= 8 {
                let (w, h) = (u32(at + 8), u32(at + 12))
                guard (1...maximumSide).contains(w), (1...maximumSide).contains(h) else {
                    return "it declares \(w) x \(h) pixels; a PNG has 1 to \(maximumSide) pixels a side here (libpng's limit)"
                }
            }
            if type == "IEND" { return nil }
            at += 12 + length
        }
        return nil
    }

    /// libpng's compiled-in PNG_USER_WIDTH_MAX and PNG_USER_HEIGHT_MAX (Debian's pnglibconf.h).
    static let maximumSide = 1_000_000

    /// libpng's message of a failed png_image call.
    static func message(_ image: png_image) -> String {
        let text = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        return text.isEmpty ? "libpng could not decode it" : text
    }
}

/// How mask labels become PNG pixel values.
public enum PNGValues: String, Sendable, Codable, CaseIterable {
    /// 0 stays 0, every other label becomes 255 (ISIC's convention for binary masks).
    case binary
    /// The label itself (0, 1, 2, ...).
    case label
}

/// PNG writers (8-bit, non-interlaced), atomic through SegmentCore.AtomicFile.
public enum PNGWriter {
    /// Writes a single-channel 8-bit mask of width x height labels (row-major).
    public static func writeMask(_ labels: [UInt8], width: Int, height: Int, values: PNGValues = .binary,
                                 to path: String) throws {
        precondition(labels.count == width * height, "mask is not height x width")
        let pixels = values == .binary ? labels.map { $0 == 0 ? UInt8(0) : 255 } : labels
        try write(pixels, width: width, height: height, format: 0, to: path)
    }

    /// Writes an 8-bit RGB picture of width x height pixels, (height, width, 3) row-major.
    public static func writeRGB(_ rgb: [UInt8], width: Int, height: Int, to path: String) throws {
        precondition(rgb.count == width * height * 3, "picture is not height x width x 3")
        try write(rgb, width: width, height: height, format: PNG_FORMAT_FLAG_COLOR, to: path)
    }

    /// An 8-bit RGB picture of width x height pixels, (height, width, 3) row-major, encoded as PNG bytes in memory
    /// (for pictures embedded in a report). Throws `ImagingError.notWritable` naming `what` if libpng fails.
    public static func encodeRGB(_ rgb: [UInt8], width: Int, height: Int, what: String = "picture") throws -> Data {
        precondition(rgb.count == width * height * 3 && width > 0 && height > 0, "picture is not height x width x 3")
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = PNG_FORMAT_FLAG_COLOR
        // One call into a buffer the size of the raw samples plus deflate's worst-case growth (stored blocks: 5 bytes
        // in 16 KiB), a filter byte a row and room for the chunks; libpng reports a larger need in `size` (then the
        // call is made again with that much).
        var size = rgb.count + height + rgb.count / 1000 * 5 + 4096
        var out = Data(count: size)
        for _ in 0..<2 {
            let capacity = size
            let ok = out.withUnsafeMutableBytes { o in
                rgb.withUnsafeBytes { png_image_write_to_memory(&image, o.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
            }
            if ok != 0 && size <= capacity { return out.prefix(size) }
            guard ok == 0 && size > capacity else { break }
            out = Data(count: size)
        }
        let problem = PNGImage.message(image)
        png_image_free(&image)
        throw ImagingError.notWritable(path: what, reason: problem)
    }

    static func write(_ samples: [UInt8], width: Int, height: Int, format: UInt32, to path: String) throws {
        precondition(width > 0 && height > 0, "an image has at least one pixel")
        try AtomicFile.write(to: path) { tmp in
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            image.width = UInt32(width)
            image.height = UInt32(height)
            image.format = format
            // Through our own FILE so that a failed open, write or close is reported with the system's reason.
            guard let file = fopen(tmp, "wb") else {
                throw ImagingError.notWritable(path: path, reason: String(cString: strerror(errno)))
            }
            errno = 0
            let ok = samples.withUnsafeBytes { png_image_write_to_stdio(&image, file, 0, $0.baseAddress, 0, nil) }
            let writeErrno = errno
            let closed = fclose(file) == 0
            guard ok != 0 && closed else {
                let problem = ok == 0 ? PNGImage.message(image) : "closing the file failed"
                let reason = ok == 0 ? writeErrno : errno
                png_image_free(&image)
                throw ImagingError.notWritable(path: path, reason: problem + (reason != 0 ? " (\(String(cString: strerror(reason))))" : ""))
            }
        }
    }
}
