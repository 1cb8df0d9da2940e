// The engine's forward run module by module, each into a buffer of its own, handing every named activation to an
// observer (names as segment_torch's `stages`): what the parity tests compare with PyTorch stage by stage, and what
// the batch-1 bench times. The engine's own forward composes the same modules through shared buffers; the parity
// tests check that both give the same logits, bit for bit.
import SegmentEngine
import SegmentFormat

package final class StageForward {
    package let engine: SwinUNetEngine
    /// One buffer per activation, kept from call to call (so a timed call does not fault in fresh pages).
    private var buffers: [String: UnsafeMutableBufferPointer<Float>] = [:]

    package init(_ engine: SwinUNetEngine) { self.engine = engine }
    deinit { for b in buffers.values { b.deallocate() } }

    private func buffer(_ name: String, _ count: Int) -> UnsafeMutablePointer<Float> {
        if let b = buffers[name], b.count == count { return b.baseAddress! }
        buffers[name]?.deallocate()
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        b.initialize(repeating: .nan)
        buffers[name] = b
        return b.baseAddress!
    }

    /// SwinTransformerSys.forward of `batch` slices x [B, channels, H, W] (B <= maxBatch), calling
    /// `observe(name, values)` with each stage's output: patch_embed, encoder.i, bottleneck, decoder.k, norm_up,
    /// up [B, H*W, E] and logits [B, nc, H, W].
    package func callAsFunction(_ x: UnsafePointer<Float>, batch B: Int, channels: Int,
                                observe: (String, UnsafeBufferPointer<Float>) -> Void) {
        let engine = self.engine, cfg = engine.config, L = cfg.numLayers
        func floats(_ g: StageGeometry) -> Int { B * g.resolution * g.resolution * g.dim }   // [B, L_i, C_i]
        func show(_ name: String, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
            observe(name, UnsafeBufferPointer(start: p, count: count))
        }
        engine.withPass(batch: B) { pass in
            var h = buffer("patch_embed", floats(cfg.stage(0)))
            engine.patchEmbed(x, channels: channels, into: h, pass)
            show("patch_embed", h, floats(cfg.stage(0)))

            var skips: [UnsafeMutablePointer<Float>] = []          // skips[i]: the input of layers[i]
            for (i, layer) in engine.layers.enumerated() {
                skips.append(h)
                let y = buffer("encoder.\(i)", floats(cfg.stage(i)))
                layer(h, into: y, pass)
                show("encoder.\(i)", y, floats(cfg.stage(i)))
                h = y
                if let downsample = layer.downsample {
                    h = buffer("layers.\(i).downsample", floats(cfg.stage(i + 1)))
                    downsample(y, into: h, pass)
                }
            }
            let bottom = cfg.stage(L - 1)
            let bottleneck = buffer("bottleneck", floats(bottom))
            bottleneck.update(from: h, count: floats(bottom))
            engine.norm(bottleneck, rows: B * bottom.resolution * bottom.resolution, pass)
            show("bottleneck", bottleneck, floats(bottom))

            h = bottleneck
            for (k, layerUp) in engine.layersUp.enumerated() {
                let g = cfg.stage(L - 1 - k)
                var out = floats(g)
                switch layerUp {
                case .patchExpand(let expand):
                    out = floats(cfg.stage(L - 2))
                    let y = buffer("decoder.\(k)", out)
                    expand(h, into: y, pass)
                    h = y
                case .layer(let layer):
                    let cat = buffer("concat_back_dim.\(k)", floats(g))
                    engine.concatBackDim[k]!(h, skips[L - 1 - k], into: cat, pass)
                    let y = buffer("layers_up.\(k)", floats(g))
                    layer(cat, into: y, pass)
                    h = y
                    if let upsample = layer.upsample {
                        out = floats(cfg.stage(L - 2 - k))
                        h = buffer("decoder.\(k)", out)
                        upsample(y, into: h, pass)
                    }
                }
                show("decoder.\(k)", h, out)
            }
            let top = cfg.stage(0)
            let normed = buffer("norm_up", floats(top))
            normed.update(from: h, count: floats(top))
            engine.normUp(normed, rows: B * top.resolution * top.resolution, pass)
            show("norm_up", normed, floats(top))

            let plane = cfg.imgSize * cfg.imgSize
            let features = buffer("up", B * plane * cfg.embedDim), logits = buffer("logits", B * cfg.numClasses * plane)
            engine.up(normed, output: .logits(logits), features: features, pass)
            show("up", features, B * plane * cfg.embedDim)
            show("logits", logits, B * cfg.numClasses * plane)
        }
    }
}
