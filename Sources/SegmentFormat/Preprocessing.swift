// How a model's input is prepared: the one typed contract that `segment convert` writes, `ModelFile.open` (and so
// `inspect` and `run`) validates, and the run pipeline follows. Its values are stored in the model file as the
// `preprocessing.*` metadata keys (docs/FORMAT.md); `validated` is the only place their allowed values are listed,
// so a model file that `convert` writes always runs.

/// What the network was trained on, and how to get an image there.
public struct Preprocessing: Codable, Equatable, Sendable {
    /// One channel (repeated to in_chans inside the model when in_chans is 3), or red, green and blue.
    public enum Channels: String, Codable, Sendable, CaseIterable { case gray, rgb }

    /// The intensity transform, with statistics over the whole image (docs/RUN.md).
    public enum Intensity: String, Codable, Sendable, CaseIterable {
        case none
        case minmax   // (x - min) / (max - min)
        case window   // (clamp(x, windowLo, windowHi) - windowLo) / (windowHi - windowLo)
        case zscore   // (x - mean) / std
    }

    /// scipy.ndimage.zoom's spline orders that this tool resamples with.
    public enum SplineOrder: Int, Codable, Sendable, CaseIterable {
        case nearest = 0, linear = 1, cubic = 3
    }

    public var channels: Channels = .gray
    public var intensity: Intensity = .minmax
    /// The window of `.window` (finite, lo < hi); 0, 0 otherwise.
    public var windowLo: Double = 0
    public var windowHi: Double = 0
    /// Array axis of a NIfTI volume along which slices are taken (0-based; 2 = the third axis).
    public var sliceAxis: Int = 2
    /// In-plane convention: the model's image row is NIfTI axis `rowAxis`, its column `colAxis` (AdvMIM: 0 and 1).
    public var rowAxis: Int = 0
    public var colAxis: Int = 1
    /// Orientation (RAS+ axis codes, e.g. "LPS") of the training volumes' (i, j, k) axes; "" = use the array as is.
    public var orientation: String = ""
    /// Image to the model grid, labels back to the input grid.
    public var imageOrder: SplineOrder = .nearest
    public var labelOrder: SplineOrder = .nearest

    public init() {}

    /// Why a value cannot be part of a preprocessing: the metadata key (docs/FORMAT.md) it belongs to, and the reason.
    public struct Problem: Error, Equatable {
        public let key: String
        public let reason: String
    }

    /// The preprocessing of these raw values (as a model file stores them, or as `convert`'s flags give them), or the
    /// first problem. `inChans` is the network's input channels (rgb needs 3).
    public static func validated(channels: String, intensity: String, windowLo: Double, windowHi: Double,
                                 sliceAxis: Int, rowAxis: Int, colAxis: Int, orientation: String,
                                 imageOrder: Int, labelOrder: Int, inChans: Int) -> Result<Preprocessing, Problem> {
        func names<E: RawRepresentable & CaseIterable>(_: E.Type) -> String {
            E.allCases.map { "\($0.rawValue)" }.joined(separator: ", ")
        }
        var p = Preprocessing()
        guard let c = Channels(rawValue: channels) else {
            return .failure(Problem(key: MetadataKey.channels, reason: "is \"\(channels)\", not \(names(Channels.self))"))
        }
        guard c == .gray || inChans == 3 else {
            return .failure(Problem(key: MetadataKey.channels, reason: "is rgb but the network takes \(inChans) input channel(s)"))
        }
        p.channels = c
        guard let i = Intensity(rawValue: intensity) else {
            return .failure(Problem(key: MetadataKey.intensity, reason: "is \"\(intensity)\", not \(names(Intensity.self))"))
        }
        p.intensity = i
        guard windowLo.isFinite, windowHi.isFinite, i != .window || windowLo < windowHi else {
            return .failure(Problem(key: MetadataKey.windowLo, reason: "and window_hi are \(windowLo), \(windowHi): they must be finite, with lo < hi for intensity window"))
        }
        (p.windowLo, p.windowHi) = (windowLo, windowHi)
        for (key, axis) in [(MetadataKey.sliceAxis, sliceAxis), (MetadataKey.rowAxis, rowAxis), (MetadataKey.colAxis, colAxis)]
        where !(0...2).contains(axis) {
            return .failure(Problem(key: key, reason: "is \(axis), not an array axis 0, 1 or 2"))
        }
        guard Set([sliceAxis, rowAxis, colAxis]).count == 3 else {
            return .failure(Problem(key: MetadataKey.sliceAxis, reason: "slice, row and column axes \(sliceAxis), \(rowAxis), \(colAxis) are not distinct"))
        }
        (p.sliceAxis, p.rowAxis, p.colAxis) = (sliceAxis, rowAxis, colAxis)
        if !orientation.isEmpty {
            let letters = Array(orientation)
            let pairs: [Set<Character>] = [["L", "R"], ["A", "P"], ["S", "I"]]
            guard letters.count == 3, !pairs.contains(where: { pair in letters.filter { pair.contains($0) }.count != 1 }) else {
                return .failure(Problem(key: MetadataKey.orientation, reason: "is \"\(orientation)\", not three axis codes such as RAS or LPS"))
            }
        }
        p.orientation = orientation
        for (key, order) in [(MetadataKey.imageOrder, imageOrder), (MetadataKey.labelOrder, labelOrder)] where SplineOrder(rawValue: order) == nil {
            return .failure(Problem(key: key, reason: "is \(order), not a spline order this tool resamples with (\(names(SplineOrder.self)))"))
        }
        p.imageOrder = SplineOrder(rawValue: imageOrder)!
        p.labelOrder = SplineOrder(rawValue: labelOrder)!
        return .success(p)
    }
}
