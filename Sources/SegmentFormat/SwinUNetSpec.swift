// The Swin-UNet architecture as the model file stores it: the hyper-parameters, the per-stage geometry and the
// exact list of tensors (name, shape in PyTorch order) a model file of a given configuration must hold.
//
// This file is the contract between the converter (which writes these tensors), the reader (which validates
// them) and the engine (which binds them by name). See docs/FORMAT.md, section "Tensors".
//
// Names are the PyTorch state_dict names without the `swin_unet.` prefix, with two offline rewrites:
//   - `attn.relative_position_bias_table` (T, heads) + `attn.relative_position_index` (N, N) become one dense
//     `attn.relative_position_bias` (heads, N, N), N = ws*ws, gathered by the converter;
//   - `attn.qkv.weight` / `attn.qkv.bias` hold the q rows (the first C of 3C) already multiplied by
//     head_dim^-0.5, so the engine computes q @ k^T with no scale.
// The buffers `attn_mask` and `relative_position_index` are not stored: they are functions of the geometry,
// checked by the converter and recomputed by the engine.

/// Hyper-parameters of a Swin-UNet (Swin-T "lite" defaults: 224/4, 96, [2,2,2,2], [3,6,12,24], window 7).
public struct SwinUNetConfig: Codable, Equatable, Sendable {
    public var imgSize: Int = 224
    public var patchSize: Int = 4
    public var inChans: Int = 3
    public var numClasses: Int = 9
    public var embedDim: Int = 96
    public var depths: [Int] = [2, 2, 2, 2]
    public var numHeads: [Int] = [3, 6, 12, 24]
    public var windowSize: Int = 7
    public var mlpRatio: Double = 4.0

    public init() {}

    public init(imgSize: Int = 224, patchSize: Int = 4, inChans: Int = 3, numClasses: Int = 9, embedDim: Int = 96,
                depths: [Int] = [2, 2, 2, 2], numHeads: [Int] = [3, 6, 12, 24], windowSize: Int = 7,
                mlpRatio: Double = 4.0) {
        self.imgSize = imgSize; self.patchSize = patchSize; self.inChans = inChans; self.numClasses = numClasses
        self.embedDim = embedDim; self.depths = depths; self.numHeads = numHeads; self.windowSize = windowSize
        self.mlpRatio = mlpRatio
    }

    /// Number of encoder stages (= decoder stages).
    public var numLayers: Int { depths.count }
    /// Token grid side after the patch embedding (56 for 224/4).
    public var patchesResolution: Int { imgSize / patchSize }
    /// Hidden width of the MLP of a block of width `dim`.
    public func mlpHidden(_ dim: Int) -> Int { Int(Double(dim) * mlpRatio) }

    /// Geometry of encoder stage i (0-based): token grid side, channels, heads, window, shift of odd blocks.
    public func stage(_ i: Int) -> StageGeometry {
        let res = patchesResolution >> i
        let dim = embedDim << i
        // As the reference: a stage whose resolution is <= window has ONE window covering it and no shift.
        let ws = res <= windowSize ? res : windowSize
        let shift = res <= windowSize ? 0 : windowSize / 2
        return StageGeometry(resolution: res, dim: dim, heads: numHeads[i], depth: depths[i], window: ws, shift: shift)
    }

    /// Checks the configuration is one the architecture can run; returns a message per problem.
    public func problems() -> [String] {
        var p: [String] = []
        if depths.isEmpty { p.append("depths is empty") }
        if depths.count != numHeads.count { p.append("depths has \(depths.count) stages but num_heads has \(numHeads.count)") }
        if patchSize <= 0 || imgSize <= 0 || imgSize % patchSize != 0 { p.append("img_size \(imgSize) is not a multiple of patch_size \(patchSize)") }
        if ![1, 3].contains(inChans) { p.append("in_chans must be 1 or 3, not \(inChans)") }
        if numClasses < 1 || numClasses > 255 { p.append("num_classes must be in 1...255, not \(numClasses)") }
        if embedDim <= 0 { p.append("embed_dim must be positive") }
        if windowSize <= 0 { p.append("window_size must be positive") }
        guard p.isEmpty else { return p }
        for i in 0..<numLayers {
            let g = stage(i)
            if g.resolution < 1 || (patchesResolution % (1 << i)) != 0 { p.append("stage \(i): token grid \(patchesResolution) is not divisible by \(1 << i)"); continue }
            if g.resolution % g.window != 0 { p.append("stage \(i): resolution \(g.resolution) is not a multiple of window \(g.window)") }
            if g.heads <= 0 || g.dim % g.heads != 0 { p.append("stage \(i): \(g.dim) channels do not split into \(g.heads) heads") }
            if g.depth < 1 { p.append("stage \(i): depth must be >= 1") }
        }
        return p
    }
}

