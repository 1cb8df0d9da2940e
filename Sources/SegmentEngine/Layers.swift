// The modules of the Swin-UNet forward, named as segment_torch's (trainer/segment_torch/model.py): each holds its
// weights (pointers into the engine's arena) and its shape, and its `callAsFunction` runs it fused on a whole batch.
// Activations are token maps [B, L, C] row-major (L = R*R tokens, row-major over the grid), as PyTorch's. Each
// module splits its rows over the pass's threads; a thread works on row tiles held in its own scratch
// (cache-resident), calls the single-threaded C kernels, and writes its own output rows, so no two threads ever write
// the same memory. Naive twins: Tests/NaiveEngine/NaiveTwins.swift.
import SegmentFormat
import SegmentKernels

/// What every module of one forward pass shares: the batch, the threads and their scratch.
package struct Pass {
    let batch: Int            // B: slices in this pass
    let pool: WorkerPool      // the threads doing work, the caller included
    let scratch: Scratch      // one region per thread
    /// Rows per thread from which a Swin block splits its windows over the threads (see `SwinTransformerBlock`).
    var blockSplitRows = minRowsPerThread
}

/// Per-thread scratch memory, allocated once by the engine: `threads` disjoint regions of `perThread` floats, each
/// the attention work memory (`scoreFloats`: (N, N) scores and the packed k and v of one head, fp32 or bf16)
/// followed by the tile memory of the modules.
struct Scratch {
    let base: UnsafeMutablePointer<Float>
    let perThread: Int
    let scoreFloats: Int
    @inline(__always) func scores(_ slot: Int) -> UnsafeMutablePointer<Float> { base + slot * perThread }
    @inline(__always) func tile(_ slot: Int) -> UnsafeMutablePointer<Float> { base + slot * perThread + scoreFloats }
}

/// Pointers into the engine's weight arena for one Swin block (PyTorch Linear weights are (out, in)).
package struct BlockWeights {
    package let norm1W, norm1B: UnsafePointer<Float>     // [C]
    package let bias: UnsafePointer<Float>               // [heads, N, N] relative position bias, gathered dense
    package let qkvW: PackedWeight, qkvB: UnsafePointer<Float>     // [3C, C], [3C]; q rows pre-scaled by head_dim^-0.5
    package let projW: PackedWeight, projB: UnsafePointer<Float>   // [C, C], [C]
    package let norm2W, norm2B: UnsafePointer<Float>     // [C]
    package let fc1W: PackedWeight, fc1B: UnsafePointer<Float>     // [hidden, C], [hidden]
    package let fc2W: PackedWeight, fc2B: UnsafePointer<Float>     // [C, hidden], [C]
}

/// Rows per tile of the row-parallel modules, and the fewest rows per thread worth a split by rows.
let rowTile = 256
let minRowsPerThread = 64
/// Whole windows per group (tile) of the fused block: about 256 rows, whatever the stage width (the weights are
/// packed once at load, so a tile's GEMMs cost no repacking; smaller tiles keep the block's activations in L2).
func groupWindows(_ g: StageGeometry) -> Int {
    max(1, 256 / g.tokensPerWindow)
}

// A Swin block splits its windows over the threads when every thread gets at least `blockSplitRows` rows (by
// default `minRowsPerThread`): at batch 1 and 2 threads the 14x14 stage, 2 windows of 49 tokens per thread. Below,
// it runs all its windows as one tile whose GEMMs split their columns (the 7x7 stage at batch 1). At the 14x14 stage
// the window split is the faster of the two (`make batch1-bench`, docs/perf-engine.md): each thread streams all of
// the block's 7 MB of weights for its 98 rows, but the block hands over once instead of five times.
/// Floats reserved at the start of a block tile for its table of n row indices (Int32), rounded to whole 64-byte lines.
func blockRowTableFloats(_ n: Int) -> Int { (n + 15) & ~15 }

/// Floats of a block tile of n rows at width C: the row table, the LN / context rows, the qkv / hidden rows.
func blockTileFloats(rows n: Int, dim C: Int, hidden: Int) -> Int {
    blockRowTableFloats(n) + n * C + n * max(3 * C, hidden)
}

