// Overlay pictures for people to look at: an image slice with a translucent colour fill per label and its outline.

/// Renders label maps over images as RGB (write the result with PNGWriter.writeRGB).
public enum Overlay {
    /// Colour of label l (l >= 1) is palette[(l - 1) % palette.count]: distinct, saturated colours.
    public static let palette: [[UInt8]] = [
        [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
        [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
        [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195],
    ]

    /// `image`: width x height x channels (1 gray or 3 RGB) floats, row-major; values are mapped to 0...255 by
    /// min-max over the image (a constant image is black). `labels`: width x height, row-major, 0 = background.
    /// Fill: colour blended with `opacity`; outline (label pixels with a 4-neighbour of another label or
    /// the border): the label colour, opaque. Returns (height, width, 3) bytes.
    public static func render(image: [Float], channels: Int, width: Int, height: Int, labels: [UInt8],
                              opacity: Float = 0.35) -> [UInt8] {
        fatalError("Overlay.render: not implemented yet")
    }
}
