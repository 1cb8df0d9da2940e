// PNG against pypng/pillow's samples (gen_imaging.py): every colour type, bit depth and interlacing, read to
// within 1e-7 (16-bit with alpha: half an 8-bit step, see PNG.swift); masks and overlays round-trip.
import Foundation
import SegmentCore
import TestSupport
import XCTest
@testable import SegmentImaging

final class PNGTests: XCTestCase {
    func testEveryColourTypeBitDepthAndInterlaceReadsAsReference() throws {
        let manifest = try Fixtures.manifest("png")
        let cases = try XCTUnwrap(manifest["cases"] as? [[String: Any]])
        XCTAssertGreaterThan(cases.count, 30)
        for c in cases {
            let file = c["file"] as! String
            let image = try PNGImage.read(Fixtures.path("png/" + file))
            XCTAssertEqual(image.width, c["width"] as! Int, file)
            XCTAssertEqual(image.height, c["height"] as! Int, file)
            XCTAssertEqual(image.channels, c["channels"] as! Int, file)
            XCTAssertEqual(image.bitDepth, c["depth"] as! Int, file)
            let ref = try Fixtures.array("png/" + (c["ref"] as! String), as: Float.self)
            XCTAssertEqual(image.pixels.count, ref.count, file)
            let tolerance = Float(c["tolerance"] as! Double)
            let worst = zip(image.pixels, ref).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, tolerance, "\(file): max |difference| \(worst)")
        }
    }

    func testBrokenFilesAreRefused() throws {
        for file in try Fixtures.manifest("png")["refused"] as! [String] {
            let path = try Fixtures.path("png/" + file)
            let error = assertImagingError(try PNGImage.read(path), "invalidPNG", path: path)
            XCTAssertEqual(error?.exitCode, .invalidInput)
        }
        let missing = try TestSupport.temporaryDirectory(self).appendingPathComponent("none.png").path
        assertImagingError(try PNGImage.read(missing), "unreadable", path: missing)
    }

    /// An empty file is refused before Foundation reads it: Data(contentsOf:) leaks a buffer on an empty file
    /// (fuzz/regressions/png/empty-file-leak.png is the same input for the png fuzz target).
    func testEmptyFileIsRefusedByName() throws {
        let empty = try TestSupport.temporaryDirectory(self).appendingPathComponent("empty.png").path
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        let error = assertImagingError(try PNGImage.read(empty), "invalidPNG", path: empty)
        XCTAssertTrue(error.map { "\($0)".contains("empty (0 bytes)") } ?? false, "\(String(describing: error))")
    }

    /// The in-memory encoder (pictures embedded in HTML pages) gives a PNG that decodes to the same samples, for a
    /// smooth picture and for noise (which deflate cannot shrink: the buffer must hold stored blocks).
    func testEncodedRGBDecodesToTheSameSamples() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        var rng = SystemRandomNumberGenerator()
        for (W, H, noise) in [(37, 23, false), (300, 211, true), (1, 1, true)] {
            let rgb = (0..<(W * H * 3)).map { i in noise ? UInt8.random(in: 0...255, using: &rng) : UInt8((i / 3) % 251) }
            let data = try PNGWriter.encodeRGB(rgb, width: W, height: H)
            XCTAssertEqual(Array(data.prefix(8)), [137, 80, 78, 71, 13, 10, 26, 10], "PNG signature")
            let path = dir.appendingPathComponent("\(W)x\(H).png").path
            try data.write(to: URL(fileURLWithPath: path))
            let image = try PNGImage.read(path)
            XCTAssertEqual([image.width, image.height, image.channels, image.bitDepth], [W, H, 3, 8])
            // The reader gives v / 255: times 255, rounded, is the stored byte.
            XCTAssertEqual(image.pixels.map { UInt8(($0 * 255).rounded()) }, rgb)
        }
    }

    func testMasksAreSingleChannel8BitWithBinaryOrRawValues() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let W = 5, H = 3
        let labels: [UInt8] = [0, 1, 2, 0, 1, 1, 0, 0, 2, 2, 0, 1, 0, 0, 0]
        let binary = dir.appendingPathComponent("binary.png").path
        let raw = dir.appendingPathComponent("label.png").path
        try PNGWriter.writeMask(labels, width: W, height: H, to: binary)
        try PNGWriter.writeMask(labels, width: W, height: H, values: .label, to: raw)
        let check = """
        import sys, json, numpy as np
        from PIL import Image
        out = {}
        for p in sys.argv[1:]:
            im = Image.open(p)
            out[p] = {'mode': im.mode, 'size': list(im.size), 'values': np.asarray(im).ravel().tolist()}
        print(json.dumps(out))
        """
        let text = try TestSupport.python(check, [binary, raw])
        let r = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: [String: Any]])
        XCTAssertEqual(r[binary]?["mode"] as? String, "L")
        XCTAssertEqual(r[binary]?["size"] as? [Int], [W, H])
        XCTAssertEqual(r[binary]?["values"] as? [Int], labels.map { $0 == 0 ? 0 : 255 })
        XCTAssertEqual(r[raw]?["values"] as? [Int], labels.map(Int.init))
        // Our reader reads them back, and their samples as labels.
        XCTAssertEqual(try PNGImage.read(raw).pixels, labels.map { Float($0) / 255 })
        XCTAssertEqual(try PNGImage.read(raw).labels(), labels.map(UInt16.init))
        XCTAssertEqual(try PNGImage.read(binary).labels(), labels.map { $0 == 0 ? 0 : 255 })
        // 16-bit gray samples come back exactly; colour images are not label images.
        let gray16 = try Fixtures.path("png/gray16.png")
        let ref16 = try Fixtures.array("png/gray16.png.f32", as: Float.self)
        XCTAssertEqual(try PNGImage.read(gray16).labels(), ref16.map { UInt16(($0 * 65535).rounded()) })
        let rgb = try Fixtures.path("png/rgb8.png")
        assertImagingError(try PNGImage.read(rgb).labels(), "notALabelImage", path: rgb)
    }

    /// A small slice is drawn at 512 pixels on its long side (labels nearest, image linear), grey levels from the
    /// window (clamped outside it), and a legend strip with each class's swatch and its name in white.
    func testOverlayPictureIsReadableWithWindowAndLegend() throws {
        let W = 100, H = 60
        // Background 60 (HU), a 20 x 10 block of label 1 at columns 30..49, rows 20..29; two extreme pixels.
        var image = [Float](repeating: 60, count: W * H)
        image[0] = -1000; image[W * H - 1] = 3000
        var labels = [UInt8](repeating: 0, count: W * H)
        for y in 20..<30 { for x in 30..<50 { labels[y * W + x] = 1 } }
        let o = Overlay.picture(image: image, channels: 1, width: W, height: H, labels: labels, window: (-160, 240),
                                classNames: ["background", "liver", "tumour"])
        let scale = 512.0 / 100
        XCTAssertEqual(o.width, 512)
        let imageHeight = Int((Double(H) * scale).rounded())   // 307
        XCTAssertGreaterThan(o.height, imageHeight + 10, "a legend strip below the image")
        XCTAssertEqual(o.rgb.count, o.width * o.height * 3)
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(o.rgb[(y * o.width + x) * 3 ..< (y * o.width + x) * 3 + 3]) }
        // Window: 60 HU -> (60 + 160) / 400 * 255 = 140.25 -> 140; far from the block and the corners.
        XCTAssertEqual(pixel(400, 250), [140, 140, 140])
        // The corners hold the clamped extremes (nearest the corner pixel of the zoom grid is that pixel).
        XCTAssertEqual(pixel(0, 0), [0, 0, 0])
        XCTAssertEqual(pixel(o.width - 1, imageHeight - 1), [255, 255, 255])
        // The block's centre (column 40, row 25 of the slice) is label 1's colour at opacity 0.35 over grey 140.25.
        let g = Float(220) * (Float(255) / Float(400)), opacity = Float(0.35)
        XCTAssertEqual(pixel(Int(40 * scale), Int(25 * scale)),
                       Overlay.palette[0].map { UInt8(((1 - opacity) * g + opacity * Float($0)).rounded()) })
        // Its outline starts where scipy's grid (output o at input o * 99 / 511) first rounds to column 30.
        let leftEdge = try XCTUnwrap((0..<o.width).first { pixel($0, Int(25 * scale)) == Overlay.palette[0] })
        XCTAssertEqual(leftEdge, Int((29.5 * 511 / 99).rounded(.up)))
        // Legend: a swatch of each foreground class, white text, nothing else but the strip's grey.
        let legend = (imageHeight * o.width..<(o.width * o.height)).map { Array(o.rgb[$0 * 3..<$0 * 3 + 3]) }
        let colours = Set(legend)
        XCTAssertTrue(colours.contains(Overlay.palette[0]) && colours.contains(Overlay.palette[1]), "\(colours)")
        XCTAssertTrue(colours.contains([255, 255, 255]))
        XCTAssertEqual(colours, [Overlay.palette[0], Overlay.palette[1], [255, 255, 255], [32, 32, 32]])
        // The first letter after label 1's swatch is "L" (3 x 5 at twice its size): its left column is white for
        // 10 rows, its bottom row for 6 pixels, and the rest of its cell is strip grey.
        let top = imageHeight + 6, left = 6 + 10 + 4
        for y in 0..<10 { for x in 0..<6 {
            let white = x < 2 || y >= 8
            XCTAssertEqual(pixel(left + x, top + y), white ? [255, 255, 255] : [32, 32, 32], "L at (\(x), \(y))")
        } }
        // No legend without class names; a slice already 512 or more is kept at its size.
        let plain = Overlay.picture(image: [Float](repeating: 0, count: 600 * 2), channels: 1, width: 600, height: 2,
                                    labels: [UInt8](repeating: 0, count: 1200))
        XCTAssertEqual([plain.width, plain.height], [600, 2])
    }

    func testOverlayFillsTranslucentlyAndOutlinesOpaquely() throws {
        let W = 6, H = 5
        // A gray ramp 0...1 over the image; a 4x3 block of label 2 at rows 1...3, columns 1...4.
        let image = (0..<(W * H)).map { Float($0) / Float(W * H - 1) }
        var labels = [UInt8](repeating: 0, count: W * H)
        for y in 1...3 { for x in 1...4 { labels[y * W + x] = 2 } }
        let opacity: Float = 0.4
        let rgb = Overlay.render(image: image, channels: 1, width: W, height: H, labels: labels, opacity: opacity)
        XCTAssertEqual(rgb.count, W * H * 3)
        let colour = Overlay.palette[1].map(Float.init)
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(rgb[(y * W + x) * 3 ..< (y * W + x) * 3 + 3]) }
        // Background: the gray value, min-max scaled to 0...255.
        XCTAssertEqual(pixel(0, 0), [0, 0, 0])
        XCTAssertEqual(pixel(W - 1, H - 1), [255, 255, 255])
        let g = image[4 * W + 2] * 255
        XCTAssertEqual(pixel(2, 4), [UInt8](repeating: UInt8(g.rounded()), count: 3))
        // Outline (block border): the label colour.
        XCTAssertEqual(pixel(1, 1), Overlay.palette[1])
        XCTAssertEqual(pixel(4, 3), Overlay.palette[1])
        // Interior (2, 2) and (3, 2): blended.
        for x in [2, 3] {
            let v = image[2 * W + x] * 255
            XCTAssertEqual(pixel(x, 2), colour.map { UInt8(((1 - opacity) * v + opacity * $0).rounded()) })
        }
        // Written as RGB PNG and read back identically.
        let path = try TestSupport.temporaryDirectory(self).appendingPathComponent("overlay.png").path
        try PNGWriter.writeRGB(rgb, width: W, height: H, to: path)
        let back = try PNGImage.read(path)
        XCTAssertEqual(back.channels, 3)
        XCTAssertEqual(back.pixels, rgb.map { Float($0) / 255 })
    }
}
