// The intensity transform of Preprocessing.intensity, applied to every slice before the network. Statistics are
// taken over the whole image (a volume, or every channel of a PNG), ignoring NaN and infinite values:
//   none    y = x
//   minmax  y = (x - min) / (max - min)                        (y = 0 when max == min)
//   window  y = (clamp(x, lo, hi) - lo) / (hi - lo)             (lo, hi = Preprocessing.windowLo/windowHi)
//   zscore  y = (x - mean) / std, std the population std         (y = x - mean when std == 0)
// A NaN or infinite input value becomes 0 after the transform (the network must never see one).
import SegmentFormat

/// Running statistics of the finite values of an image (Double accumulators).
public struct IntensityStatistics: Equatable, Sendable {
    public private(set) var count = 0
    public private(set) var min = Double.infinity
    public private(set) var max = -Double.infinity
    private var sum = 0.0
    private var sumOfSquares = 0.0

    public init() {}

    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        var lo = min, hi = max, s = 0.0, ss = 0.0, n = 0
        for v in values where v.isFinite {
            let d = Double(v)
            if d < lo { lo = d }
            if d > hi { hi = d }
            s += d; ss += d * d; n += 1
        }
        min = lo; max = hi; sum += s; sumOfSquares += ss; count += n
    }

    public mutating func add(_ values: [Float]) { values.withUnsafeBufferPointer { add($0) } }

    public var mean: Double { count == 0 ? 0 : sum / Double(count) }
    /// Population standard deviation.
    public var std: Double {
        guard count > 0 else { return 0 }
        let m = mean
        return Swift.max(0, sumOfSquares / Double(count) - m * m).squareRoot()
    }
}

/// y = (clamp(x, lo, hi) - shift) * scale, then non-finite -> 0.
public struct IntensityTransform: Equatable, Sendable {
    public let lo: Float
    public let hi: Float
    public let shift: Double
    public let scale: Double

    /// The transform for a model's preprocessing (lo < hi for window: Preprocessing.validated).
    public init(_ p: Preprocessing, statistics s: IntensityStatistics) {
        switch p.intensity {
        case .none:
            lo = -.infinity; hi = .infinity; shift = 0; scale = 1
        case .minmax:
            lo = -.infinity; hi = .infinity
            shift = s.count > 0 ? s.min : 0
            scale = s.count > 0 && s.max > s.min ? 1 / (s.max - s.min) : 0
        case .window:
            lo = Float(p.windowLo); hi = Float(p.windowHi); shift = p.windowLo; scale = 1 / (p.windowHi - p.windowLo)
        case .zscore:
            lo = -.infinity; hi = .infinity
            shift = s.mean
            scale = s.std > 0 ? 1 / s.std : 1
        }
    }

    /// Whether the transform needs image statistics (a first pass over the image).
    public static func needsStatistics(_ p: Preprocessing) -> Bool { p.intensity == .minmax || p.intensity == .zscore }

    public func apply(_ values: UnsafeMutableBufferPointer<Float>) {
        for i in values.indices {
            let v = values[i]
            guard v.isFinite else { values[i] = 0; continue }
            values[i] = Float((Double(Swift.min(Swift.max(v, lo), hi)) - shift) * scale)
        }
    }

    public func apply(_ values: inout [Float]) { values.withUnsafeMutableBufferPointer { apply($0) } }
}
