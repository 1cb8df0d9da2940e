// Overlay pictures for people to look at: an image slice with a translucent colour fill per label and its outline.

/// Renders label maps over images as RGB (write the result with PNGWriter.writeRGB).
public enum Overlay {
    /// Colour of label l (l >= 1) is palette[(l - 1) % palette.count]: distinct, saturated colours.
    public static let palette: [[UInt8]] = [
        [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
        [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
        [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195],
    ]

    /// `image`: height x width x channels (1 gray or 3 RGB) floats, row-major, mapped to 0...255 by min-max over
    /// the finite values of the image (a constant image is black). `labels`: height x width, row-major,
    /// 0 = background. Fill: the label colour blended over the image with `opacity`; outline (label pixels with
    /// a 4-neighbour of another label, or on the image border): the label colour, opaque.
    /// Returns (height, width, 3) bytes.
    public static func render(image: [Float], channels: Int, width: Int, height: Int, labels: [UInt8],
                              opacity: Float = 0.35) -> [UInt8] {
        precondition(channels == 1 || channels == 3, "an overlay needs a gray or RGB image")
        precondition(image.count == width * height * channels && labels.count == width * height,
                     "image and labels must be height x width")
        let finite = image.filter { $0.isFinite }
        let lo = finite.min() ?? 0, hi = finite.max() ?? 0
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
}
