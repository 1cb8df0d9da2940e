// The surface element ("surfel") of every 2x2x2 neighbour code, as the normalized surface Dice of DeepMind's
// surface-distance package measures surfaces (docs/SCORING.md): the marching-cubes triangles of the code, vertices at
// the midpoints of the cube's cut edges, and the area of each triangle under the voxel spacing. In 2D the same for
// the 2x2 codes of marching squares (contour segments and their lengths).
//
// The 256 triangulations are generated here, not tabulated: Lorensen & Cline's 15 base configurations (corner sets),
// their contours found face by face, each contour split into triangles, then carried to every code by the 48
// symmetries of the cube (axis permutations and reflections) and by complement (inside and outside swapped, the same
// triangles). Two rules settle what the base configurations leave open, and both are the ones the package's areas
// follow (SurfelAreaTests checks all 256 codes against it):
//   1. on a face with two diagonal corners of the base configuration inside (an ambiguous face), the contour
//      separates those corners; a complemented configuration keeps its base's triangles, so there it is the outside
//      corners that are separated (Lorensen & Cline's original choice);
//   2. a contour with more than three vertices is split into the triangles of largest total area in unit-cube
//      coordinates. That only matters for the non-planar pentagon of three corners on a face (cases 5 and 12) and the
//      skew hexagon of a three-edge path (cases 11 and 14); the largest split is unique, so it does not depend on the
//      orientation a code is reached from.
//
// Cube layout: corner k = 4a + 2b + c sits at (a, b, c) along axes (0, 1, 2); the cube at grid position (i0, i1, i2)
// spans voxels i - 1 ... i on each axis, corner (a, b, c) being voxel (i0 - 1 + a, i1 - 1 + b, i2 - 1 + c), and its
// bit in the neighbour code is 7 - k, i.e. the code is the correlation of the mask with the kernel
// [[[128, 64], [32, 16]], [[8, 4], [2, 1]]]. In 2D corner k = 2a + b, bit 3 - k, kernel [[8, 4], [2, 1]].

/// A point in unit-cube coordinates.
typealias Point3 = (Double, Double, Double)

enum SurfelAreas {
    /// Lorensen & Cline's 15 configurations (their figure's numbering), as sets of inside corners.
    static let baseCases: [[Int]] = [
        [],              // 0  nothing inside
        [0],             // 1  one corner
        [0, 4],          // 2  an edge
        [0, 6],          // 3  two corners diagonal on a face
        [0, 7],          // 4  two corners diagonal through the cube
        [0, 1, 2],       // 5  three corners on a face
        [0, 4, 7],       // 6  an edge and the far corner
        [1, 2, 4],       // 7  three corners, pairwise diagonal on faces
        [0, 1, 2, 3],    // 8  a face
        [0, 1, 2, 4],    // 9  a corner and its three neighbours
        [0, 3, 4, 7],    // 10 two opposite edges
        [0, 4, 6, 7],    // 11 a path of three perpendicular edges
        [0, 1, 2, 7],    // 12 three corners on a face and the far corner
        [0, 3, 5, 6],    // 13 four corners, pairwise diagonal on faces
        [0, 4, 5, 7],    // 14 the mirror image of 11
    ]

    /// The triangles of every code 0..<256, each as its three vertices (midpoints of cube edges) in unit-cube
    /// coordinates.
    static let triangles: [[(Point3, Point3, Point3)]] = generateTriangles()

    /// Which base configuration each code was reached from (for tests and reports).
    static let baseCaseOfCode: [Int] = generateTriangulations().baseCase

    /// The surfel area of every code 0..<256 under `spacing` (mm² for mm spacing): per triangle the norm of its area
    /// vector n (half the cross product, unit-cube coordinates) scaled as (n0 s1 s2, n1 s0 s2, n2 s0 s1).
    static func areas3D(spacing s: (Double, Double, Double)) -> [Double] {
        triangles.map { tris in
            var total = 0.0
            for (p, q, r) in tris {
                let n = areaVector(p, q, r)
                let x = n.0 * s.1 * s.2, y = n.1 * s.0 * s.2, z = n.2 * s.0 * s.1
                total += (x * x + y * y + z * z).squareRoot()
            }
            return total
        }
    }

