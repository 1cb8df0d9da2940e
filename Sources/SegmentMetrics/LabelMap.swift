// SegmentMetrics: Dice / IoU / HD / HD95 / ASSD of label images, with an exact Euclidean distance transform,
// the empty-mask policies of docs/SCORING.md, and summary reports (JSON in nnU-Net's layout, CSV, a table).
//
// Memory layout used throughout the module: a grid of shape (n0, n1, n2) stored with axis 0 fastest,
// index = i0 + n0 * (i1 + n1 * i2). This is NIfTI's order (i, j, k) and a PNG's (column x, row y).

/// A label image: one non-negative integer label per voxel (0 = background) on a 1D, 2D or 3D grid.
///
/// `shape` lists the extents with the first axis fastest in memory (NIfTI: i, j, k; PNG: width, height).
/// Its count is the image's rank, which decides the surface neighbourhood (4-connected cross in 2D, 6 in 3D)
/// exactly as medpy does for an array of that rank: a NIfTI volume of shape (X, Y, 1) is 3D, a PNG is 2D.
public struct LabelMap: Sendable {
    public let shape: [Int]
    /// labels[i0 + n0 * (i1 + n1 * i2)]; count == product of shape.
    public let labels: [UInt16]

    public init(shape: [Int], labels: [UInt16]) {
        precondition((1...3).contains(shape.count), "LabelMap supports rank 1, 2 or 3, got shape \(shape)")
        precondition(shape.allSatisfy { $0 > 0 } && shape.reduce(1, *) == labels.count,
                     "LabelMap shape \(shape) does not match \(labels.count) labels")
        self.shape = shape
        self.labels = labels
    }

    /// A binary or small-label mask (as the run pipeline holds it).
    public init(shape: [Int], uint8Labels labels: [UInt8]) {
        self.init(shape: shape, labels: labels.map { UInt16($0) })
    }

    /// An all-background image of the given shape (used for `--missing-as-empty`).
    public static func empty(shape: [Int]) -> LabelMap {
        LabelMap(shape: shape, labels: [UInt16](repeating: 0, count: shape.reduce(1, *)))
    }

    public var rank: Int { shape.count }
    public var voxelCount: Int { labels.count }

    /// The largest label present (0 for an all-background image).
    public var maxLabel: Int { Int(labels.max() ?? 0) }
}

/// The extents of a grid padded to three axes (missing axes have extent 1), axis 0 fastest.
struct Grid3: Equatable {
    var n0: Int, n1: Int, n2: Int
    init(_ n0: Int, _ n1: Int, _ n2: Int) { self.n0 = n0; self.n1 = n1; self.n2 = n2 }
    init(shape: [Int]) {
        self.init(shape[0], shape.count > 1 ? shape[1] : 1, shape.count > 2 ? shape[2] : 1)
    }
    var count: Int { n0 * n1 * n2 }
    subscript(axis: Int) -> Int { axis == 0 ? n0 : axis == 1 ? n1 : n2 }
}

/// Spacing padded to three axes (missing axes get 1; they have extent 1 so it never matters).
func spacing3(_ spacing: [Double]) -> (Double, Double, Double) {
    (spacing[0], spacing.count > 1 ? spacing[1] : 1, spacing.count > 2 ? spacing[2] : 1)
}
