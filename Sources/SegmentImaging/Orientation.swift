// Orientation: the axis codes of a volume (nibabel's aff2axcodes) and the layout that maps a volume's array to a
// model's convention (slice, row, column) and back.
//
// A model file records the convention it was trained with (Preprocessing.sliceAxis/rowAxis/colAxis and
// orientation). With orientation "" the training arrays were used as stored: the model's slice, row and column
// are array axes sliceAxis, rowAxis, colAxis. With an orientation such as "LPS", the training volumes' array axes
// (i, j, k) pointed to L, P and S; an input whose axes point elsewhere (say "RAS", or permuted) is first mapped to
// that orientation by permuting and flipping axes, so that the model sees the anatomy the way it was trained.

/// Axis codes from an affine, as nibabel.orientations.aff2axcodes with the default RAS+ labels.
public enum Orientation {
    /// Codes of array axes (i, j, k): for each, the world direction its index increases towards, one of
    /// L/R, P/A, I/S (e.g. "RAS" for nibabel's canonical, "LPS" for DICOM). Throws `invalidOrientation`
    /// when an axis has no direction (a degenerate affine).
    public static func axisCodes(_ affine: Affine, path: String = "") throws -> String {
        let ornt = ioOrientation(affine)
        var codes = ""
        for (i, o) in ornt.enumerated() {
            guard let (axis, flip) = o else {
                throw ImagingError.invalidOrientation(path: path, problem: "array axis \(i) maps to no world direction")
            }
            codes.append(axisLabels[axis][flip ? 0 : 1])
        }
        return codes
    }

    /// (negative, positive) direction labels of world axes x, y, z.
    static let axisLabels: [[Character]] = [["L", "R"], ["P", "A"], ["I", "S"]]

    /// nibabel's io_orientation: for each array axis, the world axis it is closest to and whether it runs
    /// against it (nil when the axis is degenerate). Polar decomposition of the column-normalised 3x3 part,
    /// then a greedy choice of the largest remaining entry per column, as nibabel does it.
    static func ioOrientation(_ affine: Affine) -> [(axis: Int, flip: Bool)?] {
        // RS (3x3): columns normalised to unit length (zero columns left as they are).
        var rs = [[Double]](repeating: [0, 0, 0], count: 3)
        for c in 0..<3 {
            var norm = 0.0
            for r in 0..<3 { norm += affine.m[r][c] * affine.m[r][c] }
            norm = norm == 0 ? 1 : norm.squareRoot()
            for r in 0..<3 { rs[r][c] = affine.m[r][c] / norm }
        }
        // Closest orthogonal matrix on the kept singular directions: R = sum_i u_i v_i^T, with v_i the eigenvectors
        // of RS^T RS, s_i = sqrt(eigenvalue), u_i = RS v_i / s_i (the SVD nibabel computes).
        var m = [[Double]](repeating: [0, 0, 0], count: 3)
        for a in 0..<3 { for b in 0..<3 { for r in 0..<3 { m[a][b] += rs[r][a] * rs[r][b] } } }
        let (values, vectors) = symmetricEigen3(m)
        let s = values.map { max($0, 0).squareRoot() }
        let tol = (s.max() ?? 0) * 3 * Double.ulpOfOne
        var rot = [[Double]](repeating: [0, 0, 0], count: 3)
        for i in 0..<3 where s[i] > tol {
            let v = (0..<3).map { vectors[$0][i] }
            let u = (0..<3).map { r in (0..<3).reduce(0.0) { $0 + rs[r][$1] * v[$1] } / s[i] }
            for r in 0..<3 { for c in 0..<3 { rot[r][c] += u[r] * v[c] } }
        }
        var result: [(axis: Int, flip: Bool)?] = []
        for c in 0..<3 {
            let col = (0..<3).map { rot[$0][c] }
            // np.allclose(col, 0): |x| <= 1e-8.
            guard col.contains(where: { abs($0) > 1e-8 }) else { result.append(nil); continue }
            var best = 0
            for r in 1..<3 where abs(col[r]) > abs(col[best]) { best = r }
            result.append((best, col[best] < 0))
            for k in 0..<3 { rot[best][k] = 0 }
        }
        return result
    }

    /// Eigen decomposition of a symmetric 3x3 matrix by cyclic Jacobi rotations: (eigenvalues, eigenvectors as
    /// columns).
    static func symmetricEigen3(_ input: [[Double]]) -> ([Double], [[Double]]) {
        var a = input
        var v: [[Double]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        for _ in 0..<50 {
            let off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2]
            if off < 1e-30 { break }
            for (p, q) in [(0, 1), (0, 2), (1, 2)] where a[p][q] != 0 {
                let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<3 {   // A <- A J
                    let akp = a[k][p], akq = a[k][q]
                    a[k][p] = c * akp - s * akq; a[k][q] = s * akp + c * akq
                }
                for k in 0..<3 {   // A <- J^T A
                    let apk = a[p][k], aqk = a[q][k]
                    a[p][k] = c * apk - s * aqk; a[q][k] = s * apk + c * aqk
                }
                for k in 0..<3 {   // V <- V J
                    let vkp = v[k][p], vkq = v[k][q]
                    v[k][p] = c * vkp - s * vkq; v[k][q] = s * vkp + c * vkq
                }
            }
        }
        return ([a[0][0], a[1][1], a[2][2]], v)
    }
}