/// Rows of the largest tile `SwinTransformerBlock` uses for up to `maxBatch` images of stage `g` on `threads` threads.
func maxBlockRows(_ g: StageGeometry, maxBatch: Int, threads: Int, splitRows: Int = minRowsPerThread) -> Int {
    let N = g.tokensPerWindow
    return (1...maxBatch).map { b -> Int in
        let windows = b * g.windowsPerImage
        return threads > 1 && windows * N < threads * splitRows ? windows * N : min(groupWindows(g), windows) * N
    }.max()!
}

/// `count` items cut into as few near-equal parts of at most `most` items as give every thread the same number
/// of parts (so the parts balance on a quiet machine, and the work queue rebalances them on a busy one); part i
/// is items count*i/parts ..< count*(i+1)/parts.
func balancedParts(_ count: Int, most: Int, threads: Int) -> Int {
    let parts = (count + most - 1) / most
    return min(count, (parts + threads - 1) / threads * threads)
}

/// Runs `body(r0, n, slot, inner)` over rows 0..<M in balanced tiles of at most `tile` rows, each taken by the
/// next free thread. If M cannot give every thread `minRowsPerThread` rows, one tile on the caller instead, with
/// `inner` = the pool so its GEMMs split their columns.
func forRowTiles(_ M: Int, tile: Int, pool: WorkerPool, _ body: (Int, Int, Int, WorkerPool?) -> Void) {
    if pool.threads > 1 && M < pool.threads * minRowsPerThread {
        body(0, M, 0, pool)
        return
    }
    let parts = balancedParts(M, most: tile, threads: pool.threads)
    pool.dynamic(parts) { t, slot in
        let r0 = M * t / parts, r1 = M * (t + 1) / parts
        body(r0, r1 - r0, slot, nil)
    }
}

/// Largest tile forRowTiles hands out for M rows at most.
func maxRowTile(_ tile: Int, threads: Int) -> Int { max(tile, threads * minRowsPerThread) }


// MARK: LayerNorm

/// nn.LayerNorm(C): weight and bias [C] (biased variance, eps 1e-5).
package struct LayerNorm {
    let dim: Int                                  // C
    let weight, bias: UnsafePointer<Float>        // [C]

    /// In place over `rows` rows of C values, split over the pass's threads.
    package func callAsFunction(_ x: UnsafeMutablePointer<Float>, rows M: Int, _ pass: Pass) {
        let C = dim
        pass.pool.parallelRanges(M) { range, _ in
            layerNorm(rows: range.count, x + range.lowerBound * C, ldx: C, x + range.lowerBound * C, ldy: C, C, weight, bias)
        }
    }
}

// MARK: patch embedding

/// PatchEmbed: Conv2d(inChans, E, k=P, s=P) as im2col gather + GEMM + bias, then LayerNorm(E).
package struct PatchEmbed {
    let inChans: Int                              // Cin
    let patchSize: Int                            // P
    let imgSize: Int                              // H = W
    let proj: PackedWeight                        // [E, Cin*P*P]: the conv weight [E, Cin, P, P] as a GEMM weight
    let projBias: UnsafePointer<Float>            // [E]
    let norm: LayerNorm                           // E

    /// x [B, channels, H, W] -> out [B, (H/P)^2, E]. A 1-channel input feeds all inChans (the reference repeats it).
    package func callAsFunction(_ x: UnsafePointer<Float>, channels: Int, into out: UnsafeMutablePointer<Float>,
                                _ pass: Pass) {
        let P = patchSize, H = imgSize, R = H / P, E = proj.N, Cin = inChans
        let K = Cin * P * P
        let scratch = pass.scratch
        forRowTiles(pass.batch * R * R, tile: rowTile, pool: pass.pool) { r0, n, slot, inner in
            let patches = scratch.tile(slot)              // [n, K], K ordered (ci, ky, kx) as the conv weight
            for r in 0..<n {
                let t = r0 + r, bi = t / (R * R), py = (t % (R * R)) / R, px = t % R
                for ci in 0..<Cin {
                    let plane = x + (bi * channels + (channels == 1 ? 0 : ci)) * H * H
                    for ky in 0..<P {
                        let src = plane + (py * P + ky) * H + px * P
                        let dst = patches + r * K + (ci * P + ky) * P
                        for kx in 0..<P { dst[kx] = src[kx] }
                    }
                }
            }
            linear(patches, ldx: K, M: n, proj, out + r0 * E, ldo: E, .bias(projBias), pool: inner)
            layerNorm(rows: n, out + r0 * E, ldx: E, out + r0 * E, ldy: E, E, norm.weight, norm.bias)
        }
    }
}

