// Surface distances between two binary masks on the same grid, as medpy 0.5.2 defines them:
//   surface(M) = M XOR erosion(M, face-connected cross), voxels outside the grid counted as background;
//   d(A->B)    = for each surface voxel of A, the distance to the nearest surface voxel of B (EDT of B's surface).
// HD, HD95 and ASSD summarise the pooled set d(A->B) + d(B->A).

/// The surface voxels of `mask`: mask voxels with at least one face neighbour outside the mask or the grid.
/// Only the first `rank` axes have neighbours (4-connected cross in 2D, 6-connected in 3D).
/// mask, result: (n0, n1, n2) axis 0 fastest, 0 / 1.
func surface(of mask: [UInt8], grid: Grid3, rank: Int) -> [UInt8] {
    let (n0, n1, n2) = (grid.n0, grid.n1, grid.n2)
    let s1 = n0, s2 = n0 * n1
    var out = [UInt8](repeating: 0, count: grid.count)
    mask.withUnsafeBufferPointer { m in
        out.withUnsafeMutableBufferPointer { o in
            for i2 in 0..<n2 {
                for i1 in 0..<n1 {
                    let row = i2 * s2 + i1 * s1
                    for i0 in 0..<n0 where m[row + i0] != 0 {
                        let i = row + i0
                        var interior = i0 > 0 && i0 < n0 - 1 && m[i - 1] != 0 && m[i + 1] != 0
                        if interior && rank > 1 {
                            interior = i1 > 0 && i1 < n1 - 1 && m[i - s1] != 0 && m[i + s1] != 0
                        }
                        if interior && rank > 2 {
                            interior = i2 > 0 && i2 < n2 - 1 && m[i - s2] != 0 && m[i + s2] != 0
                        }
                        if !interior { o[i] = 1 }
                    }
                }
            }
        }
    }
    return out
}

/// The pooled surface distances of two masks: d(A->B) followed by d(B->A), in spacing units.
/// Both masks must be non-empty. a, b: (n0, n1, n2) axis 0 fastest, 0 / 1.
func pooledSurfaceDistances(a: [UInt8], b: [UInt8], grid: Grid3, rank: Int,
                            spacing: (Double, Double, Double)) -> [Double] {
    let surfaceA = surface(of: a, grid: grid, rank: rank)
    let surfaceB = surface(of: b, grid: grid, rank: rank)
    var pooled: [Double] = []
    for (from, to) in [(surfaceA, surfaceB), (surfaceB, surfaceA)] {
        let d2 = squaredDistanceTransform(features: to, grid: grid, spacing: spacing)
        for i in 0..<grid.count where from[i] != 0 { pooled.append(d2[i].squareRoot()) }
    }
    return pooled
}

/// HD, HD95 and ASSD of a non-empty pooled distance set.
struct DistanceSummary: Equatable {
    var hd: Double
    var hd95: Double
    var assd: Double

    init(pooled: [Double]) {
        precondition(!pooled.isEmpty)
        var values = pooled
        hd = values.max()!
        assd = values.reduce(0, +) / Double(values.count)
        hd95 = percentile(&values, 95)
    }
}

/// numpy.percentile(values, q) with its default 'linear' method: the order statistics around the virtual index
/// q/100 * (n - 1), interpolated as numpy's _lerp does. Reorders `values` (selection, linear time on average).
func percentile(_ values: inout [Double], _ q: Double) -> Double {
    let n = values.count
    let virtual = q / 100 * Double(n - 1)
    let lo = Int(virtual.rounded(.down))
    let t = virtual - Double(lo)
    let a = select(&values, lo)
    if lo + 1 >= n { return a }
    // after selection everything right of `lo` is >= values[lo]: the next order statistic is their minimum
    let b = values[(lo + 1)...].min()!
    let diff = b - a
    return t >= 0.5 ? b - diff * (1 - t) : a + diff * t
}

/// Moves the k-th smallest element to index k, smaller-or-equal ones before it and larger-or-equal ones after it
/// (Hoare's quickselect with a median-of-three pivot). Returns it.
func select(_ v: inout [Double], _ k: Int) -> Double {
    var lo = 0, hi = v.count - 1
    v.withUnsafeMutableBufferPointer { v in
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if v[mid] < v[lo] { v.swapAt(mid, lo) }
            if v[hi] < v[lo] { v.swapAt(hi, lo) }
            if v[hi] < v[mid] { v.swapAt(hi, mid) }
            let pivot = v[mid]
            var i = lo, j = hi
            while i <= j {
                while v[i] < pivot { i += 1 }
                while pivot < v[j] { j -= 1 }
                if i <= j { v.swapAt(i, j); i += 1; j -= 1 }
            }
            // now v[lo...j] <= pivot <= v[i...hi], and v[j+1..<i] == pivot
            if k <= j { hi = j } else if k >= i { lo = i } else { break }
        }
    }
    return v[k]
}
