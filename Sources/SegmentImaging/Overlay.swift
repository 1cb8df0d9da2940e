// Overlay pictures for people to look at: an image slice with a translucent colour fill per label and its outline,
// drawn at a readable size, with a legend naming the classes.

/// Renders label maps over images as RGB (write the result with PNGWriter.writeRGB).
public enum Overlay {
    /// Colour of label l (l >= 1) is palette[(l - 1) % palette.count]: distinct, saturated colours.
    public static let palette: [[UInt8]] = [
        [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
        [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
        [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195],
    ]

    /// `image`: height x width x channels (1 gray or 3 RGB) floats, row-major, mapped to 0...255 linearly from
    /// `window` (values outside it clamped), or by min-max over the finite values of the image when `window` is nil
    /// (a constant image is black). `labels`: height x width, row-major,
    /// 0 = background. Fill: the label colour blended over the image with `opacity`; outline (label pixels with
    /// a 4-neighbour of another label, or on the image border): the label colour, opaque.
    /// Returns (height, width, 3) bytes.
    public static func render(image: [Float], channels: Int, width: Int, height: Int, labels: [UInt8],
                              opacity: Float = 0.35, window: (lo: Float, hi: Float)? = nil) -> [UInt8] {
        precondition(channels == 1 || channels == 3, "an overlay needs a gray or RGB image")
        precondition(image.count == width * height * channels && labels.count == width * height,
                     "image and labels must be height x width")
        var lo: Float = 0, hi: Float = 0
        if let window {
            (lo, hi) = window
        } else {
            let finite = image.filter { $0.isFinite }
            (lo, hi) = (finite.min() ?? 0, finite.max() ?? 0)
        }
        let scale: Float = hi > lo ? 255 / (hi - lo) : 0
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let p = y * width + x
                let l = labels[p]
                var outline = false
                if l != 0 {
                    outline = x == 0 || y == 0 || x == width - 1 || y == height - 1
                        || labels[p - 1] != l || labels[p + 1] != l || labels[p - width] != l || labels[p + width] != l
                }
                let colour = l == 0 ? nil : palette[(Int(l) - 1) % palette.count]
                for c in 0..<3 {
                    let v = image[p * channels + (channels == 3 ? c : 0)]
                    var g = v.isFinite ? (v - lo) * scale : 0
                    if let colour {
                        g = outline ? Float(colour[c]) : (1 - opacity) * g + opacity * Float(colour[c])
                    }
                    rgb[p * 3 + c] = UInt8(max(0, min(255, g.rounded())))
                }
            }
        }
        return rgb
    }

    /// The overlay as it is written: the image brought to at least `minimumLongSide` pixels on its long side
    /// (its values by linear interpolation, the labels by nearest neighbour, both with scipy.ndimage.zoom's grid, so
    /// a small slice is not a blocky thumbnail), rendered as `render` does, and when `classNames` has foreground
    /// names, a legend strip below it: a swatch of each class's colour and its name (labels 1...).
    /// Returns (height, width, 3) bytes and the picture's size.
    public static func picture(image: [Float], channels: Int, width: Int, height: Int, labels: [UInt8],
                               window: (lo: Float, hi: Float)? = nil, classNames: [String] = [],
                               minimumLongSide: Int = 512) -> (rgb: [UInt8], width: Int, height: Int) {
        let long = max(width, height)
        let scale = long >= minimumLongSide ? 1.0 : Double(minimumLongSide) / Double(long)
        let W = max(1, Int((Double(width) * scale).rounded())), H = max(1, Int((Double(height) * scale).rounded()))
        var big = image, bigLabels = labels
        if W != width || H != height {
            let planes = (0..<channels).map { c in stride(from: c, to: image.count, by: channels).map { image[$0] } }
            let zoomed = planes.map { Zoom.zoom($0, height: height, width: width, toHeight: H, toWidth: W, order: 1) }
            big = [Float](repeating: 0, count: W * H * channels)    // (H, W, channels)
            for c in 0..<channels { for p in 0..<(W * H) { big[p * channels + c] = zoomed[c][p] } }
            bigLabels = Zoom.zoomLabels(labels, height: height, width: width, toHeight: H, toWidth: W)
        }
        let rgb = render(image: big, channels: channels, width: W, height: H, labels: bigLabels, window: window)
        let names = Array(classNames.dropFirst())
        guard !names.isEmpty else { return (rgb, W, H) }
        let legend = Legend.draw(names: names, width: W)
        return (rgb + legend.rgb, W, H + legend.height)
    }
}

