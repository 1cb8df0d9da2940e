// The Swin-UNet forward on the CPU: binds a model's tensors by their SwinUNetSpec names, preallocates every
// buffer for `maxBatch` slices, and runs the fused operators of Layers.swift. fp32 compute throughout.
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

/// Runs the Swin-UNet described by a model on batches of slices. Not reentrant: calls are serialised by a lock.
public final class SwinUNetEngine {
    public let config: SwinUNetConfig
    /// Threads doing work, the caller included (the engine starts no other threads).
    public let threads: Int
    /// Slices per internal pass; larger batches are processed in passes of this many.
    public let maxBatch: Int

    private let pool: WorkerPool
    private let lock = NSLock()
    private let memory: Memory

    // Bound weights (pointers into one arena), per layer.
    private struct Stage {
        let g: StageGeometry
        let blocks: [BlockWeights]
        let mask: UnsafePointer<Float>?      // (nW, N, N) for the shifted (odd) blocks, nil if the stage has no shift
        let masked: [Bool]                   // per window: does its mask hold any -100
    }
    private struct Resample { let w: PackedWeight; let normW, normB: UnsafePointer<Float> }
    private let embedW: PackedWeight
    private let embedB, embedNormW, embedNormB: UnsafePointer<Float>
    private let encoder: [Stage]
    private let merges: [Resample]           // layers.i.downsample, i < L-1 (w = reduction)
    private let normW, normB: UnsafePointer<Float>
    private let decoder: [Stage]             // decoder[k-1] = layers_up.k, k = 1..<L
    private let expands: [Resample]          // expands[k] = the PatchExpand after decoder step k (k = 0 is layers_up.0)
    private let concatW: [PackedWeight], concatB: [UnsafePointer<Float>]   // concat_back_dim.k at [k-1]
    private let normUpW, normUpB, upNormW, upNormB: UnsafePointer<Float>
    private let upW: PackedWeight                       // up.expand.weight packed in head order
    private let classW: UnsafePointer<Float>            // output.weight (nc, E)

    // Activations for maxBatch slices.
    private let skips: [UnsafeMutablePointer<Float>]   // skip i = input of encoder stage i, (B, L_i, C_i)
    private let bufA, bufB: UnsafeMutablePointer<Float> // (B, L_0, max C at full resolution) working maps
    private let scratch: Scratch
    /// Rows per thread from which a Swin block splits its windows over the threads (Layers.swift, swinBlock).
    let blockSplitRows: Int

    /// Test hook: receives each named stage activation (names as segment_ref's `stages`) during `logits`.
    var observer: ((String, UnsafeBufferPointer<Float>) -> Void)?

    /// An engine for an open (validated) model file: its tensors, f16/bf16 widened exactly to f32, are copied
    /// straight from the mapping into the engine's arena, so the model file may be closed afterwards.
    public convenience init(model: ModelFile, threads: Int, maxBatch: Int) throws {
        try self.init(model: model, threads: threads, maxBatch: maxBatch, blockSplitRows: minRowsPerThread)
    }

    /// The same, with the block's window-split limit of its own (`blockSplitRows`; the opt-in bench test).
    convenience init(model: ModelFile, threads: Int, maxBatch: Int, blockSplitRows: Int) throws {
        try self.init(config: model.metadata.config, threads: threads, maxBatch: maxBatch, source: model.path,
                      blockSplitRows: blockSplitRows) { spec, out in
            guard let info = model.tensor(spec.name), info.count == out.count else {
                throw EngineError(kind: .wrongTensor, message: "\(model.path): tensor '\(spec.name)' is missing or not of shape \(spec.shape). Re-convert the checkpoint with `segment convert`.")
            }
            try model.floats(spec.name, into: out)
        }
    }

