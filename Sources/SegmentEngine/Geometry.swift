// Index arithmetic of shifted windows: where the r-th token of the window-ordered layout lives in the (B, H*W, C)
// token map, and the attention mask of shifted blocks. The fused block addresses its tokens through `token(row:)`
// instead of rolling and partitioning copies of the map.
import SegmentFormat

struct WindowLayout {
    let R: Int        // token grid side
    let ws: Int       // window side
    let shift: Int    // cyclic shift s (the map is rolled by -s before partitioning, +s after reversing)
    var N: Int { ws * ws }                    // tokens per window
    var perSide: Int { R / ws }               // windows per grid side
    var windows: Int { perSide * perSide }    // nW, windows per image

    init(_ g: StageGeometry, shift: Int) { R = g.resolution; ws = g.window; self.shift = shift }

    /// Token index (b*R*R + y*R + x) of row `row` of the window-ordered layout (B*nW windows of N tokens,
    /// windows row-major per image, tokens row-major per window), the map being rolled by -shift.
    /// Rolling back by +shift after the window reverse sends the row to the same token, so gather and scatter agree.
    @inline(__always) func token(row: Int) -> Int {
        let wg = row / N, i = row - wg * N
        let b = wg / windows, w = wg - b * windows
        let wy = w / perSide, wx = w - wy * perSide
        let iy = i / ws, ix = i - iy * ws
        var y = wy * ws + iy + shift, x = wx * ws + ix + shift
        if y >= R { y -= R }
        if x >= R { x -= R }
        return (b * R + y) * R + x
    }

    /// Region label (0...8) of a position of the rolled map: the 3 x 3 regions cut by the slices
    /// (0, -ws), (-ws, -shift), (-shift, end) on each axis, as the reference builds its mask image.
    func region(y: Int, x: Int) -> Int {
        func band(_ c: Int) -> Int { c < R - ws ? 0 : (c < R - shift ? 1 : 2) }
        return band(y) * 3 + band(x)
    }

    /// The additive attention mask of a shifted block, (nW, N, N): -100 between tokens of different regions,
    /// 0 otherwise; and which windows have any -100 (the others skip the add).
    func shiftedMask() -> (mask: [Float], masked: [Bool]) {
        var mask = [Float](repeating: 0, count: windows * N * N)
        var masked = [Bool](repeating: false, count: windows)
        for w in 0..<windows {
            let wy = w / perSide, wx = w % perSide
            let labels = (0..<N).map { region(y: wy * ws + $0 / ws, x: wx * ws + $0 % ws) }
            for i in 0..<N { for j in 0..<N where labels[i] != labels[j] { mask[(w * N + i) * N + j] = -100; masked[w] = true } }
        }
        return (mask, masked)
    }
}
