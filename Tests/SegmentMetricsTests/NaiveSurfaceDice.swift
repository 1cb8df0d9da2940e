// The brute-force twin of the normalized surface Dice: neighbour codes straight from their definition on the whole
// image (every cube position, voxels outside the image read as background; no crop, no padding), distances over all
// pairs of border cubes. What `surfaceDice` (cropped, windowed search or distance transform) is checked against.
@testable import SegmentMetrics

/// NSD per tolerance of masks a, b on `grid` (rank 2 or 3), brute force. O(border cubes²).
func naiveSurfaceDice(a: [UInt8], b: [UInt8], grid: Grid3, rank: Int, spacing: (Double, Double, Double),
                      tolerances: [Double]) -> [Double] {
    let table = rank == 3 ? SurfelAreas.areas3D(spacing: spacing) : SurfelAreas.lengths2D(spacing: (spacing.0, spacing.1))
    let corners = rank == 3 ? 8 : 4
    func inside(_ m: [UInt8], _ v: (Int, Int, Int)) -> Bool {
        v.0 >= 0 && v.0 < grid.n0 && v.1 >= 0 && v.1 < grid.n1 && v.2 >= 0 && v.2 < grid.n2
            && m[v.0 + grid.n0 * (v.1 + grid.n1 * v.2)] != 0
    }
    /// (position, area) of every border cube of m
    func border(_ m: [UInt8]) -> [((Int, Int, Int), Double)] {
        var out: [((Int, Int, Int), Double)] = []
        for p2 in 0...(rank == 3 ? grid.n2 : 0) {
            for p1 in 0...grid.n1 {
                for p0 in 0...grid.n0 {
                    var code = 0
                    for k in 0..<corners {
                        // corner k: 3D k = 4a + 2b + c at voxel p - 1 + (a, b, c), bit 7 - k; 2D k = 2a + b, bit 3 - k
                        let (da, db, dc) = rank == 3 ? (k >> 2, (k >> 1) & 1, k & 1) : (k >> 1, k & 1, 1)
                        if inside(m, (p0 - 1 + da, p1 - 1 + db, p2 - 1 + dc)) { code |= 1 << (corners - 1 - k) }
                    }
                    if code != 0 && code != (1 << corners) - 1 { out.append(((p0, p1, p2), table[code])) }
                }
            }
        }
        return out
    }
    let borderA = border(a), borderB = border(b)
    var matched = [Double](repeating: 0, count: tolerances.count), total = 0.0
    for (from, to) in [(borderA, borderB), (borderB, borderA)] {
        for (p, area) in from {
            total += area
            var best = Double.infinity
            for (q, _) in to {
                let x = Double(p.0 - q.0) * spacing.0, y = Double(p.1 - q.1) * spacing.1, z = Double(p.2 - q.2) * spacing.2
                best = min(best, (x * x + y * y + z * z).squareRoot())
            }
            for (k, t) in tolerances.enumerated() where best <= t { matched[k] += area }
        }
    }
    return matched.map { $0 / total }
}
