// Normalized surface Dice (Nikolov et al., "Clinically applicable segmentation of head and neck anatomy for
// radiotherapy", 2021), as DeepMind's surface-distance package computes it and FLARE reports it:
//
//   border(M)   = the 2x2x2 cubes (2x2 squares in 2D) with some but not all corners in M, over the grid of cubes that
//                 covers every voxel (voxels outside the image are background); each has the surfel area of its
//                 neighbour code (SurfelAreas);
//   d(c, M')    = Euclidean distance (with the spacing) from cube c to the nearest border cube of the other mask;
//   NSD(t)      = (sum of areas of A's border cubes with d <= t + the same for B) / (sum of all areas of A and B).
//
// Cube positions: cube p on axis a spans voxels p - 1 and p, for p in 0...n_a (n_a + 1 positions), so the cube grid
// is the image grid padded with one position at the high end, as the package's crop does.

/// Per tolerance, the normalized surface Dice of two masks; one empty mask gives 0, two give NaN.
///
/// - a, b: (n0, n1, n2) axis 0 fastest, 0 / 1: the masks on any box that holds both (outside it both are empty).
/// - rank: 2 or 3 (rank 1 is scored as a 2D image one pixel high).
/// - tolerances: in spacing units, each >= 0.
/// - maxOffsets: `BorderDistances`' switch to the distance transform (0: always; tests use it to check both ways).
func surfaceDice(a: [UInt8], b: [UInt8], grid: Grid3, rank: Int, spacing: (Double, Double, Double),
                 tolerances: [Double], maxOffsets: Int = BorderDistances.maxOffsets) -> [Double] {
    let cubes = rank == 3 ? Grid3(grid.n0 + 1, grid.n1 + 1, grid.n2 + 1) : Grid3(grid.n0 + 1, grid.n1 + 1, 1)
    let table = rank == 3 ? SurfelAreas.areas3D(spacing: spacing) : SurfelAreas.lengths2D(spacing: (spacing.0, spacing.1))
    let codesA = neighbourCodes(a, grid: grid, rank: rank), codesB = neighbourCodes(b, grid: grid, rank: rank)
    let full: UInt8 = rank == 3 ? 255 : 15
    let borderA = codesA.map { $0 != 0 && $0 != full ? UInt8(1) : 0 }          // (cubes.n0, cubes.n1, cubes.n2)
    let borderB = codesB.map { $0 != 0 && $0 != full ? UInt8(1) : 0 }
    let s = rank == 3 ? spacing : (spacing.0, spacing.1, 1)
    var matched = [Double](repeating: 0, count: tolerances.count), total = 0.0
    for (from, codes, to) in [(borderA, codesA, borderB), (borderB, codesB, borderA)] {
        let within = BorderDistances(border: to, grid: cubes, spacing: s, reach: tolerances.max() ?? 0,
                                     maxOffsets: maxOffsets)
        for i in 0..<cubes.count where from[i] != 0 {
            let area = table[Int(codes[i])]
            total += area
            let d = within.distance(at: i)
            for (k, t) in tolerances.enumerated() where d <= t { matched[k] += area }
        }
    }
    return matched.map { $0 / total }       // 0 / 0 = NaN when both masks are empty
}