// MARK: Swin block

/// SwinTransformerBlock: window attention (shifted when `shift` > 0) and the MLP, each with LayerNorm before and
/// the residual after.
package struct SwinTransformerBlock {
    let geometry: StageGeometry                   // of its stage: R, C, heads, ws
    let shift: Int                                // s: 0, or the stage's shift on odd blocks
    let hidden: Int                               // MLP width
    let w: BlockWeights
    let mask: UnsafePointer<Float>?               // [nW, N, N] when shift > 0: -100 between regions, else 0
    let masked: [Bool]                            // [nW]: does window w's mask hold any -100

    /// x [B, R*R, C] -> out [B, R*R, C] (out may be x), fused per group of whole windows, in place on out's rows:
    /// the tile's tokens are addressed through the shifted-window index map (a table of their rows), never copied
    /// out and back. LN1 of those rows -> QKV GEMM -> per window and head q k^T + bias (+ mask) -> softmax -> @ v ->
    /// proj GEMM accumulated onto the rows (the shortcut) -> LN2 -> fc1 GEMM + GELU -> fc2 GEMM accumulated onto the
    /// rows. A window's tokens are read and written by one thread only (each token belongs to exactly one window),
    /// so no two threads touch the same row.
    package func callAsFunction(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ pass: Pass) {
        let src = x, dst = out, g = geometry, w = self.w, mask = self.mask, masked = self.masked, hidden = self.hidden
        let pool = pass.pool, scratch = pass.scratch
        let lay = WindowLayout(g, shift: shift)
        let N = lay.N, C = g.dim, heads = g.heads, d = g.headDim, nW = lay.windows
        let windowsTotal = pass.batch * nW
        let perGroup = groupWindows(g)

        // Windows w0..<w1 (global indices over the batch) as one tile of n = (w1-w0)*N rows.
        func group(_ w0: Int, _ w1: Int, _ slot: Int, _ inner: WorkerPool?) {
            let n = (w1 - w0) * N
            // [n] the token of each row: the tile's first floats, rebound to Int32 (the same size) for this group only
            scratch.tile(slot).withMemoryRebound(to: Int32.self, capacity: n) { rows in
                groupRows(w0, n, rows, slot, inner)
            }
        }
        func groupRows(_ w0: Int, _ n: Int, _ rows: UnsafeMutablePointer<Int32>, _ slot: Int, _ inner: WorkerPool?) {
            let xn = scratch.tile(slot) + blockRowTableFloats(n)   // [n, C]   LN output, then attention context
            let big = xn + n * C                          // [n, max(3C, hidden)]  qkv, then the MLP hidden layer
            for r in 0..<n { rows[r] = Int32(lay.token(row: w0 * N + r)) }
            if src != UnsafePointer(dst) {                // the first block of a stage: its tokens start as src's
                for r in 0..<n { let t = Int(rows[r]) * C; (dst + t).update(from: src + t, count: C) }
            }
            layerNorm(rows: n, dst, ldx: C, xRows: rows, xn, ldy: C, C, w.norm1W, w.norm1B)
            linear(xn, ldx: C, M: n, w.qkvW, big, ldo: 3 * C, .bias(w.qkvB), pool: inner)
            // Attention: (window, head) pairs; q, k, v of head h are columns h*d, C + h*d, 2C + h*d of the qkv tile.
            func attention(_ pair: Int, _ work: UnsafeMutablePointer<Float>) {    // work: seg_attention_work_floats(N, d)
                let wl = pair / heads, h = pair % heads
                let q = big + wl * N * 3 * C + h * d
                let wImage = (w0 + wl) % nW
                let m: UnsafePointer<Float>? = (mask != nil && masked[wImage]) ? mask! + wImage * N * N : nil
                if w.qkvW.bf16 != nil {                   // a bf16 engine: both products in bf16 too
                    seg_window_attention_bf16(Int32(N), Int32(d), q, q + C, q + 2 * C, Int32(3 * C), w.bias + h * N * N,
                                              m, xn + wl * N * C + h * d, Int32(C), work)
                } else {
                    seg_window_attention(Int32(N), Int32(d), q, q + C, q + 2 * C, Int32(3 * C), w.bias + h * N * N, m,
                                         xn + wl * N * C + h * d, Int32(C), work)
                }
            }
            let pairs = n / N * heads                     // (window, head) pairs of the tile
            if let inner {
                inner.dynamic(pairs) { p, s in attention(p, scratch.scores(s)) }
            } else {
                for p in 0..<pairs { attention(p, scratch.scores(slot)) }
            }
            linear(xn, ldx: C, M: n, w.projW, dst, ldo: C, outRows: rows, accumulate: true, .bias(w.projB), pool: inner)
            layerNorm(rows: n, dst, ldx: C, xRows: rows, xn, ldy: C, C, w.norm2W, w.norm2B)
            linear(xn, ldx: C, M: n, w.fc1W, big, ldo: hidden, .biasGELU(w.fc1B), pool: inner)
            linear(big, ldx: hidden, M: n, w.fc2W, dst, ldo: C, outRows: rows, accumulate: true, .bias(w.fc2B), pool: inner)
        }

        if pool.threads > 1 && windowsTotal * N < pool.threads * pass.blockSplitRows {
            group(0, windowsTotal, 0, pool)               // too few rows to share: split each GEMM's columns instead
        } else {
            let parts = balancedParts(windowsTotal, most: perGroup, threads: pool.threads)
            pool.dynamic(parts) { g, slot in
                group(windowsTotal * g / parts, windowsTotal * (g + 1) / parts, slot, nil)
            }
        }
    }
}