extension Overlay {
    /// Outline colours of a comparison: the reference green, the prediction magenta (told apart by people with the
    /// common red-green colour deficiencies, as magenta is not on the red-green axis); where both outlines meet, white.
    public static let referenceColour: [UInt8] = [0, 200, 0]
    public static let predictionColour: [UInt8] = [255, 0, 255]

    /// A prediction and its reference on one picture: the image (or black when `image` is nil) in grey levels as
    /// `render` maps them, and the outline of each label map (pixels of a label with a 4-neighbour of another label
    /// or on the border) drawn opaque in `referenceColour` and `predictionColour`. Brought to at least
    /// `minimumLongSide` pixels as `picture` does (image linear, labels nearest). `image`, `reference`,
    /// `prediction`: height x width, row-major (the image with `channels` values a pixel).
    /// Returns (height, width, 3) bytes and the picture's size.
    public static func comparison(image: [Float]?, channels: Int = 1, width: Int, height: Int, reference: [UInt16],
                                  prediction: [UInt16], window: (lo: Float, hi: Float)? = nil,
                                  minimumLongSide: Int = 256) -> (rgb: [UInt8], width: Int, height: Int) {
        precondition(reference.count == width * height && prediction.count == width * height, "labels must be height x width")
        let long = max(width, height)
        let scale = long >= minimumLongSide ? 1.0 : Double(minimumLongSide) / Double(long)
        let W = max(1, Int((Double(width) * scale).rounded())), H = max(1, Int((Double(height) * scale).rounded()))
        let big = (W, H) == (width, height)
        let gray = image.map { img -> [Float] in
            let planes = (0..<channels).map { c in stride(from: c, to: img.count, by: channels).map { img[$0] } }
            let zoomed = big ? planes : planes.map { Zoom.zoom($0, height: height, width: width, toHeight: H, toWidth: W, order: 1) }
            var out = [Float](repeating: 0, count: W * H * channels)       // (H, W, channels)
            for c in 0..<channels { for p in 0..<(W * H) { out[p * channels + c] = zoomed[c][p] } }
            return out
        }
        let ref = big ? reference : Zoom.zoomLabels(reference, height: height, width: width, toHeight: H, toWidth: W)
        let pred = big ? prediction : Zoom.zoomLabels(prediction, height: height, width: width, toHeight: H, toWidth: W)
        var rgb = gray.map { render(image: $0, channels: channels, width: W, height: H,
                                    labels: [UInt8](repeating: 0, count: W * H), window: window) }
            ?? [UInt8](repeating: 0, count: W * H * 3)
        func outline(_ l: [UInt16], _ p: Int, _ x: Int, _ y: Int) -> Bool {
            let v = l[p]
            guard v != 0 else { return false }
            return x == 0 || y == 0 || x == W - 1 || y == H - 1
                || l[p - 1] != v || l[p + 1] != v || l[p - W] != v || l[p + W] != v
        }
        for y in 0..<H {
            for x in 0..<W {
                let p = y * W + x
                let (r, q) = (outline(ref, p, x, y), outline(pred, p, x, y))
                guard r || q else { continue }
                let colour: [UInt8] = r && q ? [255, 255, 255] : r ? referenceColour : predictionColour
                for c in 0..<3 { rgb[p * 3 + c] = colour[c] }
            }
        }
        return (rgb, W, H)
    }
}

/// The legend strip: rows of entries "[swatch] NAME", wrapped to the picture's width, white text on dark gray.
/// Text is drawn with a 3 x 5 pixel font at twice its size (capitals, digits and a few signs; any other character
/// is drawn as "?"), so the tool needs no font file.
enum Legend {
    static let glyphScale = 2, advance = 4 * 2, lineHeight = 5 * 2 + 8, margin = 6, swatch = 10
    static let background: UInt8 = 32

