// PNG images through libpng's simplified API (png_image: errors are reported by return value, no setjmp).
import CPNG
import Foundation
import SegmentCore

/// A decoded PNG: gray or RGB floats in [0, 1].
///
/// Every colour type and bit depth is read (gray 1/2/4/8/16, gray+alpha, RGB, RGBA, palette, interlaced).
/// Alpha (and tRNS transparency) is dropped: the colour stored under it is kept, never composited. Values are
/// v / (2^depth - 1): 8-bit v / 255, 16-bit v / 65535 (the same full-range scaling), 1/2/4-bit gray and palette
/// entries as 8-bit. A gray file gives one channel, a colour or palette file three.
public struct PNGImage: Sendable {
    public let width: Int
    public let height: Int
    /// 1 (gray) or 3 (RGB).
    public let channels: Int
    /// Stored bit depth per channel (8 or 16).
    public let bitDepth: Int
    /// (height, width, channels), row-major, values in [0, 1].
    public let pixels: [Float]

    public init(width: Int, height: Int, channels: Int, bitDepth: Int, pixels: [Float]) {
        precondition(pixels.count == width * height * channels, "pixels is not height x width x channels")
        self.width = width; self.height = height; self.channels = channels; self.bitDepth = bitDepth
        self.pixels = pixels
    }

    /// Reads `path`. Throws `ImagingError.invalidPNG` / `.unreadable` (exit 3).
    public static func read(_ path: String) throws -> PNGImage {
        fatalError("PNGImage.read: not implemented yet")
    }
}

/// How mask labels become PNG pixel values.
public enum PNGValues: String, Sendable, CaseIterable {
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
        fatalError("PNGWriter.writeMask: not implemented yet")
    }

    /// Writes an 8-bit RGB picture of width x height pixels, (height, width, 3) row-major.
    public static func writeRGB(_ rgb: [UInt8], width: Int, height: Int, to path: String) throws {
        fatalError("PNGWriter.writeRGB: not implemented yet")
    }
}