    /// Binds `weights(name)` for every tensor of `config.expectedTensors()` (f32 values in PyTorch order), checks
    /// their sizes, and preallocates. `source` names the model in errors (its file path).
    public convenience init(config: SwinUNetConfig, threads: Int, maxBatch: Int, source: String,
                            weights: (String) throws -> [Float]) throws {
        try self.init(config: config, threads: threads, maxBatch: maxBatch, source: source) { spec, out in
            let values = try weights(spec.name)
            guard values.count == spec.count else {
                throw EngineError(kind: .wrongTensor, message: "\(source): tensor '\(spec.name)' has \(values.count) values, expected \(spec.count) (shape \(spec.shape)). Re-convert the checkpoint with `segment convert`.")
            }
            _ = out.update(from: values)
        }
    }

    /// The designated initialiser: `fill(spec, out)` writes tensor `spec`'s f32 values into `out` (spec.count floats,
    /// in the engine's weight arena).
    init(config: SwinUNetConfig, threads: Int, maxBatch: Int, source: String, blockSplitRows: Int = minRowsPerThread,
         fill: (TensorSpec, UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        self.blockSplitRows = blockSplitRows
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
        let arena = allocate(specs.reduce(0) { total, spec in
            total + (packedShape(spec).map { PackedWeight.floats(N: $0.N, K: $0.K) } ?? spec.count)
        })
        let staging = UnsafeMutableBufferPointer<Float>.allocate(capacity: specs.map(\.count).max() ?? 1)
        defer { staging.deallocate() }
        var bound: [String: UnsafePointer<Float>] = [:], packed: [String: PackedWeight] = [:]
        var offset = 0
        for spec in specs {
            if let (N, K) = packedShape(spec) {
                let raw = UnsafeMutableBufferPointer(rebasing: staging[0..<spec.count])
                try fill(spec, raw)
                if spec.name == "up.expand.weight" {   // head order: each token's pixels come out channel-major
                    let ordered = headOrder(raw.baseAddress!, E: config.embedDim, P: config.patchSize)
                    _ = raw.update(from: ordered)
                }
                packed[spec.name] = PackedWeight(packing: raw.baseAddress!, N: N, K: K, into: arena + offset)
                offset += PackedWeight.floats(N: N, K: K)
            } else {
                try fill(spec, UnsafeMutableBufferPointer(start: arena + offset, count: spec.count))
                bound[spec.name] = UnsafePointer(arena + offset)
                offset += spec.count
            }
        }
        func t(_ name: String) -> UnsafePointer<Float> { bound[name]! }   // every spec name is bound above
        func tp(_ name: String) -> PackedWeight { packed[name]! }

        func stage(_ prefix: String, _ g: StageGeometry) -> Stage {
            let blocks = (0..<g.depth).map { j -> BlockWeights in
                let p = "\(prefix).blocks.\(j)."
                return BlockWeights(norm1W: t(p + "norm1.weight"), norm1B: t(p + "norm1.bias"),
                                    bias: t(p + "attn.relative_position_bias"),
                                    qkvW: tp(p + "attn.qkv.weight"), qkvB: t(p + "attn.qkv.bias"),
                                    projW: tp(p + "attn.proj.weight"), projB: t(p + "attn.proj.bias"),
                                    norm2W: t(p + "norm2.weight"), norm2B: t(p + "norm2.bias"),
                                    fc1W: tp(p + "mlp.fc1.weight"), fc1B: t(p + "mlp.fc1.bias"),
                                    fc2W: tp(p + "mlp.fc2.weight"), fc2B: t(p + "mlp.fc2.bias"))
            }
            guard g.shift > 0 else { return Stage(g: g, blocks: blocks, mask: nil, masked: []) }
            let (mask, masked) = WindowLayout(g, shift: g.shift).shiftedMask()
            let m = allocate(mask.count)
            mask.withUnsafeBufferPointer { m.update(from: $0.baseAddress!, count: mask.count) }
            return Stage(g: g, blocks: blocks, mask: UnsafePointer(m), masked: masked)
        }

        let L = config.numLayers
        embedW = tp("patch_embed.proj.weight"); embedB = t("patch_embed.proj.bias")
        embedNormW = t("patch_embed.norm.weight"); embedNormB = t("patch_embed.norm.bias")
        encoder = (0..<L).map { stage("layers.\($0)", config.stage($0)) }
        merges = (0..<(L - 1)).map { i in
            Resample(w: tp("layers.\(i).downsample.reduction.weight"),
                     normW: t("layers.\(i).downsample.norm.weight"), normB: t("layers.\(i).downsample.norm.bias"))
        }
        normW = t("norm.weight"); normB = t("norm.bias")
        decoder = (1..<L).map { stage("layers_up.\($0)", config.stage(L - 1 - $0)) }
        expands = (0..<(L - 1)).map { k in
            let p = k == 0 ? "layers_up.0." : "layers_up.\(k).upsample."
            return Resample(w: tp(p + "expand.weight"), normW: t(p + "norm.weight"), normB: t(p + "norm.bias"))
        }
        concatW = (1..<L).map { tp("concat_back_dim.\($0).weight") }
        concatB = (1..<L).map { t("concat_back_dim.\($0).bias") }
        normUpW = t("norm_up.weight"); normUpB = t("norm_up.bias")
        upW = tp("up.expand.weight"); upNormW = t("up.norm.weight"); upNormB = t("up.norm.bias")
        classW = t("output.weight")

        // Activations.
        let B = maxBatch
        let geo = (0..<L).map { config.stage($0) }
        skips = geo.map { allocate(B * $0.resolution * $0.resolution * $0.dim) }
        let mapFloats = geo.map { B * $0.resolution * $0.resolution * $0.dim }.max()!
        bufA = allocate(mapFloats)
        bufB = allocate(mapFloats)

        // Scratch per thread: attention scores, then the largest tile any operator asks for.
        let scores = geo.map { seg_attention_work_floats(Int32($0.tokensPerWindow), Int32($0.headDim)) }.max()!
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

    /// Logits (B, nc, H, W) of `batch` slices `input` (B, channels, H, W), H = W = imgSize.
    public func logits(_ input: UnsafeBufferPointer<Float>, batch: Int, channels: Int,
                       into out: UnsafeMutableBufferPointer<Float>) {
        let plane = config.imgSize * config.imgSize
        check(input, batch: batch, channels: channels)
        precondition(out.count >= batch * config.numClasses * plane, "logits buffer too small")
        run(input, batch: batch, channels: channels) { start, _ in
            .logits(out.baseAddress! + start * self.config.numClasses * plane)
        }
    }

    /// Argmax labels (B, H, W) and, if asked, softmax probabilities (B, nc, H, W) of `batch` slices.
    public func predict(_ input: UnsafeBufferPointer<Float>, batch: Int, channels: Int,
                        labels: UnsafeMutableBufferPointer<UInt8>, probabilities: UnsafeMutableBufferPointer<Float>?) {
        let plane = config.imgSize * config.imgSize, nc = config.numClasses
        check(input, batch: batch, channels: channels)
        precondition(labels.count >= batch * plane, "labels buffer too small")
        precondition(probabilities.map { $0.count >= batch * nc * plane } ?? true, "probabilities buffer too small")
        run(input, batch: batch, channels: channels) { start, _ in
            .labels(labels.baseAddress! + start * plane, probabilities: probabilities.map { $0.baseAddress! + start * nc * plane })
        }
    }

    private func check(_ input: UnsafeBufferPointer<Float>, batch: Int, channels: Int) {
        precondition(channels == config.inChans || (channels == 1 && config.inChans == 3),
                     "input has \(channels) channels; the model takes \(config.inChans)")
        precondition(batch >= 0 && input.count >= batch * channels * config.imgSize * config.imgSize, "input buffer too small")
    }

    /// Runs the batch in passes of at most maxBatch slices.
    private func run(_ input: UnsafeBufferPointer<Float>, batch: Int, channels: Int, output: (Int, Int) -> HeadOutput) {
        lock.lock(); defer { lock.unlock() }
        let fpState = seg_fp_flush_denormals()        // as on the pool's threads; the caller's state comes back after
        defer { seg_fp_restore(fpState) }
        let plane = config.imgSize * config.imgSize
        var start = 0
        while start < batch {
            let b = min(maxBatch, batch - start)
            forward(input.baseAddress! + start * channels * plane, batch: b, channels: channels, output: output(start, b))
            start += b
        }
    }

    // MARK: forward

    private func forward(_ input: UnsafePointer<Float>, batch B: Int, channels: Int, output: HeadOutput) {
        let cfg = config, L = cfg.numLayers, E = cfg.embedDim
        let pool = self.pool, scratch = self.scratch
        func observe(_ name: String, _ p: UnsafePointer<Float>, _ g: StageGeometry) {
            observer?(name, UnsafeBufferPointer(start: p, count: B * g.resolution * g.resolution * g.dim))
        }
        func blocks(_ stage: Stage, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
            var src = src
            for (j, w) in stage.blocks.enumerated() {
                let shift = stage.g.shift(ofBlock: j)
                swinBlock(src, dst, batch: B, stage.g, shift: shift, hidden: cfg.mlpHidden(stage.g.dim), w,
                          mask: shift > 0 ? stage.mask : nil, masked: stage.masked, pool: pool, scratch: scratch,
                          splitRows: blockSplitRows)
                src = UnsafePointer(dst)
            }
        }

        patchEmbed(input, batch: B, channels: channels, cfg, w: embedW, b: embedB, normW: embedNormW, normB: embedNormB,
                   out: skips[0], pool: pool, scratch: scratch)
        observe("patch_embed", skips[0], cfg.stage(0))

        // Encoder: stage i reads its skip (its input) and leaves its output in bufA.
        for i in 0..<L {
            let g = encoder[i].g
            blocks(encoder[i], skips[i], bufA)
            observe("encoder.\(i)", bufA, g)
            if i < L - 1 {
                patchMerging(bufA, batch: B, resolution: g.resolution, dim: g.dim, normW: merges[i].normW,
                             normB: merges[i].normB, reduction: merges[i].w, out: skips[i + 1], pool: pool, scratch: scratch)
            }
        }
        let bottom = encoder[L - 1].g
        layerNormRows(bufA, rows: B * bottom.resolution * bottom.resolution, dim: bottom.dim, w: normW, b: normB, pool: pool)
        observe("bottleneck", bufA, bottom)

        // Decoder: x holds each step's input, y its working map.
        let x = bufB, y = bufA
        patchExpand(bufA, batch: B, resolution: bottom.resolution, dim: bottom.dim, expand: expands[0].w,
                    normW: expands[0].normW, normB: expands[0].normB, out: x, pool: pool, scratch: scratch)
        observe("decoder.0", x, cfg.stage(L - 2))
        for k in 1..<L {
            let stage = decoder[k - 1], g = stage.g
            concatBack(x, skips[L - 1 - k], rows: B * g.resolution * g.resolution, dim: g.dim,
                       w: concatW[k - 1], b: concatB[k - 1], out: y, pool: pool)
            blocks(stage, y, y)
            if k < L - 1 {
                patchExpand(y, batch: B, resolution: g.resolution, dim: g.dim, expand: expands[k].w,
                            normW: expands[k].normW, normB: expands[k].normB, out: x, pool: pool, scratch: scratch)
                observe("decoder.\(k)", x, cfg.stage(L - 2 - k))
            } else {
                observe("decoder.\(k)", y, g)
            }
        }
        let top = cfg.stage(0)
        layerNormRows(y, rows: B * top.resolution * top.resolution, dim: E, w: normUpW, b: normUpB, pool: pool)
        observe("norm_up", y, top)

        let plane = cfg.imgSize * cfg.imgSize
        var features: UnsafeMutablePointer<Float>? = nil
        if observer != nil { features = .allocate(capacity: B * plane * E) }
        defer { features?.deallocate() }
        outputHead(y, batch: B, cfg, expand: upW, normW: upNormW, normB: upNormB, classW: classW,
                   output: output, features: features, pool: pool, scratch: scratch)
        if let features { observer?("up", UnsafeBufferPointer(start: features, count: B * plane * E)) }
        if case .logits(let out) = output {
            observer?("logits", UnsafeBufferPointer(start: out, count: B * cfg.numClasses * plane))
        }
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