    /// The contour length of every 2D code 0..<16 under `spacing`: marching squares with segments between edge
    /// midpoints, the saddle codes (two diagonal corners inside) as two separate segments around the inside corners.
    static func lengths2D(spacing s: (Double, Double)) -> [Double] {
        // square corners k = 2a + b at (a, b), in cyclic order around the square
        let cycle = [0, 1, 3, 2]
        func point(_ e: Edge) -> (Double, Double) {
            (Double((e.u >> 1) + (e.v >> 1)) / 2, Double((e.u & 1) + (e.v & 1)) / 2)
        }
        return (0..<16).map { code in
            let inside = cycle.map { code & (1 << (3 - $0)) != 0 }
            var total = 0.0
            for segment in faceSegments(corners: cycle, inside: inside) {
                let p = point(segment.0), q = point(segment.1)
                let d0 = (p.0 - q.0) * s.0, d1 = (p.1 - q.1) * s.1
                total += (d0 * d0 + d1 * d1).squareRoot()
            }
            return total
        }
    }

    // MARK: generation

    static func corner(_ k: Int) -> (Int, Int, Int) { ((k >> 2) & 1, (k >> 1) & 1, k & 1) }

    /// The midpoint of the cube edge between corners u and v.
    static func midpoint(_ e: Edge) -> Point3 {
        let u = corner(e.u), v = corner(e.v)
        return (Double(u.0 + v.0) / 2, Double(u.1 + v.1) / 2, Double(u.2 + v.2) / 2)
    }

    /// A cube edge by its two corners, u < v.
    struct Edge: Hashable {
        let u: Int, v: Int
        init(_ a: Int, _ b: Int) { u = min(a, b); v = max(a, b) }
    }

    /// The contour segments on one face (corners in cyclic order, with which are inside): each joins two cut edges.
    /// Two cut edges give one segment; four (diagonal corners inside) give two, each around an inside corner.
    static func faceSegments(corners: [Int], inside: [Bool]) -> [(Edge, Edge)] {
        let n = corners.count
        var cut: [Edge] = []
        for i in 0..<n where inside[i] != inside[(i + 1) % n] { cut.append(Edge(corners[i], corners[(i + 1) % n])) }
        if cut.count == 2 { return [(cut[0], cut[1])] }
        if cut.count == 4 {
            return (0..<n).filter { inside[$0] }.map {
                (Edge(corners[($0 + n - 1) % n], corners[$0]), Edge(corners[$0], corners[($0 + 1) % n]))
            }
        }
        return []
    }

    /// The six faces of the cube, each as its four corners in cyclic order.
    static let faces: [[Int]] = (0..<3).flatMap { axis -> [[Int]] in
        let others = (0..<3).filter { $0 != axis }
        return [0, 1].map { side in
            [(0, 0), (1, 0), (1, 1), (0, 1)].map { (p, q) -> Int in
                var c = [0, 0, 0]
                c[axis] = side; c[others[0]] = p; c[others[1]] = q
                return 4 * c[0] + 2 * c[1] + c[2]
            }
        }
    }

    /// The closed contours of a configuration (rule 1 on ambiguous faces), each as its cut edges in order.
    static func contours(inside: Set<Int>) -> [[Edge]] {
        var neighbours: [Edge: [Edge]] = [:]
        for face in faces {
            for (a, b) in faceSegments(corners: face, inside: face.map { inside.contains($0) }) {
                neighbours[a, default: []].append(b)
                neighbours[b, default: []].append(a)
            }
        }
        // every cut edge lies on two faces, so it has exactly two neighbours: the segments close into cycles
        var seen = Set<Edge>(), loops: [[Edge]] = []
        for start in neighbours.keys.sorted(by: { ($0.u, $0.v) < ($1.u, $1.v) }) where !seen.contains(start) {
            var loop = [start], previous = start, current = neighbours[start]![0]
            seen.insert(start)
            while current != start {
                loop.append(current); seen.insert(current)
                let next = neighbours[current]!.first { $0 != previous }!
                previous = current; current = next
            }
            loops.append(loop)
        }
        return loops
    }