/// The blocks of a stage in order, x -> out (out may be x; every block after the first works in place on out),
/// as segment_torch's `_run_stage`.
private func runBlocks(_ blocks: [SwinTransformerBlock], _ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                       _ pass: Pass) {
    var x = x
    for block in blocks {
        block(x, into: out, pass)
        x = UnsafePointer(out)
    }
}

/// BasicLayer: an encoder stage, `depth` blocks then (but for the last stage) PatchMerging, which the forward calls.
package struct BasicLayer {
    let blocks: [SwinTransformerBlock]
    package let downsample: PatchMerging?

    /// The blocks: x [B, R*R, C] -> out [B, R*R, C].
    package func callAsFunction(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ pass: Pass) {
        runBlocks(blocks, x, into: out, pass)
    }
}

/// BasicLayerUp: a decoder stage, `depth` blocks then (but for the last stage) PatchExpand, which the forward calls.
package struct BasicLayerUp {
    let blocks: [SwinTransformerBlock]
    package let upsample: PatchExpand?

    /// The blocks: x [B, R*R, C] -> out [B, R*R, C].
    package func callAsFunction(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ pass: Pass) {
        runBlocks(blocks, x, into: out, pass)
    }
}

// MARK: resampling

/// PatchMerging(C): gathers the 2x2 neighbours of each output token in the order [(2y,2x), (2y+1,2x), (2y,2x+1),
/// (2y+1,2x+1)] into 4C channels, LayerNorm(4C), Linear(4C -> 2C, no bias).
package struct PatchMerging {
    let resolution: Int                           // R of its input
    let dim: Int                                  // C of its input
    let norm: LayerNorm                           // 4C
    let reduction: PackedWeight                   // [2C, 4C]

    /// x [B, R*R, C] -> out [B, (R/2)^2, 2C].
    package func callAsFunction(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ pass: Pass) {
        let R = resolution, C = dim, Ro = R / 2, scratch = pass.scratch
        forRowTiles(pass.batch * Ro * Ro, tile: rowTile, pool: pass.pool) { r0, n, slot, inner in
            let cat = scratch.tile(slot)                  // [n, 4C]
            for r in 0..<n {
                let t = r0 + r, b = t / (Ro * Ro), y = (t % (Ro * Ro)) / Ro, xo = t % Ro
                for part in 0..<4 {                       // part = dx*2 + dy
                    let dy = part & 1, dx = part >> 1
                    let s = x + ((b * R + 2 * y + dy) * R + 2 * xo + dx) * C
                    (cat + r * 4 * C + part * C).update(from: s, count: C)
                }
            }
            layerNorm(rows: n, cat, ldx: 4 * C, cat, ldy: 4 * C, 4 * C, norm.weight, norm.bias)
            linear(cat, ldx: 4 * C, M: n, reduction, out + r0 * 2 * C, ldo: 2 * C, .none, pool: inner)
        }
    }
}

