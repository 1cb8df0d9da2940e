// Fast elementwise kernels (8 lanes at a time) and the GEMM wrapper. Their naive twins are in Reference.swift and
// Tests/SegmentEngineTests/KernelTests.swift checks each pair.
import SegmentKernels

typealias F8 = SIMD8<Float>
typealias I8 = SIMD8<Int32>

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> F8 { UnsafeRawPointer(p).loadUnaligned(as: F8.self) }
@inline(__always) func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self) }
// Lane-wise max / min as compare + select (the standard library's pointwiseMax/Min are not inlined).
@inline(__always) func max8(_ a: F8, _ b: F8) -> F8 { a.replacing(with: b, where: b .> a) }
@inline(__always) func min8(_ a: F8, _ b: F8) -> F8 { a.replacing(with: b, where: b .< a) }

// MARK: exp

/// e^x to about 1 ulp for x in [-87, 88] (inputs outside are clamped; e^-87 stands in for the float underflow).
@inline(__always) func fastExp(_ x: F8) -> F8 {
    expCore(min8(max8(x, F8(repeating: -87)), F8(repeating: 88)))
}

/// e^x for x already in [-87, 88]: range reduction x = n ln2 + r, |r| <= ln2/2, with ln2 split in a high part
/// exact in float and a low part; e^r by its Taylor polynomial to degree 7 (truncation error < 5e-9 relative),
/// evaluated by Estrin's scheme (short dependency chains: this runs on every attention score and MLP unit);
/// 2^n built in the exponent bits.
@inline(__always) func expCore(_ x: F8) -> F8 {
    let magic: Float = 12582912                          // 1.5 * 2^23: adding it rounds to an integer
    let t = x * 1.44269504088896341 + magic
    let n = t - magic
    let r = x - n * 0.693145751953125 - n * 1.42860676533018704e-6
    let r2 = r * r, r4 = r2 * r2
    let p01 = 1 + r, p23 = 0.5 + r * (1.0 / 6), p45 = 1.0 / 24 + r * (1.0 / 120), p67 = 1.0 / 720 + r * (1.0 / 5040)
    let p = (p01 + r2 * p23) + r4 * (p45 + r2 * p67)
    let bits = (unsafeBitCast(t, to: I8.self) &- unsafeBitCast(F8(repeating: magic), to: I8.self) &+ 127) &<< 23
    return p * unsafeBitCast(bits, to: F8.self)
}

// MARK: rows

/// y = LayerNorm(x) over one row of C values (biased variance, eps 1e-5, affine); y may alias x. In C
/// (SegmentKernels) for its AVX-512 path.
@inline(__always)
func layerNormRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ C: Int,
                  _ gamma: UnsafePointer<Float>, _ beta: UnsafePointer<Float>) {
    seg_layernorm_row(x, y, Int32(C), gamma, beta)
}

/// LayerNorm of `rows` rows of C values, x (row stride ldx) -> y (row stride ldy); the same bits as layerNormRow
/// on each row. y may alias x (ldy == ldx).
@inline(__always)
func layerNorm(rows: Int, _ x: UnsafePointer<Float>, ldx: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int, _ C: Int,
               _ gamma: UnsafePointer<Float>, _ beta: UnsafePointer<Float>) {
    seg_layernorm_rows(x, Int32(ldx), y, Int32(ldy), Int32(rows), Int32(C), gamma, beta)
}

/// In place: s = softmax(s) over n values.
@inline(__always)
func softmaxRow(_ s: UnsafeMutablePointer<Float>, _ n: Int) {
    var m: Float = -.infinity
    for c in 0..<n { m = max(m, s[c]) }
    softmaxTail(s, n, m)
}

/// Below this, exp(s - m) is taken as 0: e^-80 / n stays a normal float for any row length n < 2^20, so no
/// subnormal probability ever reaches the P @ V product (subnormal arithmetic is ~100x slower on x86). The sum
/// changes by less than n * e^-80 relative.
let softmaxCutoff: Float = -80

