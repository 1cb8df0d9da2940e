import Foundation

// Resampling of 2D images with scipy.ndimage.zoom's exact semantics (mode 'constant', cval 0, grid_mode False,
// prefilter True), computed in double precision in scipy's order of operations.
//
//   zoom factor   per axis z = (in - 1) / (out - 1) in double (1 when out == 1); equal shapes return a copy
//   coordinate    output index o reads input coordinate x = o * z
//   outside       x < 0 or x > in - 1 (possible by rounding at the last index): the output is cval = 0
//   order 0       the sample at floor(x + 0.5) (rounds half up)
//   order 1       linear between floor(x) and floor(x) + 1, weights (1 - t, t), t = x - floor(x)
//   order 3       cubic B-spline: 4 taps from floor(x) - 1, on coefficients from scipy's prefilter (pole
//                 sqrt(3) - 2, mirror-symmetric boundary initialisation, applied along axis 0 then axis 1;
//                 the initial sum is cut where z^i < 1e-19, a change far below the Float output's precision);
//                 taps beyond the edges read mirrored coefficients (index -i -> i, in - 1 + i -> in - 1 - i)
//   2D weights    t = sum over row taps a, column taps b of (c[a][b] * wr[a]) * wc[b]
//   output        the double result rounded to Float

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
        if height == toHeight && width == toWidth { return image }   // scipy returns the input for zoom 1
        if order == 0 { return nearest(image, height: height, width: width, toHeight: toHeight, toWidth: toWidth, outside: 0) }
        var coefficients = image.map(Double.init)                     // (height, width)
        if order > 1 { splineFilter(&coefficients, height: height, width: width) }
        let rows = AxisTaps(input: height, output: toHeight, order: order)
        let cols = AxisTaps(input: width, output: toWidth, order: order)
        let taps = order + 1
        var out = [Float](repeating: 0, count: toHeight * toWidth)
        coefficients.withUnsafeBufferPointer { c in
        rows.index.withUnsafeBufferPointer { ri in rows.weight.withUnsafeBufferPointer { rw in
        cols.index.withUnsafeBufferPointer { ci in cols.weight.withUnsafeBufferPointer { cw in
        out.withUnsafeMutableBufferPointer { o in
            for o0 in 0..<toHeight where rows.inside[o0] {
                for o1 in 0..<toWidth where cols.inside[o1] {
                    var t = 0.0
                    for a in 0..<taps {
                        let rowBase = ri[o0 * taps + a] * width
                        let wr = rw[o0 * taps + a]
                        for b in 0..<taps {
                            t += (c[rowBase + ci[o1 * taps + b]] * wr) * cw[o1 * taps + b]
                        }
                    }
                    o[o0 * toWidth + o1] = Float(t)
                }
            }
        } } } } } }
        return out
    }

    /// Order-0 resampling of a label map: every output takes the label at its nearest input position (0 where
    /// scipy's coordinate falls outside the input by rounding).
    @inlinable
    public static func zoomLabels<T: BinaryInteger>(_ labels: [T], height: Int, width: Int, toHeight: Int,
                                                    toWidth: Int) -> [T] {
        nearest(labels, height: height, width: width, toHeight: toHeight, toWidth: toWidth, outside: 0)
    }

    /// Order 0 for any element type: values copied from the nearest input sample, `outside` where scipy's
    /// coordinate falls outside the input.
    @inlinable
    static func nearest<T>(_ values: [T], height: Int, width: Int, toHeight: Int, toWidth: Int, outside: T) -> [T] {
        precondition(values.count == height * width && height > 0 && width > 0 && toHeight > 0 && toWidth > 0,
                     "zoom: input is not height x width")
        if height == toHeight && width == toWidth { return values }
        let rows = AxisTaps(input: height, output: toHeight, order: 0)
        let cols = AxisTaps(input: width, output: toWidth, order: 0)
        var out = [T](repeating: outside, count: toHeight * toWidth)
        values.withUnsafeBufferPointer { v in out.withUnsafeMutableBufferPointer { o in
            for o0 in 0..<toHeight where rows.inside[o0] {
                let rowBase = rows.index[o0] * width
                for o1 in 0..<toWidth where cols.inside[o1] {
                    o[o0 * toWidth + o1] = v[rowBase + cols.index[o1]]
                }
            }
        } }
        return out
    }

    /// For each output index along one axis: whether it falls inside the input, and its order + 1 input taps
    /// (indices already mirrored at the edges) with their spline weights.
    @usableFromInline
    struct AxisTaps {
        @usableFromInline var inside: [Bool]
        @usableFromInline var index: [Int]      // (output, order + 1)
        @usableFromInline var weight: [Double]  // (output, order + 1)

        @usableFromInline
        init(input n: Int, output m: Int, order: Int) {
            let taps = order + 1
            let z = m > 1 ? Double(n - 1) / Double(m - 1) : 1.0
            inside = [Bool](repeating: false, count: m)
            index = [Int](repeating: 0, count: m * taps)
            weight = [Double](repeating: 0, count: m * taps)
            for o in 0..<m {
                let x = Double(o) * z
                guard x >= 0 && x <= Double(n - 1) else { continue }
                inside[o] = true
                let start = order & 1 == 1 ? Int(x.rounded(.down)) - order / 2 : Int((x + 0.5).rounded(.down)) - order / 2
                let w = Zoom.splineWeights(x, order: order)
                for k in 0..<taps {
                    index[o * taps + k] = Zoom.mirror(start + k, n)
                    weight[o * taps + k] = w[k]
                }
            }
        }
    }

    /// scipy's mirror extension of an integer index into 0..<n (whole-sample symmetric, period 2n - 2).
    static func mirror(_ i: Int, _ n: Int) -> Int {
        if n <= 1 { return 0 }
        let period = 2 * n - 2
        var j = i % period
        if j < 0 { j += period }
        return j >= n ? period - j : j
    }

    /// B-spline interpolation weights of the order + 1 taps around x (scipy's get_spline_interpolation_weights).
    static func splineWeights(_ x: Double, order: Int) -> [Double] {
        var w = [Double](repeating: 0, count: order + 1)
        let t = x - (order & 1 == 1 ? x : x + 0.5).rounded(.down)
        switch order {
        case 0: break
        case 1: w[0] = 1 - t
        case 3:
            let y = t, z = 1 - t
            w[1] = (y * y * (y - 2) * 3 + 4) / 6
            w[2] = (z * z * (z - 2) * 3 + 4) / 6
            w[0] = z * z * z / 6
        default: preconditionFailure("spline order \(order) is not supported")
        }
        // The weights add to 1: the last one is what remains.
        w[order] = 1
        for i in 0..<order { w[order] -= w[i] }
        return w
    }

    /// scipy's spline_filter for order 3 with mode 'constant' (mirror boundary): in place on a (height, width)
    /// array, along axis 0 (columns) and then axis 1 (rows).
    static func splineFilter(_ c: inout [Double], height: Int, width: Int) {
        c.withUnsafeMutableBufferPointer { c in
            if height > 1 { filterLines(c.baseAddress!, n: height, step: width, lanes: width) }
            if width > 1 {
                for row in 0..<height { filterLines(c.baseAddress! + row * width, n: width, step: 1, lanes: 1) }
            }
        }
    }

    /// The cubic B-spline pole.
    static let pole = -0.267949192431122706472553658494127633   // sqrt(3) - 2

    /// Recursive filtering into cubic B-spline coefficients (Unser's algorithm as scipy) of `lanes` lines at once:
    /// sample i of lane l is c[i * step + l]. With step = width and lanes = width this filters every column of a
    /// row-major image with contiguous inner loops; with lanes = 1 and step = 1 it filters one row. Each lane
    /// gets exactly the operations scipy applies to one line (n >= 2).
    static func filterLines(_ c: UnsafeMutablePointer<Double>, n: Int, step: Int, lanes: Int) {
        let z = pole
        let gain = (1 - z) * (1 - 1 / z)
        for i in 0..<n { for l in 0..<lanes { c[i * step + l] *= gain } }
        // Causal initialisation (mirror boundary). The sum stops once z^i < 1e-19: later terms are below double
        // precision of the result (scipy sums all n terms, whose far end underflows into slow denormals).
        let zn1 = pow(z, Double(n - 1))
        let last = (n - 1) * step
        for l in 0..<lanes { c[l] = c[l] + zn1 * c[last + l] }
        var zi = z
        var i = 1
        while i < n - 1 && abs(zi) >= 1e-19 {
            for l in 0..<lanes { c[l] += zi * (c[i * step + l] + zn1 * c[(n - 1 - i) * step + l]) }
            zi *= z
            i += 1
        }
        for l in 0..<lanes { c[l] /= 1 - zn1 * zn1 }
        for i in 1..<n { for l in 0..<lanes { c[i * step + l] += z * c[(i - 1) * step + l] } }
        // Anti-causal initialisation and pass.
        for l in 0..<lanes { c[last + l] = (z * c[last - step + l] + c[last + l]) * z / (z * z - 1) }
        for i in stride(from: n - 2, through: 0, by: -1) {
            for l in 0..<lanes { c[i * step + l] = z * (c[(i + 1) * step + l] - c[i * step + l]) }
        }
    }
}
