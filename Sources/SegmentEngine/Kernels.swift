// Swift faces of the C kernels (SegmentKernels): LayerNorm rows, packed weights and the GEMM wrapper. Their naive
// twins are in SegmentKernels and Tests/NaiveEngine; Tests/SegmentEngineTests/KernelTests.swift checks each pair.
import SegmentKernels

// MARK: rows

/// LayerNorm of `rows` rows of C values (biased variance, eps 1e-5, affine), x (row stride ldx) -> y (row stride
/// ldy); the same bits as seg_layernorm_row on each row. y may alias x (ldy == ldx).
@inline(__always)
func layerNorm(rows: Int, _ x: UnsafePointer<Float>, ldx: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int, _ C: Int,
               _ gamma: UnsafePointer<Float>, _ beta: UnsafePointer<Float>) {
    seg_layernorm_rows(x, Int32(ldx), y, Int32(ldy), Int32(rows), Int32(C), gamma, beta)
}

/// LayerNorm of rows gathered through a table: row r of y (row stride ldy) = LayerNorm(row `xRows[r]` of x (row
/// stride ldx)); the same bits as `layerNorm` on the same values.
@inline(__always)
func layerNorm(rows: Int, _ x: UnsafePointer<Float>, ldx: Int, xRows: UnsafePointer<Int32>, _ y: UnsafeMutablePointer<Float>,
               ldy: Int, _ C: Int, _ gamma: UnsafePointer<Float>, _ beta: UnsafePointer<Float>) {
    seg_layernorm_rows_gather(x, Int32(ldx), xRows, y, Int32(ldy), Int32(rows), Int32(C), gamma, beta)
}


// MARK: GEMM

/// A Linear weight W (N, K) (PyTorch's (out, in)) packed once, at load, for segment's own GEMM
/// (Sources/SegmentKernels): panels of 32 output columns stored k-major, so no GEMM call ever repacks a weight.
package struct PackedWeight {
    /// seg_packed_floats(N, K) floats: ceil(N/32) panels of [K, 32]; nil for a weight packed in bf16 only.
    package let data: UnsafePointer<Float>?
    package let N: Int                       // output features
    package let K: Int                       // input features
    /// The bf16 form, seg_packed_bf16_elems(N, K) elements: ceil(N/32) panels of [ceil32(K)/2, 32, 2], when the
    /// engine runs in bf16 (`Precision.bf16`); `linear` then multiplies with it.
    package let bf16: UnsafePointer<UInt16>?

    static func floats(N: Int, K: Int) -> Int { seg_packed_floats(Int32(N), Int32(K)) }

    /// Packs `w` (N, K) row-major into `into` (PackedWeight.floats(N:K:) floats).
    init(packing w: UnsafePointer<Float>, N: Int, K: Int, into: UnsafeMutablePointer<Float>) {
        seg_pack_nt(w, Int32(N), Int32(K), Int32(K), into)
        (data, bf16, self.N, self.K) = (UnsafePointer(into), nil, N, K)
    }

    static func bf16Elements(N: Int, K: Int) -> Int { seg_packed_bf16_elems(Int32(N), Int32(K)) }

    /// Packs `w` (N, K) row-major, rounded to bf16 (nearest even), into `into` (PackedWeight.bf16Elements(N:K:)
    /// elements); the weight then has no fp32 form.
    init(packingBF16 w: UnsafePointer<Float>, N: Int, K: Int, into: UnsafeMutablePointer<UInt16>) {
        seg_pack_nt_bf16(w, Int32(N), Int32(K), Int32(K), into)
        (data, bf16, self.N, self.K) = (nil, UnsafePointer(into), N, K)
    }
}

/// Runs of column pairs per thread when a GEMM's columns are shared out (small M: the 14x14 and 7x7 stages at
/// batch 1). Finer runs cost next to nothing here (every pair reads the same rows of x from L2 whichever run it is
/// in; a run costs one atomic increment), and let a thread whose vCPU is running slowly take fewer of them: with
/// 2 runs per thread, a thread at half speed can make the other wait for up to a third of the GEMM.
let columnPartsPerThread = 8

/// What a linear layer does to its output columns after the product.
enum Epilogue {
    case none
    case bias(UnsafePointer<Float>)
    case biasGELU(UnsafePointer<Float>)
}

/// out (M, N; row stride ldo) = (accumulate ? out : 0) + x (M, K; row stride ldx) · W[:, k0 ..< k0+K]^T, then the
/// epilogue (bias, GELU) applied in the GEMM's registers. K defaults to all of W's input features. With `outRows`,
/// row i of the product is row outRows[i] of out (a window tile accumulating onto its tokens in the map). With
/// `pool`, the N columns are shared out to its threads in pairs of 32-column panels (for small M, where splitting
/// rows would leave too few per thread); the result is bit-identical for any split.
func linear(_ x: UnsafePointer<Float>, ldx: Int, M: Int, K: Int? = nil, k0: Int = 0, _ W: PackedWeight,
            _ out: UnsafeMutablePointer<Float>, ldo: Int, outRows: UnsafePointer<Int32>? = nil, accumulate: Bool = false,
            _ epilogue: Epilogue, pool: WorkerPool? = nil) {
    guard M > 0 else { return }
    let K = K ?? W.K, N = W.N
    let bias: UnsafePointer<Float>?, gelu: Int32
    switch epilogue {
    case .none: (bias, gelu) = (nil, 0)
    case .bias(let b): (bias, gelu) = (b, 0)
    case .biasGELU(let b): (bias, gelu) = (b, 1)
    }
    func columns(_ n0: Int, _ n1: Int) {
        if let b = W.bf16 {
            seg_gemm_bf16_rows(Int32(M), Int32(n0), Int32(n1), Int32(K), x, Int32(ldx), b, Int32(W.K), Int32(k0),
                               out, Int32(ldo), outRows, bias, accumulate ? 1 : 0, gelu)
            return
        }
        seg_gemm_packed_rows(Int32(M), Int32(n0), Int32(n1), Int32(K), x, Int32(ldx), W.data!, Int32(W.K), Int32(k0),
                             out, Int32(ldo), outRows, bias, accumulate ? 1 : 0, gelu)
    }
    if let pool, pool.threads > 1, N >= 32 * pool.threads {
        // Contiguous runs of the AVX-512 kernel's two-panel tiles, up to columnPartsPerThread runs per thread, taken
        // as threads free up.
        let pairs = (N + 63) / 64, parts = min(pairs, columnPartsPerThread * pool.threads)
        pool.dynamic(parts) { c, _ in columns(pairs * c / parts * 64, min(N, pairs * (c + 1) / parts * 64)) }
    } else {
        columns(0, N)
    }
}
