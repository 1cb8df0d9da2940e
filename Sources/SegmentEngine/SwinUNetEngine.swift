// The Swin-UNet forward on the CPU, as segment_torch's SwinTransformerSys: its modules (Layers.swift) bound to a model's
// tensors by their PyTorch keys, every buffer preallocated for `maxBatch` slices. fp32 compute throughout.
// Dimensions: B slices of a pass, L_i = R_i*R_i tokens and C_i channels of stage i (R_i = H/P >> i, C_i = E << i),
// E embed_dim, P patch_size, H = W img_size, nc classes.
import SegmentKernels
import Foundation
import SegmentCore
import SegmentFormat

/// Why an engine cannot be built from a model (exit code 4), or was asked for impossible resources (exit code 2).
public struct EngineError: SegmentError {
    public enum Kind: Sendable { case invalidConfiguration, wrongTensor, invalidArgument }
    public let kind: Kind
    public let message: String
    public var exitCode: ExitStatus { kind == .invalidArgument ? .usage : .invalidModel }
    public var description: String { message }
}

/// layers_up.k: PatchExpand at k == 0, a decoder stage after it.
package enum LayerUp {
    case patchExpand(PatchExpand)
    case layer(BasicLayerUp)
}

/// Runs the Swin-UNet described by a model on batches of slices. Not reentrant: its passes are serialised by a lock.
public final class SwinUNetEngine {
    public let config: SwinUNetConfig
    /// Threads doing work, the caller included (the engine starts no other threads).
    public let threads: Int
    /// Slices per internal pass; larger batches are processed in passes of this many.
    public let maxBatch: Int
    /// The arithmetic precision it runs: fp32 or bf16 (resolved from the request, never auto).
    public let precision: Precision

    // The modules, named and indexed as SwinTransformerSys's (L = config.numLayers).
    package let patchEmbed: PatchEmbed              // patch_embed
    package let layers: [BasicLayer]                // layers.i, i < L; layers.i.downsample for i < L-1
    package let norm: LayerNorm                     // norm, at the bottleneck
    package let layersUp: [LayerUp]                 // layers_up.k, k < L
    package let concatBackDim: [ConcatLinear?]      // concat_back_dim.k; nil at k == 0 (nn.Identity, never called)
    package let normUp: LayerNorm                   // norm_up
    package let up: OutputHead                      // up (FinalPatchExpand_X4) and output, fused

    private let pool: WorkerPool
    private let lock = NSLock()
    private let memory: Memory
    private let scratch: Scratch
    /// Rows per thread from which a Swin block splits its windows over the threads (Layers.swift).
    let blockSplitRows: Int

    // Activations for maxBatch slices.
    private let skips: [UnsafeMutablePointer<Float>]  // skips[i] [B, L_i, C_i]: the input of layers[i]
    private let work: UnsafeMutablePointer<Float>     // [B, L_i, C_i] of any stage: the map the stages work on
    private let expanded: UnsafeMutablePointer<Float> // the same size: each PatchExpand's output, the next stage's input

    /// An engine for an open (validated) model file: its tensors, f16/bf16 widened exactly to f32, are copied
    /// straight from the mapping into the engine's arena, so the model file may be closed afterwards.
    /// `precision`: see `Precision.resolved()` (bf16 on a CPU without bf16 kernels throws).
    public convenience init(model: ModelFile, threads: Int, maxBatch: Int, precision: Precision = .fp32) throws {
        try self.init(config: model.metadata.config, threads: threads, maxBatch: maxBatch, source: model.path,
                      precision: precision) { spec, out in
            guard let info = model.tensor(spec.name), info.count == out.count else {
                throw EngineError(kind: .wrongTensor, message: "\(model.path): tensor '\(spec.name)' is missing or not of shape \(spec.shape). Re-convert the checkpoint with `segment convert`.")
            }
            try model.floats(spec.name, into: out)
        }
    }