public struct StageGeometry: Equatable, Sendable {
    public let resolution: Int   // token grid side H = W
    public let dim: Int          // channels C
    public let heads: Int
    public let depth: Int        // blocks in the stage (encoder and decoder alike)
    public let window: Int       // window side ws (N = ws*ws tokens per window)
    public let shift: Int        // shift of odd blocks (0 when the stage is one window)
    public var headDim: Int { dim / heads }
    public var tokensPerWindow: Int { window * window }
    public var windowsPerImage: Int { (resolution / window) * (resolution / window) }
    public func shift(ofBlock j: Int) -> Int { j % 2 == 1 ? shift : 0 }
}

/// One expected tensor: name and shape in PyTorch order.
public struct TensorSpec: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    public init(_ name: String, _ shape: [Int]) { self.name = name; self.shape = shape }
    public var count: Int { shape.reduce(1, *) }
}

extension SwinUNetConfig {
    /// Every tensor a model file of this configuration holds, in forward order.
    public func expectedTensors() -> [TensorSpec] {
        var t: [TensorSpec] = []
        let E = embedDim, P = patchSize, L = numLayers
        t += [TensorSpec("patch_embed.proj.weight", [E, inChans, P, P]), TensorSpec("patch_embed.proj.bias", [E]),
              TensorSpec("patch_embed.norm.weight", [E]), TensorSpec("patch_embed.norm.bias", [E])]
        func blocks(_ prefix: String, _ g: StageGeometry) -> [TensorSpec] {
            var b: [TensorSpec] = []
            let C = g.dim, N = g.tokensPerWindow, Hd = mlpHidden(C)
            for j in 0..<g.depth {
                let p = "\(prefix).blocks.\(j)."
                b += [TensorSpec(p + "norm1.weight", [C]), TensorSpec(p + "norm1.bias", [C]),
                      TensorSpec(p + "attn.relative_position_bias", [g.heads, N, N]),
                      TensorSpec(p + "attn.qkv.weight", [3 * C, C]), TensorSpec(p + "attn.qkv.bias", [3 * C]),
                      TensorSpec(p + "attn.proj.weight", [C, C]), TensorSpec(p + "attn.proj.bias", [C]),
                      TensorSpec(p + "norm2.weight", [C]), TensorSpec(p + "norm2.bias", [C]),
                      TensorSpec(p + "mlp.fc1.weight", [Hd, C]), TensorSpec(p + "mlp.fc1.bias", [Hd]),
                      TensorSpec(p + "mlp.fc2.weight", [C, Hd]), TensorSpec(p + "mlp.fc2.bias", [C])]
            }
            return b
        }
        // Encoder: stage i, then PatchMerging(C) for i < L-1.
        for i in 0..<L {
            let g = stage(i)
            t += blocks("layers.\(i)", g)
            if i < L - 1 {
                t += [TensorSpec("layers.\(i).downsample.reduction.weight", [2 * g.dim, 4 * g.dim]),
                      TensorSpec("layers.\(i).downsample.norm.weight", [4 * g.dim]),
                      TensorSpec("layers.\(i).downsample.norm.bias", [4 * g.dim])]
            }
        }
        let bottom = stage(L - 1)
        t += [TensorSpec("norm.weight", [bottom.dim]), TensorSpec("norm.bias", [bottom.dim])]
        // Decoder: layers_up.0 = PatchExpand(bottom); layers_up.k = blocks of stage L-1-k (+ PatchExpand if k < L-1).
        if L > 1 {
            t += [TensorSpec("layers_up.0.expand.weight", [2 * bottom.dim, bottom.dim]),
                  TensorSpec("layers_up.0.norm.weight", [bottom.dim / 2]), TensorSpec("layers_up.0.norm.bias", [bottom.dim / 2])]
        }
        for k in 1..<max(L, 1) {
            let g = stage(L - 1 - k)
            t += blocks("layers_up.\(k)", g)
            if k < L - 1 {
                t += [TensorSpec("layers_up.\(k).upsample.expand.weight", [2 * g.dim, g.dim]),
                      TensorSpec("layers_up.\(k).upsample.norm.weight", [g.dim / 2]),
                      TensorSpec("layers_up.\(k).upsample.norm.bias", [g.dim / 2])]
            }
        }
        for k in 1..<max(L, 1) {
            let C = stage(L - 1 - k).dim
            t += [TensorSpec("concat_back_dim.\(k).weight", [C, 2 * C]), TensorSpec("concat_back_dim.\(k).bias", [C])]
        }
        t += [TensorSpec("norm_up.weight", [E]), TensorSpec("norm_up.bias", [E]),
              TensorSpec("up.expand.weight", [P * P * E, E]), TensorSpec("up.norm.weight", [E]), TensorSpec("up.norm.bias", [E]),
              TensorSpec("output.weight", [numClasses, E, 1, 1])]
        return t
    }
}
