// Resampling of 2D images with scipy.ndimage.zoom's exact semantics (mode 'constant', grid_mode False,
// prefilter True), in double precision as scipy computes.
//
//   output size   given (scipy: round(in * zoom)); zoom factors are out/in per axis
//   coordinates   output index o reads input coordinate o * (in - 1) / (out - 1)   (0 when out == 1)
//   order 0       nearest input sample (scipy's rounding of the coordinate)
//   order 1       bilinear
//   order 3       cubic B-spline on spline coefficients from scipy's prefilter (mirror boundary)

/// 2D resampling to a target shape, as scipy.ndimage.zoom(image, (outH/inH, outW/inW), order=order).
public enum Zoom {
    /// Orders implemented: 0 (nearest, for label maps), 1 (bilinear), 3 (cubic spline).
    public static let supportedOrders: Set<Int> = [0, 1, 3]

    /// Resamples `image` (height x width, row-major) to toHeight x toWidth with spline order 0, 1 or 3.
    public static func zoom(_ image: [Float], height: Int, width: Int, toHeight: Int, toWidth: Int,
                            order: Int) -> [Float] {
        precondition(supportedOrders.contains(order), "zoom order must be 0, 1 or 3")
        precondition(image.count == height * width && height > 0 && width > 0 && toHeight > 0 && toWidth > 0,
                     "zoom: image is not height x width")
        fatalError("Zoom.zoom: not implemented yet")
    }

    /// Order-0 resampling of a label map (nearest neighbour, values copied exactly).
    public static func zoomLabels<T>(_ labels: [T], height: Int, width: Int, toHeight: Int, toWidth: Int) -> [T] {
        precondition(labels.count == height * width && height > 0 && width > 0 && toHeight > 0 && toWidth > 0,
                     "zoom: label map is not height x width")
        fatalError("Zoom.zoomLabels: not implemented yet")
    }
}
