// Exact Euclidean distance transform with anisotropic spacing, in linear time (separable):
// Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled Functions", Theory of Computing 8 (2012).
//
//   D²(p) = min over feature voxels q of  sum_a (s_a * (p_a - q_a))²
//
// is computed one axis at a time: axis 0 by two sweeps (distance to the nearest feature on the line), then
// axes 1 and 2 as the lower envelope of parabolas  f(q) + s²(p - q)²  along each line. Every pass is exact, so the
// result equals the brute-force minimum up to floating-point rounding (MetricsCoreTests checks it against an
// all-pairs twin).

/// Squared distances (in squared spacing units) from every voxel of `grid` to the nearest voxel where
/// `features` is non-zero; +inf everywhere when there is no feature.
///
/// features: (n0, n1, n2) axis 0 fastest, 0 / 1.   result: (n0, n1, n2) Double.
func squaredDistanceTransform(features: [UInt8], grid: Grid3, spacing: (Double, Double, Double)) -> [Double] {
    precondition(features.count == grid.count)
    var d2 = [Double](repeating: .infinity, count: grid.count)
    d2.withUnsafeMutableBufferPointer { d in
        features.withUnsafeBufferPointer { f in
            nearestOnAxis0(features: f, into: d, grid: grid, s0: spacing.0)
        }
        if grid.n1 > 1 { envelopeAlong(axis: 1, d, grid: grid, s: spacing.1) }
        if grid.n2 > 1 { envelopeAlong(axis: 2, d, grid: grid, s: spacing.2) }
    }
    return d2
}

/// Pass 0: along each contiguous line of axis 0, (s0 * index distance to the nearest feature)², +inf if none.
private func nearestOnAxis0(features f: UnsafeBufferPointer<UInt8>, into d: UnsafeMutableBufferPointer<Double>,
                            grid: Grid3, s0: Double) {
    let n0 = grid.n0
    let w = s0 * s0
    for line in 0..<(grid.n1 * grid.n2) {
        let base = line * n0
        // forward: distance to the nearest feature at or before i
        var last = -1
        for i in 0..<n0 {
            if f[base + i] != 0 { last = i }
            if last >= 0 { let k = Double(i - last); d[base + i] = w * k * k }
        }
        if last < 0 { continue }  // no feature on this line: stays +inf
        // backward: the nearest feature at or after i, if closer
        var next = -1
        for i in stride(from: n0 - 1, through: 0, by: -1) {
            if f[base + i] != 0 { next = i }
            if next >= 0 { let k = Double(next - i); let v = w * k * k; if v < d[base + i] { d[base + i] = v } }
        }
    }
}

/// Lines along `axis` (1 or 2) processed in tiles of consecutive axis-0 positions, so that gathering a tile reads
/// contiguous memory: tile buffer (T, n) with each line contiguous.
private func envelopeAlong(axis: Int, _ d: UnsafeMutableBufferPointer<Double>, grid: Grid3, s: Double) {
    let n0 = grid.n0, n = grid[axis]
    let stride = axis == 1 ? n0 : n0 * grid.n1           // distance between neighbours along `axis`
    let outer = axis == 1 ? grid.n2 : grid.n1            // the remaining axis
    let outerStride = axis == 1 ? n0 * grid.n1 : n0
    let T = min(16, n0)
    var tile = [Double](repeating: 0, count: T * n)      // (T, n)
    var out = [Double](repeating: 0, count: n)
    var v = [Int](repeating: 0, count: n)
    var z = [Double](repeating: 0, count: n + 1)
    tile.withUnsafeMutableBufferPointer { tile in
    out.withUnsafeMutableBufferPointer { out in
    v.withUnsafeMutableBufferPointer { v in
    z.withUnsafeMutableBufferPointer { z in
        for o in 0..<outer {
            var i0 = 0
            while i0 < n0 {
                let t = min(T, n0 - i0)
                let base = o * outerStride + i0
                for k in 0..<n {
                    let src = base + k * stride
                    for j in 0..<t { tile[j * n + k] = d[src + j] }
                }
                for j in 0..<t {
                    let line = UnsafeMutableBufferPointer(rebasing: tile[(j * n)..<(j * n + n)])
                    if lowerEnvelope(line, out: out, s: s, v: v, z: z) {
                        for k in 0..<n { line[k] = out[k] }
                    }
                }
                for k in 0..<n {
                    let dst = base + k * stride
                    for j in 0..<t { d[dst + j] = tile[j * n + k] }
                }
                i0 += t
            }
        }
    }}}}
}

/// 1D squared distance transform of a sampled function: out[p] = min_q f[q] + s²(p - q)², over the finite f[q].
/// Returns false (and leaves `out` untouched) when every f[q] is +inf, in which case the line stays +inf.
/// v: indices of the parabolas on the lower envelope; z: boundaries between them (count n + 1).
@inline(__always)
private func lowerEnvelope(_ f: UnsafeMutableBufferPointer<Double>, out: UnsafeMutableBufferPointer<Double>, s: Double,
                           v: UnsafeMutableBufferPointer<Int>, z: UnsafeMutableBufferPointer<Double>) -> Bool {
    let n = f.count
    let w = s * s
    var k = -1
    for q in 0..<n where f[q] < .infinity {
        let fq = f[q] + w * Double(q * q)
        if k < 0 {
            k = 0; v[0] = q; z[0] = -.infinity; z[1] = .infinity
            continue
        }
        // where the parabolas from p and q intersect (in index units)
        func intersection(_ p: Int) -> Double { (fq - (f[p] + w * Double(p * p))) / (2 * w * Double(q - p)) }
        var x = intersection(v[k])
        while x <= z[k] {          // q hides parabola v[k] from z[k] on; z[0] = -inf ends this at k = 0
            k -= 1
            x = intersection(v[k])
        }
        k += 1
        v[k] = q; z[k] = x; z[k + 1] = .infinity
    }
    if k < 0 { return false }
    k = 0
    for p in 0..<n {
        while z[k + 1] < Double(p) { k += 1 }
        let dq = Double(p - v[k])
        out[p] = w * dq * dq + f[v[k]]
    }
    return true
}