    static func areaVector(_ p: Point3, _ q: Point3, _ r: Point3) -> Point3 {
        let u = (q.0 - p.0, q.1 - p.1, q.2 - p.2), v = (r.0 - p.0, r.1 - p.1, r.2 - p.2)
        return ((u.1 * v.2 - u.2 * v.1) / 2, (u.2 * v.0 - u.0 * v.2) / 2, (u.0 * v.1 - u.1 * v.0) / 2)
    }

    static func area(_ p: Point3, _ q: Point3, _ r: Point3) -> Double {
        let n = areaVector(p, q, r)
        return (n.0 * n.0 + n.1 * n.1 + n.2 * n.2).squareRoot()
    }

    /// Rule 2: the triangles (as indices into `loop`) of the split of a polygon with the largest total area, by
    /// dynamic programming over its sub-polygons loop[i...j] (the triangle on chord (i, j) has its apex at k).
    static func largestSplit(_ loop: [Point3]) -> [(Int, Int, Int)] {
        let n = loop.count
        var best = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)    // (n, n)
        var apex = [[Int]](repeating: [Int](repeating: -1, count: n), count: n)         // (n, n)
        for width in 2..<n {
            for i in 0..<(n - width) {
                let j = i + width
                best[i][j] = -1
                for k in (i + 1)..<j {
                    let total = best[i][k] + best[k][j] + area(loop[i], loop[k], loop[j])
                    // a strict margin keeps the first of equal splits (planar polygons): any of them has the same area
                    if total > best[i][j] + 1e-12 { best[i][j] = total; apex[i][j] = k }
                }
            }
        }
        var out: [(Int, Int, Int)] = []
        func collect(_ i: Int, _ j: Int) {
            guard j - i >= 2 else { return }
            let k = apex[i][j]
            out.append((i, k, j)); collect(i, k); collect(k, j)
        }
        collect(0, n - 1)
        return out
    }

    /// The 48 symmetries of the cube as maps of corner indices: an axis permutation, then a reflection per axis.
    static let symmetries: [[Int]] = {
        let permutations = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
        var out: [[Int]] = []
        for perm in permutations {
            for flips in 0..<8 {
                out.append((0..<8).map { k in
                    let c = corner(k), src = [c.0, c.1, c.2]
                    let d = (0..<3).map { src[perm[$0]] ^ ((flips >> (2 - $0)) & 1) }
                    return 4 * d[0] + 2 * d[1] + d[2]
                })
            }
        }
        return out
    }()

    /// The neighbour code of a set of inside corners.
    static func code(_ inside: [Int]) -> Int { inside.reduce(0) { $0 | 1 << (7 - $1) } }

    static func generateTriangulations() -> (triangles: [[(Edge, Edge, Edge)]], baseCase: [Int]) {
        var table = [[(Edge, Edge, Edge)]?](repeating: nil, count: 256)
        var baseCase = [Int](repeating: -1, count: 256)
        for (number, inside) in baseCases.enumerated() {
            var tris: [(Edge, Edge, Edge)] = []
            for loop in contours(inside: Set(inside)) {
                for (i, j, k) in largestSplit(loop.map(midpoint)) { tris.append((loop[i], loop[j], loop[k])) }
            }
            for map in symmetries {
                let moved = inside.map { map[$0] }
                let mapped = tris.map { t in
                    (Edge(map[t.0.u], map[t.0.v]), Edge(map[t.1.u], map[t.1.v]), Edge(map[t.2.u], map[t.2.v]))
                }
                for c in [code(moved), 255 - code(moved)] where table[c] == nil {
                    table[c] = mapped; baseCase[c] = number
                }
            }
        }
        precondition(table.allSatisfy { $0 != nil }, "the base configurations do not reach every neighbour code")
        return (table.map { $0! }, baseCase)
    }

    static func generateTriangles() -> [[(Point3, Point3, Point3)]] {
        generateTriangulations().triangles.map { $0.map { (midpoint($0.0), midpoint($0.1), midpoint($0.2)) } }
    }
}