    static func draw(names: [String], width W: Int) -> (rgb: [UInt8], height: Int) {
        // Lay out entries left to right, wrapping when one does not fit (an entry wider than the picture is cut).
        var placed: [(x: Int, row: Int, text: String, label: Int)] = []
        var x = margin, row = 0
        for (i, name) in names.enumerated() {
            let text = name.uppercased()
            let w = swatch + 4 + text.count * advance
            if x > margin && x + w > W - margin { x = margin; row += 1 }
            placed.append((x, row, text, i + 1))
            x += w + 3 * margin
        }
        let height = (row + 1) * lineHeight + margin
        var rgb = [UInt8](repeating: background, count: W * height * 3)     // (height, W, 3)
        func set(_ px: Int, _ py: Int, _ colour: [UInt8]) {
            guard px >= 0, px < W, py >= 0, py < height else { return }
            for c in 0..<3 { rgb[(py * W + px) * 3 + c] = colour[c] }
        }
        for e in placed {
            let top = margin + e.row * lineHeight
            let colour = Overlay.palette[(e.label - 1) % Overlay.palette.count]
            for dy in 0..<swatch { for dx in 0..<swatch { set(e.x + dx, top + dy, colour) } }
            var gx = e.x + swatch + 4
            for ch in e.text {
                let rows = font[ch] ?? font["?"]!
                for (ry, bits) in rows.enumerated() {
                    for rx in 0..<3 where bits & (4 >> rx) != 0 {
                        for sy in 0..<glyphScale { for sx in 0..<glyphScale {
                            set(gx + rx * glyphScale + sx, top + ry * glyphScale + sy, [255, 255, 255])
                        } }
                    }
                }
                gx += advance
            }
        }
        return (rgb, height)
    }

    /// 3 x 5 glyphs: five rows, top first, each 3 bits with the leftmost pixel as 4.
    static let font: [Character: [UInt8]] = [
        "A": [2, 5, 7, 5, 5], "B": [6, 5, 6, 5, 6], "C": [3, 4, 4, 4, 3], "D": [6, 5, 5, 5, 6], "E": [7, 4, 6, 4, 7],
        "F": [7, 4, 6, 4, 4], "G": [3, 4, 5, 5, 3], "H": [5, 5, 7, 5, 5], "I": [7, 2, 2, 2, 7], "J": [1, 1, 1, 5, 2],
        "K": [5, 5, 6, 5, 5], "L": [4, 4, 4, 4, 7], "M": [5, 7, 7, 5, 5], "N": [6, 5, 5, 5, 5], "O": [2, 5, 5, 5, 2],
        "P": [6, 5, 6, 4, 4], "Q": [2, 5, 5, 6, 3], "R": [6, 5, 6, 5, 5], "S": [3, 4, 2, 1, 6], "T": [7, 2, 2, 2, 2],
        "U": [5, 5, 5, 5, 7], "V": [5, 5, 5, 5, 2], "W": [5, 5, 7, 7, 5], "X": [5, 5, 2, 5, 5], "Y": [5, 5, 2, 2, 2],
        "Z": [7, 1, 2, 4, 7],
        "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [6, 1, 2, 4, 7], "3": [6, 1, 2, 1, 6], "4": [5, 5, 7, 1, 1],
        "5": [7, 4, 6, 1, 6], "6": [3, 4, 7, 5, 7], "7": [7, 1, 2, 2, 2], "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 6],
        " ": [0, 0, 0, 0, 0], "-": [0, 0, 7, 0, 0], "_": [0, 0, 0, 0, 7], ".": [0, 0, 0, 0, 2], "(": [1, 2, 2, 2, 1],
        ")": [4, 2, 2, 2, 4], "/": [1, 1, 2, 4, 4], ":": [0, 2, 0, 2, 0], "+": [0, 2, 7, 2, 0], "?": [6, 1, 2, 0, 2],
    ]
}