/// The neighbour code of every cube of a mask: bit 7 - (4a + 2b + c) set when voxel (p0 - 1 + a, p1 - 1 + b,
/// p2 - 1 + c) is inside (2D: bit 3 - (2a + b) for voxel (p0 - 1 + a, p1 - 1 + b)).
/// mask: (n0, n1, n2); result: (n0 + 1, n1 + 1, n2 + 1) in 3D, (n0 + 1, n1 + 1, 1) in 2D.
func neighbourCodes(_ mask: [UInt8], grid: Grid3, rank: Int) -> [UInt8] {
    let three = rank == 3
    // the mask with a zero layer on both sides of every scored axis: padded index = voxel index + 1
    let P = Grid3(grid.n0 + 2, grid.n1 + 2, three ? grid.n2 + 2 : 1)
    var padded = [UInt8](repeating: 0, count: P.count)                       // (P.n0, P.n1, P.n2)
    for i2 in 0..<grid.n2 {
        for i1 in 0..<grid.n1 {
            let src = grid.n0 * (i1 + grid.n1 * i2), dst = 1 + P.n0 * (i1 + 1 + P.n1 * (three ? i2 + 1 : i2))
            for i0 in 0..<grid.n0 { padded[dst + i0] = mask[src + i0] != 0 ? 1 : 0 }
        }
    }
    let C = three ? Grid3(grid.n0 + 1, grid.n1 + 1, grid.n2 + 1) : Grid3(grid.n0 + 1, grid.n1 + 1, 1)
    var codes = [UInt8](repeating: 0, count: C.count)                         // (C.n0, C.n1, C.n2)
    let s1 = P.n0, s2 = P.n0 * P.n1
    padded.withUnsafeBufferPointer { m in
        codes.withUnsafeMutableBufferPointer { out in
            var j = 0
            for p2 in 0..<C.n2 {
                for p1 in 0..<C.n1 {
                    // cube p covers padded p + (a, b, c): voxel p - 1 + (a, b, c)
                    let base = s1 * p1 + s2 * p2
                    for p0 in 0..<C.n0 {
                        let q = base + p0
                        var code: UInt8
                        if three {
                            code = m[q] << 7 | m[q + s2] << 6 | m[q + s1] << 5 | m[q + s1 + s2] << 4
                            code |= m[q + 1] << 3 | m[q + 1 + s2] << 2 | m[q + 1 + s1] << 1 | m[q + 1 + s1 + s2]
                        } else {
                            code = m[q] << 3 | m[q + s1] << 2 | m[q + 1] << 1 | m[q + 1 + s1]
                        }
                        out[j] = code
                        j += 1
                    }
                }
            }
        }
    }
    return codes
}

/// Distances from cubes to the nearest border cube, needed only up to `reach`: a search over the offsets within
/// `reach`, nearest first, when there are few of them (tolerances of a few voxels); else the exact distance transform.
/// Both give the same distances: sqrt((k0 s0)² + (k1 s1)² + (k2 s2)²) of the nearest border cube, or something
/// larger than `reach` when there is none that close.
struct BorderDistances {
    /// Most offsets searched per cube before the distance transform is cheaper.
    static let maxOffsets = 4096

    let border: [UInt8]
    let grid: Grid3
    /// (offset in the flat index, k0, k1, k2, distance), by increasing distance; empty when `transform` is used.
    let offsets: [(Int, Int, Int, Int, Double)]
    let transform: [Double]?

    init(border: [UInt8], grid: Grid3, spacing s: (Double, Double, Double), reach: Double,
         maxOffsets: Int = BorderDistances.maxOffsets) {
        self.border = border
        self.grid = grid
        // offsets past the grid never reach a border cube; clamping first also keeps a huge reach from overflowing Int
        let r = [s.0, s.1, s.2].enumerated().map { axis, sa in Int(min((reach / sa).rounded(.down), Double(grid[axis] - 1))) }
        let count = (2 * r[0] + 1) * (2 * r[1] + 1) * (2 * r[2] + 1)
        if count > maxOffsets || !border.contains(1) {
            offsets = []
            transform = border.contains(1)
                ? squaredDistanceTransform(features: border, grid: grid, spacing: s).map { $0.squareRoot() } : nil
            return
        }
        var list: [(Int, Int, Int, Int, Double)] = []
        for k2 in -r[2]...r[2] {
            for k1 in -r[1]...r[1] {
                for k0 in -r[0]...r[0] {
                    // scipy's distance_transform_edt: each axis's index difference times its spacing, squared, summed
                    let x = Double(k0) * s.0, y = Double(k1) * s.1, z = Double(k2) * s.2
                    let d = (x * x + y * y + z * z).squareRoot()
                    if d <= reach { list.append((k0 + grid.n0 * (k1 + grid.n1 * k2), k0, k1, k2, d)) }
                }
            }
        }
        offsets = list.sorted { $0.4 < $1.4 }
        transform = nil
    }

    /// The distance from cube `i` to the nearest border cube when it is within `reach`, else a larger value
    /// (+inf when there is no border at all).
    func distance(at i: Int) -> Double {
        if let transform { return transform[i] }
        if offsets.isEmpty { return .infinity }
        let i0 = i % grid.n0, i1 = (i / grid.n0) % grid.n1, i2 = i / (grid.n0 * grid.n1)
        for (step, k0, k1, k2, d) in offsets {
            let j0 = i0 + k0, j1 = i1 + k1, j2 = i2 + k2
            if j0 < 0 || j0 >= grid.n0 || j1 < 0 || j1 >= grid.n1 || j2 < 0 || j2 >= grid.n2 { continue }
            if border[i + step] != 0 { return d }
        }
        return .infinity
    }
}