/// How a model sees a 3D array: its slice, row and column axes are array axes `axes[0]`, `axes[1]`, `axes[2]`,
/// each possibly reversed. The canonical volume (S, R, C) is the array read that way; the inverse puts a
/// canonical mask back on the array's grid exactly.
public struct VolumeLayout: Equatable, Sendable {
    /// Array axis (0 = i, 1 = j, 2 = k) of the canonical slice, row and column axes; a permutation of 0, 1, 2.
    public let axes: [Int]
    /// flips[c]: canonical index t along axis c reads array index n - 1 - t.
    public let flips: [Bool]

    /// The default is AdvMIM's convention: slices along k, image rows along i, columns along j, no flips.
    public init(axes: [Int] = [2, 0, 1], flips: [Bool] = [false, false, false]) {
        precondition(axes.sorted() == [0, 1, 2] && flips.count == 3, "axes must be a permutation of 0, 1, 2")
        self.axes = axes; self.flips = flips
    }

    /// The layout for a model trained with slices along `sliceAxis`, rows along `rowAxis`, columns along `colAxis`
    /// of volumes whose axis codes were `orientation` ("" = use the input array as is, no reorientation), for an
    /// input volume with axis codes `volumeAxisCodes` (NIfTIHeader.axisCodes). Throws `invalidOrientation` for
    /// codes that are not a valid orientation or axes that are not a permutation.
    public static func forModel(sliceAxis: Int, rowAxis: Int, colAxis: Int, orientation: String,
                                volumeAxisCodes: String, path: String = "") throws -> VolumeLayout {
        let modelAxes = [sliceAxis, rowAxis, colAxis]
        guard modelAxes.sorted() == [0, 1, 2] else {
            throw ImagingError.invalidOrientation(path: path, problem: "slice/row/column axes \(modelAxes) are not a permutation of 0, 1, 2")
        }
        if orientation.isEmpty { return VolumeLayout(axes: modelAxes) }
        let model = try worldAxes(orientation, path: path)
        let volume = try worldAxes(volumeAxisCodes, path: path)
        var axes: [Int] = [], flips: [Bool] = []
        for t in modelAxes {
            // The input axis pointing along the same world axis as training axis t; reversed if opposite.
            let a = volume.firstIndex { $0.axis == model[t].axis }!
            axes.append(a)
            flips.append(volume[a].positive != model[t].positive)
        }
        return VolumeLayout(axes: axes, flips: flips)
    }

    /// Parses axis codes ("LPS") into (world axis, positive direction) per array axis.
    static func worldAxes(_ codes: String, path: String) throws -> [(axis: Int, positive: Bool)] {
        var result: [(axis: Int, positive: Bool)] = []
        for ch in codes.uppercased() {
            guard let w = Orientation.axisLabels.firstIndex(where: { $0.contains(ch) }) else {
                throw ImagingError.invalidOrientation(path: path, problem: "\"\(codes)\" is not an orientation (letters L/R, P/A, I/S)")
            }
            result.append((w, Orientation.axisLabels[w][1] == ch))
        }
        guard result.count == 3, Set(result.map(\.axis)).count == 3 else {
            throw ImagingError.invalidOrientation(path: path, problem: "\"\(codes)\" must name each of L/R, P/A, I/S once")
        }
        return result
    }

    /// (S, R, C): the canonical shape of an array of shape (X, Y, Z).
    public func canonicalShape(_ arrayShape: [Int]) -> [Int] {
        axes.map { arrayShape[$0] }
    }

    /// Offset in the array (X fastest) of canonical voxel (s, r, c) = origin + s*steps[0] + r*steps[1] + c*steps[2].
    @inlinable
    public func addressing(_ arrayShape: [Int]) -> (origin: Int, steps: [Int]) {
        precondition(arrayShape.count == 3, "a volume has 3 axes")
        let strides = [1, arrayShape[0], arrayShape[0] * arrayShape[1]]
        var origin = 0, steps: [Int] = []
        for c in 0..<3 {
            let a = axes[c]
            if flips[c] { origin += (arrayShape[a] - 1) * strides[a]; steps.append(-strides[a]) }
            else { steps.append(strides[a]) }
        }
        return (origin, steps)
    }
}
