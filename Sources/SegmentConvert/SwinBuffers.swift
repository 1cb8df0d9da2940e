// The two Swin buffers a checkpoint carries that are pure functions of the geometry (swin-unet.md), recomputed
// here to check the checkpoint's copies, and the two offline rewrites of the model file (dense bias, q scale).
import Foundation
import SegmentFormat

enum SwinBuffers {
    /// relative_position_index (N, N), N = ws*ws: for window tokens i = (yi, xi) and j = (yj, xj) (row-major),
    /// (yi - yj + ws - 1) * (2ws - 1) + (xi - xj + ws - 1), an index into the (2ws-1)^2 bias table.
    static func relativePositionIndex(window ws: Int) -> [Int64] {
        let N = ws * ws
        var index = [Int64](repeating: 0, count: N * N)     // (N, N)
        for i in 0..<N {
            for j in 0..<N {
                let dy = i / ws - j / ws + ws - 1, dx = i % ws - j % ws + ws - 1
                index[i * N + j] = Int64(dy * (2 * ws - 1) + dx)
            }
        }
        return index
    }

    /// attn_mask (nW, N, N) of a shifted block on a res x res grid: label each position by its region among the
    /// 3 x 3 cut by the slices [0, res-ws), [res-ws, res-shift), [res-shift, res) on each axis; then in window w
    /// (row-major over the grid of windows), mask[w, i, j] = -100 where tokens i and j have different labels, else 0.
    static func attentionMask(resolution res: Int, window ws: Int, shift: Int) -> [Float] {
        func region(_ y: Int) -> Int { y < res - ws ? 0 : (y < res - shift ? 1 : 2) }
        let perSide = res / ws, nW = perSide * perSide, N = ws * ws
        var mask = [Float](repeating: 0, count: nW * N * N)   // (nW, N, N)
        for w in 0..<nW {
            let labels = (0..<N).map { t in
                3 * region((w / perSide) * ws + t / ws) + region((w % perSide) * ws + t % ws)
            }
            for i in 0..<N { for j in 0..<N where labels[i] != labels[j] { mask[(w * N + i) * N + j] = -100 } }
        }
        return mask
    }

    /// The dense bias (heads, N, N) from table ((2ws-1)^2, heads) and index (N, N): bias[h, i, j] = table[index[i, j], h].
    static func denseBias(table: [Float], heads: Int, index: [Int64]) -> [Float] {
        let NN = index.count
        var bias = [Float](repeating: 0, count: heads * NN)   // (heads, N, N)
        for h in 0..<heads { for p in 0..<NN { bias[h * NN + p] = table[Int(index[p]) * heads + h] } }
        return bias
    }

    /// head_dim^-0.5 in float32, computed as Python's `head_dim ** -0.5` then narrowed.
    static func qScale(headDim: Int) -> Float { Float(pow(Double(headDim), -0.5)) }

    /// Multiplies the q part (the first C of 3C rows, `rowLength` values per row: C for the weight, 1 for the bias)
    /// by `scale`, in float32.
    static func scaleQ(_ values: inout [Float], channels C: Int, rowLength: Int, scale: Float) {
        for k in 0..<(C * rowLength) { values[k] *= scale }
    }
}
