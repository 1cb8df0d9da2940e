// Naive twins of the engine's modules: the PyTorch forward written step by step (explicit roll, window
// partition, mask from region labels, concatenations), Double accumulation, Foundation's exp and erf, no
// BLAS and no threads. Slow by design; the tests run each fast module against its twin here.
import Foundation
import SegmentEngine
import SegmentFormat
import SegmentKernels

extension PackedWeight {
    /// W [N, K] row-major again: the inverse of the engine's fp32 packing (panels of SEG_NR columns stored k-major).
    package func unpacked() -> [Float] {
        guard let data else { preconditionFailure("unpacked(): a weight packed in bf16 only has no fp32 form") }
        var w = [Float](repeating: 0, count: N * K)
        let nr = Int(SEG_NR)
        for n in 0..<N { for k in 0..<K { w[n * K + k] = data[(n / nr) * nr * K + k * nr + n % nr] } }
        return w
    }
}

package enum Reference {
    package static func gelu(_ x: Float) -> Float { Float(0.5 * Double(x) * (1 + Foundation.erf(Double(x) / 2.0.squareRoot()))) }

    /// Softmax of one row.
    package static func softmax(_ s: [Float]) -> [Float] {
        let m = s.max()!
        let e = s.map { Foundation.exp(Double($0 - m)) }
        let sum = e.reduce(0, +)
        return e.map { Float($0 / sum) }
    }

    /// LayerNorm(C) of each of the rows of x (rows, C).
    package static func layerNorm(_ x: [Float], _ C: Int, _ g: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> [Float] {
        var y = x
        for r in 0..<(x.count / C) {
            let row = x[(r * C)..<(r * C + C)].map(Double.init)
            let mean = row.reduce(0, +) / Double(C)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(C)
            for c in 0..<C { y[r * C + c] = Float((row[c] - mean) / (variance + 1e-5).squareRoot() * Double(g[c]) + Double(b[c])) }
        }
        return y
    }

    /// x (rows, K) · W^T (W (N, K)) + bias.
    package static func linear(_ x: [Float], _ K: Int, _ W: UnsafePointer<Float>, _ N: Int, _ bias: UnsafePointer<Float>?) -> [Float] {
        let M = x.count / K
        var y = [Float](repeating: 0, count: M * N)
        for m in 0..<M {
            for n in 0..<N {
                var s = Double(bias?[n] ?? 0)
                for k in 0..<K { s += Double(x[m * K + k]) * Double(W[n * K + k]) }
                y[m * N + n] = Float(s)
            }
        }
        return y
    }

    /// The same with a packed weight (unpacked first).
    package static func linear(_ x: [Float], _ K: Int, _ W: PackedWeight, _ N: Int, _ bias: UnsafePointer<Float>?) -> [Float] {
        precondition(W.N == N && W.K == K, "Reference.linear: weight shape")
        return W.unpacked().withUnsafeBufferPointer { linear(x, K, $0.baseAddress!, N, bias) }
    }

    /// torch.roll of a (B, R, R, C) map by (s, s) on the two grid axes: out[y][x] = in[(y - s) mod R][(x - s) mod R].
    package static func roll(_ x: [Float], _ B: Int, _ R: Int, _ C: Int, _ s: Int) -> [Float] {
        var y = x
        for b in 0..<B { for i in 0..<R { for j in 0..<R {
            let si = ((i - s) % R + R) % R, sj = ((j - s) % R + R) % R
            for c in 0..<C { y[((b * R + i) * R + j) * C + c] = x[((b * R + si) * R + sj) * C + c] }
        } } }
        return y
    }

    /// (B, R, R, C) -> (B*nW, ws*ws, C), windows row-major; `reverse` goes back.
    package static func partition(_ x: [Float], _ B: Int, _ R: Int, _ C: Int, _ ws: Int, reverse: Bool = false) -> [Float] {
        var y = x
        let n = R / ws
        for b in 0..<B { for wy in 0..<n { for wx in 0..<n { for iy in 0..<ws { for ix in 0..<ws {
            let map = ((b * R + wy * ws + iy) * R + wx * ws + ix) * C
            let win = (((b * n + wy) * n + wx) * ws * ws + iy * ws + ix) * C
            for c in 0..<C { if reverse { y[map + c] = x[win + c] } else { y[win + c] = x[map + c] } }
        } } } } }
        return y
    }

    /// One Swin block on (B, R*R, C), as SwinTransformerBlock.forward.
    package static func swinBlock(_ x: [Float], batch B: Int, _ g: StageGeometry, shift s: Int, hidden: Int, _ w: BlockWeights) -> [Float] {
        let R = g.resolution, C = g.dim, ws = g.window, N = ws * ws, heads = g.heads, d = C / heads
        let nW = (R / ws) * (R / ws)
        var h = layerNorm(x, C, w.norm1W, w.norm1B)
        if s > 0 { h = roll(h, B, R, C, -s) }
        let windows = partition(h, B, R, C, ws)
        let qkv = linear(windows, C, w.qkvW, 3 * C, w.qkvB)          // (B*nW*N, 3C), q already scaled
        // Region label of a position of the rolled map, by the reference's slices.
        func band(_ c: Int) -> Int { c < R - ws ? 0 : (c < R - s ? 1 : 2) }
        var ctx = [Float](repeating: 0, count: B * nW * N * C)
        for win in 0..<(B * nW) {
            let wl = win % nW, wy = wl / (R / ws), wx = wl % (R / ws)
            for head in 0..<heads {
                for i in 0..<N {
                    let li = band(wy * ws + i / ws) * 3 + band(wx * ws + i % ws)
                    var scores = [Float](repeating: 0, count: N)
                    for j in 0..<N {
                        var dot = 0.0
                        for e in 0..<d {
                            dot += Double(qkv[(win * N + i) * 3 * C + head * d + e]) * Double(qkv[(win * N + j) * 3 * C + C + head * d + e])
                        }
                        let lj = band(wy * ws + j / ws) * 3 + band(wx * ws + j % ws)
                        let mask: Float = (s > 0 && li != lj) ? -100 : 0
                        scores[j] = Float(dot) + w.bias[(head * N + i) * N + j] + mask
                    }
                    let p = softmax(scores)
                    for e in 0..<d {
                        var acc = 0.0
                        for j in 0..<N { acc += Double(p[j]) * Double(qkv[(win * N + j) * 3 * C + 2 * C + head * d + e]) }
                        ctx[(win * N + i) * C + head * d + e] = Float(acc)
                    }
                }
            }
        }
        var a = partition(linear(ctx, C, w.projW, C, w.projB), B, R, C, ws, reverse: true)
        if s > 0 { a = roll(a, B, R, C, s) }
        let y = zip(x, a).map { $0 + $1 }
        let m = linear(linear(layerNorm(y, C, w.norm2W, w.norm2B), C, w.fc1W, hidden, w.fc1B).map(gelu), hidden, w.fc2W, C, w.fc2B)
        return zip(y, m).map { $0 + $1 }
    }

    /// PatchEmbed of (B, channels, H, W) -> (B, L, E); a 1-channel input is first repeated to inChans.
    package static func patchEmbed(_ input: [Float], batch B: Int, channels: Int, _ cfg: SwinUNetConfig,
                           w: UnsafePointer<Float>, b: UnsafePointer<Float>, normW: UnsafePointer<Float>, normB: UnsafePointer<Float>) -> [Float] {
        let H = cfg.imgSize, P = cfg.patchSize, R = H / P, Cin = cfg.inChans, E = cfg.embedDim
        var x = input
        if channels == 1 && Cin == 3 {
            x = []
            for bi in 0..<B { let plane = Array(input[(bi * H * H)..<((bi + 1) * H * H)]); x += plane + plane + plane }
        }
        var out = [Float](repeating: 0, count: B * R * R * E)
        for bi in 0..<B { for py in 0..<R { for px in 0..<R { for e in 0..<E {
            var s = Double(b[e])
            for ci in 0..<Cin { for ky in 0..<P { for kx in 0..<P {
                s += Double(w[((e * Cin + ci) * P + ky) * P + kx]) * Double(x[((bi * Cin + ci) * H + py * P + ky) * H + px * P + kx])
            } } }
            out[((bi * R + py) * R + px) * E + e] = Float(s)
        } } } }
        return layerNorm(out, E, normW, normB)
    }

    /// PatchMerging: cat[x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]], LN(4C), Linear(4C -> 2C).
    package static func patchMerging(_ x: [Float], batch B: Int, resolution R: Int, dim C: Int,
                             normW: UnsafePointer<Float>, normB: UnsafePointer<Float>, reduction: UnsafePointer<Float>) -> [Float] {
        let Ro = R / 2
        var cat = [Float]()
        for b in 0..<B { for y in 0..<Ro { for xx in 0..<Ro {
            for (dy, dx) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let t = (b * R + 2 * y + dy) * R + 2 * xx + dx
                cat += x[(t * C)..<(t * C + C)]
            }
        } } }
        return linear(layerNorm(cat, 4 * C, normW, normB), 4 * C, reduction, 2 * C, nil)
    }

    /// Linear(C -> p*p*c, no bias) then 'b h w (p1 p2 c) -> b (h p1) (w p2) c' and LN(c).
    package static func expand(_ x: [Float], batch B: Int, resolution R: Int, dim C: Int, scale p: Int, outDim c: Int,
                       w: UnsafePointer<Float>, normW: UnsafePointer<Float>, normB: UnsafePointer<Float>) -> [Float] {
        let wide = linear(x, C, w, p * p * c, nil)
        let Ro = R * p
        var out = [Float](repeating: 0, count: B * Ro * Ro * c)
        for b in 0..<B { for y in 0..<R { for xx in 0..<R { for p1 in 0..<p { for p2 in 0..<p { for ci in 0..<c {
            out[((b * Ro + y * p + p1) * Ro + xx * p + p2) * c + ci] = wide[((b * R + y) * R + xx) * p * p * c + p1 * p * c + p2 * c + ci]
        } } } } } }
        return layerNorm(out, c, normW, normB)
    }

    /// concat_back_dim: Linear(2C -> C) of cat[x, skip] on the channels.
    package static func concatBack(_ x: [Float], _ skip: [Float], dim C: Int, w: UnsafePointer<Float>, b: UnsafePointer<Float>) -> [Float] {
        var cat = [Float]()
        for r in 0..<(x.count / C) { cat += x[(r * C)..<(r * C + C)]; cat += skip[(r * C)..<(r * C + C)] }
        return linear(cat, 2 * C, w, C, b)
    }

    /// Output head: final expand (scale P) + LN, 1x1 conv to (B, nc, H, W) logits.
    package static func outputHead(_ x: [Float], batch B: Int, _ cfg: SwinUNetConfig, expand w: UnsafePointer<Float>,
                           normW: UnsafePointer<Float>, normB: UnsafePointer<Float>, classW: UnsafePointer<Float>) -> [Float] {
        let E = cfg.embedDim, H = cfg.imgSize, nc = cfg.numClasses
        let pix = expand(x, batch: B, resolution: cfg.patchesResolution, dim: E, scale: cfg.patchSize, outDim: E,
                         w: w, normW: normW, normB: normB)                 // (B, H*H, E)
        let scores = linear(pix, E, classW, nc, nil)                     // (B, H*H, nc)
        var out = [Float](repeating: 0, count: B * nc * H * H)
        for b in 0..<B { for p in 0..<(H * H) { for k in 0..<nc { out[(b * nc + k) * H * H + p] = scores[(b * H * H + p) * nc + k] } } }
        return out
    }
}