    /// The designated initialiser: `fill(spec, out)` writes tensor `spec`'s f32 values into `out` (spec.count floats,
    /// in the engine's weight arena).
    init(config: SwinUNetConfig, threads: Int, maxBatch: Int, source: String, blockSplitRows: Int = minRowsPerThread,
         precision: Precision = .fp32, fill: (TensorSpec, UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        self.blockSplitRows = blockSplitRows
        self.precision = try precision.resolved()
        let bf16 = self.precision == .bf16
        let problems = config.problems()
        guard problems.isEmpty else {
            throw EngineError(kind: .invalidConfiguration, message: "\(source): invalid Swin-UNet configuration: "
                + problems.joined(separator: "; ") + ". Re-convert the checkpoint with `segment convert` and the right hyper-parameters.")
        }
        guard config.numLayers >= 2 else {
            throw EngineError(kind: .invalidConfiguration, message: "\(source): a Swin-UNet needs at least 2 stages (depths has \(config.numLayers)); the reference architecture cannot run this model.")
        }
        guard config.embedDim % 2 == 0 else {
            throw EngineError(kind: .invalidConfiguration, message: "\(source): embed_dim \(config.embedDim) must be even for the decoder's patch expanding.")
        }
        guard threads >= 1 else { throw EngineError(kind: .invalidArgument, message: "threads must be at least 1, not \(threads)") }
        guard maxBatch >= 1 else { throw EngineError(kind: .invalidArgument, message: "the batch size must be at least 1, not \(maxBatch)") }
        self.config = config
        self.threads = threads
        self.maxBatch = maxBatch
        pool = WorkerPool(threads: threads)
        let memory = Memory()
        self.memory = memory
        let allocate = memory.floats

        // Weights: one arena, tensors in spec order; Linear (and conv-as-GEMM) weights are stored packed for the
        // GEMM kernel instead of raw (the raw values pass through one reusable staging buffer).
        let specs = config.expectedTensors()
        func packedShape(_ spec: TensorSpec) -> (N: Int, K: Int)? {
            Self.isGEMMWeight(spec.name) ? (spec.shape[0], spec.count / spec.shape[0]) : nil
        }
        // bf16: every GEMM weight but the output head's x4 expand (the head stays fp32, as LayerNorm, softmax, GELU)
        // is stored in bf16 only.
        func inBF16(_ spec: TensorSpec) -> Bool { bf16 && spec.name != "up.expand.weight" }
        // Floats of arena a tensor takes: its packed form (a bf16 one in whole 64-byte lines), else its values.
        func arenaFloats(_ spec: TensorSpec) -> Int {
            guard let (N, K) = packedShape(spec) else { return spec.count }
            return inBF16(spec) ? (PackedWeight.bf16Elements(N: N, K: K) / 2 + 15) & ~15 : PackedWeight.floats(N: N, K: K)
        }
        let arena = allocate(specs.reduce(0) { $0 + arenaFloats($1) })
        let staging = UnsafeMutableBufferPointer<Float>.allocate(capacity: specs.map(\.count).max() ?? 1)
        defer { staging.deallocate() }
        var w = Weights()
        var offset = 0
        for spec in specs {
            if let (N, K) = packedShape(spec) {
                let raw = UnsafeMutableBufferPointer(rebasing: staging[0..<spec.count])
                try fill(spec, raw)
                if spec.name == "up.expand.weight" {   // head order: each token's pixels come out channel-major
                    let ordered = headOrder(raw.baseAddress!, E: config.embedDim, P: config.patchSize)
                    _ = raw.update(from: ordered)
                }
                if inBF16(spec) {
                    let storage = UnsafeMutableRawPointer(arena + offset)
                        .bindMemory(to: UInt16.self, capacity: PackedWeight.bf16Elements(N: N, K: K))
                    w.packed[spec.name] = PackedWeight(packingBF16: raw.baseAddress!, N: N, K: K, into: storage)
                } else {
                    w.packed[spec.name] = PackedWeight(packing: raw.baseAddress!, N: N, K: K, into: arena + offset)
                }
                offset += arenaFloats(spec)
            } else {
                try fill(spec, UnsafeMutableBufferPointer(start: arena + offset, count: spec.count))
                w.raw[spec.name] = UnsafePointer(arena + offset)
                offset += spec.count
            }
        }

        // The attention mask of a stage's shifted blocks, in the arena; nil when the stage has no shift.
        func shiftedMask(_ g: StageGeometry) -> ShiftedMask? {
            guard g.shift > 0 else { return nil }
            let (mask, masked) = WindowLayout(g, shift: g.shift).shiftedMask()
            let m = allocate(mask.count)
            mask.withUnsafeBufferPointer { m.update(from: $0.baseAddress!, count: mask.count) }
            return ShiftedMask(values: UnsafePointer(m), masked: masked)
        }

        let L = config.numLayers
        patchEmbed = PatchEmbed(w, "patch_embed", config)
        layers = (0..<L).map { i in
            let g = config.stage(i)
            return BasicLayer(w, "layers.\(i)", g, hidden: config.mlpHidden(g.dim), mask: shiftedMask(g), downsample: i < L - 1)
        }
        norm = w.layerNorm("norm", dim: config.stage(L - 1).dim)
        layersUp = (0..<L).map { k in
            let g = config.stage(L - 1 - k)             // decoder stage k works at the geometry of encoder stage L-1-k
            guard k > 0 else { return .patchExpand(PatchExpand(w, "layers_up.0", g)) }
            return .layer(BasicLayerUp(w, "layers_up.\(k)", g, hidden: config.mlpHidden(g.dim), mask: shiftedMask(g),
                                       upsample: k < L - 1))
        }
        concatBackDim = (0..<L).map { k in k == 0 ? nil : ConcatLinear(w, "concat_back_dim.\(k)", config.stage(L - 1 - k)) }
        normUp = w.layerNorm("norm_up", dim: config.embedDim)
        up = OutputHead(w, config)

        // Activations.
        let B = maxBatch
        let geo = (0..<L).map { config.stage($0) }
        skips = geo.map { allocate(B * $0.resolution * $0.resolution * $0.dim) }
        let mapFloats = geo.map { B * $0.resolution * $0.resolution * $0.dim }.max()!
        work = allocate(mapFloats)
        expanded = allocate(mapFloats)

        // Scratch per thread: attention scores, then the largest tile any module asks for.
        let scores = geo.map {
            let (N, d) = (Int32($0.tokensPerWindow), Int32($0.headDim))
            return bf16 ? seg_attention_bf16_work_floats(N, d) : seg_attention_work_floats(N, d)
        }.max()!
        let rows = maxRowTile(rowTile, threads: threads)
        var tile = rows * config.inChans * config.patchSize * config.patchSize
        for g in geo {
            let blockRows = maxBlockRows(g, maxBatch: maxBatch, threads: threads, splitRows: blockSplitRows)
            tile = max(tile, blockTileFloats(rows: blockRows, dim: g.dim, hidden: config.mlpHidden(g.dim)))
            tile = max(tile, rows * 4 * g.dim)        // merging gathers 4C; expanding makes 2C
        }
        tile = max(tile, headTileFloats(config, tokens: maxRowTile(headTileTokens, threads: threads)))
        let perThread = (scores + tile + 15) & ~15
        scratch = Scratch(base: allocate(perThread * threads), perThread: perThread, scoreFloats: scores)
    }


    // MARK: public entry points

    /// Logits [B, nc, H, W] of `batch` slices `input` [B, channels, H, W], H = W = imgSize.
    public func logits(_ input: UnsafeBufferPointer<Float>, batch: Int, channels: Int,
                       into out: UnsafeMutableBufferPointer<Float>) {
        let plane = config.imgSize * config.imgSize
        check(input, batch: batch, channels: channels)
        precondition(out.count >= batch * config.numClasses * plane, "logits buffer too small")
        run(input, batch: batch, channels: channels) { start in
            .logits(out.baseAddress! + start * self.config.numClasses * plane)
        }
    }

    /// Argmax labels [B, H, W] and, if asked, softmax probabilities [B, nc, H, W] of `batch` slices.
    public func predict(_ input: UnsafeBufferPointer<Float>, batch: Int, channels: Int,
                        labels: UnsafeMutableBufferPointer<UInt8>, probabilities: UnsafeMutableBufferPointer<Float>?) {
        let plane = config.imgSize * config.imgSize, nc = config.numClasses
        check(input, batch: batch, channels: channels)
        precondition(labels.count >= batch * plane, "labels buffer too small")
        precondition(probabilities.map { $0.count >= batch * nc * plane } ?? true, "probabilities buffer too small")
        run(input, batch: batch, channels: channels) { start in
            .labels(labels.baseAddress! + start * plane, probabilities: probabilities.map { $0.baseAddress! + start * nc * plane })
        }
    }

    private func check(_ input: UnsafeBufferPointer<Float>, batch: Int, channels: Int) {
        precondition(channels == config.inChans || (channels == 1 && config.inChans == 3),
                     "input has \(channels) channels; the model takes \(config.inChans)")
        precondition(batch >= 0 && input.count >= batch * channels * config.imgSize * config.imgSize, "input buffer too small")
    }

    /// Runs the batch in passes of at most maxBatch slices; `output(start)` is where the pass from slice `start`
    /// writes.
    private func run(_ input: UnsafeBufferPointer<Float>, batch: Int, channels: Int, output: (Int) -> HeadOutput) {
        let plane = config.imgSize * config.imgSize
        var start = 0
        while start < batch {
            let b = min(maxBatch, batch - start)
            withPass(batch: b) { pass in
                forward(input.baseAddress! + start * channels * plane, channels: channels, output: output(start), pass)
            }
            start += b
        }
    }

    /// `body` with a pass of `batch` slices (at most maxBatch) on this engine's threads, scratch and activations:
    /// under the lock (a pass is self-contained, so calls may interleave between passes), with denormals flushed on
    /// the calling thread as on the pool's (the caller's floating-point state comes back after).
    package func withPass<T>(batch: Int, _ body: (Pass) throws -> T) rethrows -> T {
        precondition(batch >= 1 && batch <= maxBatch, "a pass holds 1 to maxBatch slices")
        lock.lock(); defer { lock.unlock() }
        let fpState = seg_fp_flush_denormals()
        defer { seg_fp_restore(fpState) }
        return try body(Pass(batch: batch, pool: pool, scratch: scratch, blockSplitRows: blockSplitRows))
    }

    // MARK: forward

    /// SwinTransformerSys.forward of one pass: x [B, channels, H, W] -> the head's output.
    private func forward(_ x: UnsafePointer<Float>, channels: Int, output: HeadOutput, _ pass: Pass) {
        let x = forwardFeatures(x, channels: channels, pass)        // [B, L_{L-1}, C_{L-1}]
        let y = forwardUpFeatures(x, pass)                          // [B, L_0, E]
        upX4(y, output: output, pass)
    }

    /// The encoder: patch_embed, then each stage's blocks (its input kept as its skip) and downsample, then norm.
    /// x [B, channels, H, W] -> [B, L_{L-1}, C_{L-1}] in `work`.
    private func forwardFeatures(_ x: UnsafePointer<Float>, channels: Int, _ pass: Pass) -> UnsafeMutablePointer<Float> {
        patchEmbed(x, channels: channels, into: skips[0], pass)                     // [B, L_0, E]
        for (i, layer) in layers.enumerated() {
            layer(skips[i], into: work, pass)                                      // [B, L_i, C_i]
            if let downsample = layer.downsample {
                downsample(work, into: skips[i + 1], pass)                         // [B, L_{i+1}, C_{i+1}]
            }
        }
        let bottom = config.stage(layers.count - 1)
        norm(work, rows: pass.batch * bottom.resolution * bottom.resolution, pass)
        return work
    }

    /// The decoder: layers_up.0 expands the bottleneck; each later stage k concatenates its input with skip L-1-k
    /// (concat_back_dim.k), runs its blocks and (but for the last) upsamples; then norm_up.
    /// x [B, L_{L-1}, C_{L-1}] -> [B, L_0, E] in `work`.
    private func forwardUpFeatures(_ x: UnsafeMutablePointer<Float>, _ pass: Pass) -> UnsafeMutablePointer<Float> {
        let L = layers.count
        for (k, layerUp) in layersUp.enumerated() {
            switch layerUp {
            case .patchExpand(let expand):
                expand(x, into: expanded, pass)                                    // [B, L_{L-2}, C_{L-2}]
            case .layer(let layer):                                                 // at stage s = L-1-k:
                concatBackDim[k]!(expanded, skips[L - 1 - k], into: work, pass)   // [B, L_s, C_s]
                layer(work, into: work, pass)
                if let upsample = layer.upsample {
                    upsample(work, into: expanded, pass)                           // [B, L_{s-1}, C_{s-1}]
                }
            }
        }
        let top = config.stage(0)
        normUp(work, rows: pass.batch * top.resolution * top.resolution, pass)
        return work
    }

    /// up_x4 and output: x [B, L_0, E] -> logits [B, nc, H, W], or labels [B, H, W] (and probabilities).
    private func upX4(_ x: UnsafePointer<Float>, output: HeadOutput, _ pass: Pass) {
        up(x, output: output, pass)
    }
}

// MARK: binding

/// The model's tensors in the engine's arena, by PyTorch key: Linear and conv-as-GEMM weights packed, the rest raw.
private struct Weights {
    var raw: [String: UnsafePointer<Float>] = [:]
    var packed: [String: PackedWeight] = [:]
    // Every key of config.expectedTensors() is bound before a module asks for it.
    subscript(_ key: String) -> UnsafePointer<Float> { raw[key]! }
    func linear(_ key: String) -> PackedWeight { packed[key]! }
    func layerNorm(_ prefix: String, dim: Int) -> LayerNorm {
        LayerNorm(dim: dim, weight: self[prefix + ".weight"], bias: self[prefix + ".bias"])
    }
}

/// The attention mask of a stage's shifted blocks: values [nW, N, N], and which windows hold any -100.
private struct ShiftedMask {
    let values: UnsafePointer<Float>
    let masked: [Bool]
}

private extension PatchEmbed {
    init(_ w: Weights, _ p: String, _ cfg: SwinUNetConfig) {
        self.init(inChans: cfg.inChans, patchSize: cfg.patchSize, imgSize: cfg.imgSize, proj: w.linear(p + ".proj.weight"),
                  projBias: w[p + ".proj.bias"], norm: w.layerNorm(p + ".norm", dim: cfg.embedDim))
    }
}

/// The `depth` blocks of stage `p` (geometry g): even blocks unshifted, odd ones shifted by g.shift with its mask.
private func swinBlocks(_ w: Weights, _ p: String, _ g: StageGeometry, hidden: Int, mask: ShiftedMask?) -> [SwinTransformerBlock] {
    (0..<g.depth).map { j in
        let b = "\(p).blocks.\(j)."
        let weights = BlockWeights(norm1W: w[b + "norm1.weight"], norm1B: w[b + "norm1.bias"],
                                   bias: w[b + "attn.relative_position_bias"],
                                   qkvW: w.linear(b + "attn.qkv.weight"), qkvB: w[b + "attn.qkv.bias"],
                                   projW: w.linear(b + "attn.proj.weight"), projB: w[b + "attn.proj.bias"],
                                   norm2W: w[b + "norm2.weight"], norm2B: w[b + "norm2.bias"],
                                   fc1W: w.linear(b + "mlp.fc1.weight"), fc1B: w[b + "mlp.fc1.bias"],
                                   fc2W: w.linear(b + "mlp.fc2.weight"), fc2B: w[b + "mlp.fc2.bias"])
        let shift = g.shift(ofBlock: j)
        return SwinTransformerBlock(geometry: g, shift: shift, hidden: hidden, w: weights,
                                    mask: shift > 0 ? mask?.values : nil, masked: mask?.masked ?? [])
    }
}

private extension BasicLayer {
    init(_ w: Weights, _ p: String, _ g: StageGeometry, hidden: Int, mask: ShiftedMask?, downsample: Bool) {
        self.init(blocks: swinBlocks(w, p, g, hidden: hidden, mask: mask),
                  downsample: downsample ? PatchMerging(w, p + ".downsample", g) : nil)
    }
}

private extension BasicLayerUp {
    init(_ w: Weights, _ p: String, _ g: StageGeometry, hidden: Int, mask: ShiftedMask?, upsample: Bool) {
        self.init(blocks: swinBlocks(w, p, g, hidden: hidden, mask: mask),
                  upsample: upsample ? PatchExpand(w, p + ".upsample", g) : nil)
    }
}

private extension PatchMerging {
    init(_ w: Weights, _ p: String, _ g: StageGeometry) {
        self.init(resolution: g.resolution, dim: g.dim, norm: w.layerNorm(p + ".norm", dim: 4 * g.dim),
                  reduction: w.linear(p + ".reduction.weight"))
    }
}

private extension PatchExpand {
    init(_ w: Weights, _ p: String, _ g: StageGeometry) {
        self.init(resolution: g.resolution, dim: g.dim, expand: w.linear(p + ".expand.weight"),
                  norm: w.layerNorm(p + ".norm", dim: g.dim / 2))
    }
}

private extension ConcatLinear {
    init(_ w: Weights, _ p: String, _ g: StageGeometry) {
        self.init(tokens: g.resolution * g.resolution, weight: w.linear(p + ".weight"), bias: w[p + ".bias"])
    }
}

private extension OutputHead {
    init(_ w: Weights, _ cfg: SwinUNetConfig) {
        self.init(resolution: cfg.patchesResolution, patchSize: cfg.patchSize, numClasses: cfg.numClasses,
                  expand: w.linear("up.expand.weight"), norm: w.layerNorm("up.norm", dim: cfg.embedDim),
                  output: w["output.weight"])
    }
}

extension SwinUNetEngine {
    /// The tensors the engine multiplies as GEMM weights (N = shape[0] outputs, K = the rest): every Linear, the
    /// patch-embedding conv (im2col order = its (E, Cin, P, P) layout). The 1x1 output conv is not one: the output
    /// head multiplies it per pixel (seg_output_head).
    static func isGEMMWeight(_ name: String) -> Bool {
        for suffix in ["attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight",
                       "downsample.reduction.weight", "expand.weight"] where name.hasSuffix(suffix) { return true }
        return name == "patch_embed.proj.weight"
            || (name.hasPrefix("concat_back_dim.") && name.hasSuffix(".weight"))
    }
}

/// Owns the engine's allocations (weights, masks, activations, scratch), freed together.
private final class Memory {
    private var blocks: [UnsafeMutableRawPointer] = []
    private static let huge = 2 << 20
    /// `count` floats, 64-byte aligned, uninitialised. Blocks of 2 MB or more are 2 MB aligned and marked for
    /// transparent huge pages (where the kernel offers them on request), so streaming the weights and gathering
    /// tokens from large maps walk fewer pages.
    func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        let bytes = max(count, 1) * 4
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: bytes >= Self.huge ? Self.huge : 64)
#if os(Linux)
        if bytes >= Self.huge { _ = madvise(raw, bytes, MADV_HUGEPAGE) }
#endif
        blocks.append(raw)
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }
    deinit { for b in blocks { b.deallocate() } }
}