/// PatchExpand(C): Linear(C -> 2C, no bias), then output token (2y+p1, 2x+p2) takes channels
/// (p1*2 + p2)*C/2 ..< +C/2 of input token (y, x), LayerNorm(C/2).
package struct PatchExpand {
    let resolution: Int                           // R of its input
    let dim: Int                                  // C of its input
    let expand: PackedWeight                      // [2C, C]
    let norm: LayerNorm                           // C/2

    /// x [B, R*R, C] -> out [B, (2R)^2, C/2].
    package func callAsFunction(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ pass: Pass) {
        let R = resolution, C = dim, c = C / 2, Ro = 2 * R, scratch = pass.scratch
        forRowTiles(pass.batch * R * R, tile: rowTile, pool: pass.pool) { r0, n, slot, inner in
            let wide = scratch.tile(slot)                 // [n, 2C] = [n, p1, p2, C/2]
            linear(x + r0 * C, ldx: C, M: n, expand, wide, ldo: 2 * C, .none, pool: inner)
            for r in 0..<n {
                let t = r0 + r, b = t / (R * R), y = (t % (R * R)) / R, xi = t % R
                for p1 in 0..<2 {        // sub-rows (p1, 0) and (p1, 1) are adjacent in both
                    let o = out + ((b * Ro + 2 * y + p1) * Ro + 2 * xi) * c
                    layerNorm(rows: 2, wide + r * 2 * C + p1 * 2 * c, ldx: c, o, ldy: c, c, norm.weight, norm.bias)
                }
            }
        }
    }
}

/// concat_back_dim[k]: Linear(2C -> C) of the channel concatenation [x | skip], as two accumulated GEMMs over the
/// input-feature halves of the packed weight (no concatenated copy).
package struct ConcatLinear {
    let tokens: Int                               // L = R*R of its stage
    let weight: PackedWeight                      // [C, 2C]
    let bias: UnsafePointer<Float>                // [C]

    /// x, skip [B, L, C] -> out [B, L, C].
    package func callAsFunction(_ x: UnsafePointer<Float>, _ skip: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                                _ pass: Pass) {
        let C = weight.N
        forRowTiles(pass.batch * tokens, tile: rowTile, pool: pass.pool) { r0, n, _, inner in
            let o = out + r0 * C
            linear(x + r0 * C, ldx: C, M: n, K: C, k0: 0, weight, o, ldo: C, .bias(bias), pool: inner)
            linear(skip + r0 * C, ldx: C, M: n, K: C, k0: C, weight, o, ldo: C, accumulate: true, .none, pool: inner)
        }
    }
}

// MARK: output head

/// What the output head writes for each pixel.
package enum HeadOutput {
    case logits(UnsafeMutablePointer<Float>)                                          // [B, nc, H, W]
    case labels(UnsafeMutablePointer<UInt8>, probabilities: UnsafeMutablePointer<Float>?)  // [B, H, W], [B, nc, H, W]
}