/// s = exp(s - m) / sum, m being the row maximum. The tail shorter than 8 goes through a padded lane vector so
/// every value sees the same exp.
@inline(__always)
private func softmaxTail(_ s: UnsafeMutablePointer<Float>, _ n: Int, _ m: Float) {
    let n8 = n & ~7
    var sum8 = F8()
    var c = 0
    while c < n8 {
        let d = load8(s + c) - m
        let e = fastExp(d).replacing(with: 0, where: d .< softmaxCutoff)
        store8(e, s + c); sum8 += e; c += 8
    }
    var tail = F8(repeating: -.infinity)
    for i in 0..<(n - n8) { tail[i] = s[n8 + i] - m }
    let et = fastExp(tail).replacing(with: 0, where: tail .< softmaxCutoff)
    for i in 0..<(n - n8) { s[n8 + i] = et[i] }
    let inv = 1 / (sum8.sum() + et.sum())
    c = 0
    while c < n8 { store8(load8(s + c) * inv, s + c); c += 8 }
    while c < n { s[c] *= inv; c += 1 }
}


// MARK: GEMM

/// A Linear weight W (N, K) (PyTorch's (out, in)) packed once, at load, for segment's own GEMM
/// (Sources/SegmentKernels): panels of 32 output columns stored k-major, so no GEMM call ever repacks a weight.
struct PackedWeight {
    let data: UnsafePointer<Float>   // seg_packed_floats(N, K) floats: ceil(N/32) panels of (K, 32)
    let N: Int                       // output features
    let K: Int                       // input features

    static func floats(N: Int, K: Int) -> Int { seg_packed_floats(Int32(N), Int32(K)) }

    /// Packs `w` (N, K) row-major into `into` (PackedWeight.floats(N:K:) floats).
    init(packing w: UnsafePointer<Float>, N: Int, K: Int, into: UnsafeMutablePointer<Float>) {
        seg_pack_nt(w, Int32(N), Int32(K), Int32(K), into)
        (data, self.N, self.K) = (UnsafePointer(into), N, K)
    }

    /// W (N, K) row-major again (for the naive references).
    func unpacked() -> [Float] {
        var w = [Float](repeating: 0, count: N * K)
        let nr = Int(SEG_NR)
        for n in 0..<N { for k in 0..<K { w[n * K + k] = data[(n / nr) * nr * K + k * nr + n % nr] } }
        return w
    }
}

/// What a linear layer does to its output columns after the product.
enum Epilogue {
    case none
    case bias(UnsafePointer<Float>)
    case biasGELU(UnsafePointer<Float>)
}

/// out (M, N; row stride ldo) = (accumulate ? out : 0) + x (M, K; row stride ldx) · W[:, k0 ..< k0+K]^T, then the
/// epilogue (bias, GELU) applied in the GEMM's registers. K defaults to all of W's input features. With
/// `pool`, the N columns are split over its threads in whole 32-column panels (for small M, where splitting rows
/// would leave too few per thread); the result is bit-identical for any split.
func linear(_ x: UnsafePointer<Float>, ldx: Int, M: Int, K: Int? = nil, k0: Int = 0, _ W: PackedWeight,
            _ out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool = false, _ epilogue: Epilogue, pool: WorkerPool? = nil) {
    guard M > 0 else { return }
    let K = K ?? W.K, N = W.N
    let bias: UnsafePointer<Float>?, gelu: Int32
    switch epilogue {
    case .none: (bias, gelu) = (nil, 0)
    case .bias(let b): (bias, gelu) = (b, 0)
    case .biasGELU(let b): (bias, gelu) = (b, 1)
    }
    func columns(_ n0: Int, _ n1: Int) {
        seg_gemm_packed(Int32(M), Int32(n0), Int32(n1), Int32(K), x, Int32(ldx), W.data, Int32(W.K), Int32(k0),
                        out, Int32(ldo), bias, accumulate ? 1 : 0, gelu)
    }
    if let pool, pool.threads > 1, N >= 32 * pool.threads {
        let panels = (N + 31) / 32
        pool.parallelRanges(panels) { range, _ in columns(range.lowerBound * 32, min(N, range.upperBound * 32)) }
    } else {
        columns(0, N)
    }
}
