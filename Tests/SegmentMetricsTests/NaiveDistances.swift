// Brute-force twins of the metrics' distance computations (all pairs, no transform): what the exact EDT and the
// pooled surface distances are checked against on small grids.
@testable import SegmentMetrics

/// For each voxel in `queries`, the squared distance to the nearest feature over all pairs. O(queries x features).
func naiveSquaredDistances(features: [UInt8], queries: [Int], grid: Grid3, spacing: (Double, Double, Double)) -> [Double] {
    var points: [(Int, Int, Int)] = []
    for i in 0..<grid.count where features[i] != 0 {
        points.append((i % grid.n0, (i / grid.n0) % grid.n1, i / (grid.n0 * grid.n1)))
    }
    return queries.map { q in
        let a = q % grid.n0, b = (q / grid.n0) % grid.n1, c = q / (grid.n0 * grid.n1)
        var best = Double.infinity
        for (x, y, zz) in points {
            let dx = spacing.0 * Double(a - x), dy = spacing.1 * Double(b - y), dz = spacing.2 * Double(c - zz)
            best = min(best, dx * dx + dy * dy + dz * dz)
        }
        return best
    }
}

/// `pooledSurfaceDistances` over all surface pairs.
func naivePooledSurfaceDistances(a: [UInt8], b: [UInt8], grid: Grid3, rank: Int,
                                 spacing: (Double, Double, Double)) -> [Double] {
    let surfaceA = surface(of: a, grid: grid, rank: rank)
    let surfaceB = surface(of: b, grid: grid, rank: rank)
    var pooled: [Double] = []
    for (from, to) in [(surfaceA, surfaceB), (surfaceB, surfaceA)] {
        let queries = (0..<grid.count).filter { from[$0] != 0 }
        pooled += naiveSquaredDistances(features: to, queries: queries, grid: grid, spacing: spacing).map { $0.squareRoot() }
    }
    return pooled
}