/// Tokens per tile of the output head (each becomes P*P pixels; 128 tokens = 2048 pixels, ~860 KB at E = 96):
/// the expand weight is streamed once per tile.
let headTileTokens = 128

/// Scratch floats of one output-head tile of `tokens` tokens.
func headTileFloats(_ cfg: SwinUNetConfig, tokens: Int) -> Int {
    let P = cfg.patchSize
    return tokens * P * P * cfg.embedDim + seg_head_work_floats(Int32(cfg.embedDim), Int32(P), Int32(cfg.numClasses))
}

/// The x4 expand weight [P*P*E, E] in head order (rows c*P*P + s instead of s*E + c), as `OutputHead.expand` must
/// be packed.
func headOrder(_ w: UnsafePointer<Float>, E: Int, P: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: P * P * E * E) { buf, count in
        seg_head_order(w, Int32(E), Int32(P), buf.baseAddress!)
        count = P * P * E * E
    }
}

/// up (FinalPatchExpand_X4) and output (the 1x1 class conv), fused per tile of tokens: Linear(E -> P*P*E, no bias)
/// with the weight in head order, so each token's P*P pixels come out channel-major; then seg_output_head:
/// LayerNorm(E) of every pixel, the class conv, and logits or first-maximum labels (+ softmax), written straight to
/// the planes.
package struct OutputHead {
    let resolution: Int                           // R = H/P, the token grid
    let patchSize: Int                            // P
    let numClasses: Int                           // nc
    let expand: PackedWeight                      // [P*P*E, E] up.expand.weight, rows in head order
    let norm: LayerNorm                           // E: up.norm
    let output: UnsafePointer<Float>              // [nc, E] output.weight

    /// x [B, R*R, E] -> `output`'s planes. `features`, when given, receives the normalised pixel features
    /// [B, H*W, E] (seg_output_head's fourth output, which the forward does not ask for).
    package func callAsFunction(_ x: UnsafePointer<Float>, output destination: HeadOutput,
                                features: UnsafeMutablePointer<Float>? = nil, _ pass: Pass) {
        let R = resolution, P = patchSize, E = norm.dim, nc = numClasses, H = R * P
        let sub = P * P, plane = H * H, scratch = pass.scratch
        let normW = norm.weight, normB = norm.bias, classW = output
        forRowTiles(pass.batch * R * R, tile: headTileTokens, pool: pass.pool) { r0, n, slot, inner in
            let pix = scratch.tile(slot)                  // [n, E, sub]: each token's pixels channel-major
            let work = pix + n * sub * E                  // seg_head_work_floats
            linear(x + r0 * E, ldx: E, M: n, expand, pix, ldo: sub * E, .none, pool: inner)
            var t = 0
            while t < n {                                 // runs of tokens of one image
                let token = r0 + t, b = token / (R * R)
                let run = min(n - t, (b + 1) * R * R - token)
                withUnsafeTemporaryAllocation(of: Int.self, capacity: run) { index in
                    for i in 0..<run {                    // each token's top-left pixel in its plane
                        let q = (token + i) % (R * R)
                        index[i] = P * (q / R) * H + P * (q % R)
                    }
                    var logits: UnsafeMutablePointer<Float>? = nil, probabilities: UnsafeMutablePointer<Float>? = nil
                    var labels: UnsafeMutablePointer<UInt8>? = nil
                    switch destination {
                    case .logits(let out): logits = out + b * nc * plane
                    case .labels(let l, let pr): labels = l + b * plane; probabilities = pr.map { $0 + b * nc * plane }
                    }
                    seg_output_head(Int32(run), pix + t * sub * E, Int32(E), Int32(P), normW, normB, classW, Int32(nc),
                                    index.baseAddress!, Int32(H), plane, logits, labels, probabilities,
                                    features.map { $0 + b * plane * E }, work)
                }
                t += run
            }
        }
    }
}
