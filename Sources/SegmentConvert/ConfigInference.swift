// The Swin-UNet configuration read from the tensor shapes, checked against the flags the user gave.
//
//   patch_embed.proj.weight (E, in_chans, P, P)                 embed_dim, in_chans, patch_size
//   output.weight (num_classes, E, 1, 1)                         num_classes
//   layers.i.blocks.j.*                                           depths (blocks per stage), number of stages
//   layers.i.blocks.0.attn.relative_position_bias_table (T, h)   heads; stage window ws_i = (sqrt(T) + 1) / 2
//   layers.0.blocks.0.mlp.fc1.weight (hidden, E)                 mlp_ratio = hidden / E
//   window_size = max ws_i (a stage whose grid is smaller than the window runs with window = grid)
//   img_size, from any of: mask_token (1, L, E): sqrt(L) * P; a shifted block's attn_mask (nW, N, N) in stage s:
//     sqrt(nW) * ws_s * 2^s * P; a stage whose window is below the largest: ws_s * 2^s * P; else --img-size.
import SegmentFormat

/// Configuration flags: nil means "read it from the checkpoint"; a value must agree with the checkpoint.
public struct ConfigFlags: Equatable, Sendable {
    public var imgSize: Int?
    public var embedDim: Int?
    public var depths: [Int]?
    public var numHeads: [Int]?
    public var windowSize: Int?
    public var numClasses: Int?
    public var inChans: Int?
    public init(imgSize: Int? = nil, embedDim: Int? = nil, depths: [Int]? = nil, numHeads: [Int]? = nil,
                windowSize: Int? = nil, numClasses: Int? = nil, inChans: Int? = nil) {
        self.imgSize = imgSize; self.embedDim = embedDim; self.depths = depths; self.numHeads = numHeads
        self.windowSize = windowSize; self.numClasses = numClasses; self.inChans = inChans
    }
}

func shapeText(_ s: [Int]) -> String { "(" + s.map(String.init).joined(separator: ", ") + (s.count == 1 ? ",)" : ")") }
func listText(_ v: [Int]) -> String { v.map(String.init).joined(separator: ",") }

/// The stage a block prefix belongs to: `layers.i.blocks.j.` is stage i, `layers_up.k.blocks.j.` stage L-1-k.
/// Returns (stage, j), or nil for a name that is not inside a block.
/// Returns (stage, j), or nil for a name that is not inside a block of stages 0..<L.
func blockPosition(_ name: String, stages L: Int) -> (stage: Int, block: Int)? {
    let parts = name.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count >= 5, parts[2] == "blocks", let k = index(parts[1]), let j = index(parts[3]), k < L else { return nil }
    if parts[0] == "layers" { return (k, j) }
    if parts[0] == "layers_up" { return (L - 1 - k, j) }
    return nil
}

/// A module index as PyTorch writes it in a key ("0", "12"): decimal digits only, no sign or leading zero, so
/// every key names one index and "layers.-1" or "layers.+0" match nothing.
func index(_ part: Substring) -> Int? {
    let digits = part.utf8
    guard (1...9).contains(digits.count), digits.allSatisfy({ (0x30...0x39).contains($0) }), digits.count == 1 || digits.first != 0x30 else { return nil }
    return Int(part)
}

func integerSquareRoot(_ n: Int) -> Int? {
    guard n >= 0 else { return nil }
    // The root of any Int is below 2^32, so r * r never overflows once r is clamped to that.
    var r = min(Int(Double(n).squareRoot()), 3_037_000_499)
    while r * r > n { r -= 1 }
    while r < 3_037_000_499 && (r + 1) * (r + 1) <= n { r += 1 }
    return r * r == n ? r : nil
}

extension SwinStateDict {
    /// Limits that keep every size computed from a hostile file far from overflow (Swin-UNets use 4 stages,
    /// windows of 7 to 16).
    static let maxStages = 8
    static let maxWindow = 64
    /// Blocks per stage (Swin-L has 18): bounds the tensor list built from the configuration.
    static let maxBlocks = 64
    /// Input side in pixels (AdvMIM trains at 224).
    static let maxImageSize = 1 << 16

    func inferConfig(flags: ConfigFlags, path: String) throws -> SwinUNetConfig {
        func tensor(_ key: String) throws -> SourceTensor {
            guard let t = tensors[key] else {
                throw ConvertError.missingKeys(path: path, keys: [key], closest: [closest(to: key, in: order)], total: 1)
            }
            return t
        }
        func evidence(_ key: String) -> String { "\(key) \(shapeText(tensors[key]?.shape ?? []))" }
        func confirm(_ flag: String, _ given: Int?, _ found: Int, _ what: String, _ evidence: String) throws {
            if let given, given != found {
                throw ConvertError.configMismatch(path: path, flag: flag, flagValue: "\(given)", checkpointValue: "\(what) \(found)", evidence: evidence)
            }
        }

        if let given = flags.imgSize, given > Self.maxImageSize {
            throw ConvertError.badOption(flag: "--img-size", reason: "gives \(given) for checkpoint \(path), beyond the largest input convert builds a model for (\(Self.maxImageSize))")
        }
        let pe = try tensor("patch_embed.proj.weight")
        guard pe.shape.count == 4, pe.shape[2] == pe.shape[3], pe.shape[2] > 0, pe.shape[0] > 0 else {
            throw ConvertError.inconsistent(path: path, reason: "\(evidence("patch_embed.proj.weight")) is not a patch embedding (embed_dim, in_chans, P, P)")
        }
        let E = pe.shape[0], inChans = pe.shape[1], P = pe.shape[2]
        let head = try tensor("output.weight")
        guard head.shape.count == 4, head.shape[1] == E, head.shape[2] == 1, head.shape[3] == 1 else {
            throw ConvertError.inconsistent(path: path, reason: "\(evidence("output.weight")) is not a 1x1 head on \(E) channels")
        }
        let numClasses = head.shape[0]

        // Stages and blocks, from the key names: stage i exists when a key starts with layers.i., and has the blocks
        // layers.i.blocks.0. ... up to the first missing one. One pass over the keys (a file may hold millions).
        var stagesSeen = Set<Int>(), blocksSeen = Set<[Int]>()
        for key in order where key.hasPrefix("layers.") {
            let parts = key.split(separator: ".", maxSplits: 4, omittingEmptySubsequences: false)
            guard parts.count >= 3, let i = index(parts[1]) else { continue }
            stagesSeen.insert(i)
            if parts.count >= 5, parts[2] == "blocks", let j = index(parts[3]) { blocksSeen.insert([i, j]) }
        }
        var depths: [Int] = []
        while stagesSeen.contains(depths.count) {
            guard depths.count < Self.maxStages else {
                throw ConvertError.invalidConfig(path: path, problems: ["it has more than \(Self.maxStages) stages (layers.0 ... layers.\(Self.maxStages) and on); a Swin-UNet has at most \(Self.maxStages)"])
            }
            var j = 0
            while blocksSeen.contains([depths.count, j]) { j += 1 }
            guard j <= Self.maxBlocks else {
                throw ConvertError.invalidConfig(path: path, problems: ["stage \(depths.count) has \(j) blocks (layers.\(depths.count).blocks.0 ... \(j - 1)); convert supports up to \(Self.maxBlocks) per stage"])
            }
            depths.append(j)
        }
        guard !depths.isEmpty else {
            throw ConvertError.missingKeys(path: path, keys: ["layers.0.blocks.0.norm1.weight"], closest: [""], total: 1)
        }

        // Heads and windows, from each stage's first bias table.
        var heads: [Int] = [], windows: [Int] = []
        for i in depths.indices {
            let key = "layers.\(i).blocks.0.attn.relative_position_bias_table"
            let table = try tensor(key)
            guard table.shape.count == 2, let side = integerSquareRoot(table.shape[0]), side % 2 == 1, table.shape[1] > 0 else {
                throw ConvertError.inconsistent(path: path, reason: "\(evidence(key)) is not a ((2*window-1)^2, heads) table")
            }
            guard (side + 1) / 2 <= Self.maxWindow else {
                throw ConvertError.invalidConfig(path: path, problems: ["\(evidence(key)) means window \((side + 1) / 2); convert supports windows up to \(Self.maxWindow)"])
            }
            heads.append(table.shape[1]); windows.append((side + 1) / 2)
        }
        let largestWindow = windows.max()!

        let fc1Key = "layers.0.blocks.0.mlp.fc1.weight"
        let fc1 = try tensor(fc1Key)
        guard fc1.shape.count == 2, fc1.shape[1] == E, fc1.shape[0] > 0 else {
            throw ConvertError.inconsistent(path: path, reason: "\(evidence(fc1Key)) is not an MLP layer on \(E) channels")
        }
        let mlpRatio = Double(fc1.shape[0]) / Double(E)

        // img_size: every source that tells it must agree. Its factors come from shapes (P from a patch embedding
        // that may be empty, so unbounded): multiplied with overflow checks.
        func imageSize(_ factors: [Int], _ why: String) throws -> Int {
            var size = 1
            for f in factors {
                let (p, overflow) = size.multipliedReportingOverflow(by: f)
                guard !overflow, p <= Self.maxImageSize else {
                    throw ConvertError.invalidConfig(path: path, problems: ["\(why) means an img_size beyond \(Self.maxImageSize)"])
                }
                size = p
            }
            return size
        }
        var sizes: [(img: Int, evidence: String)] = []
        if let token = maskToken {
            guard token.shape.count == 3, token.shape[0] == 1, token.shape[2] == E, let side = integerSquareRoot(token.shape[1]) else {
                throw ConvertError.inconsistent(path: path, reason: "mask_token \(shapeText(token.shape)) is not (1, tokens, \(E)) with a square token grid")
            }
            try sizes.append((imageSize([side, P], "mask_token \(shapeText(token.shape))"), "mask_token \(shapeText(token.shape))"))
        }
        for key in order where key.hasSuffix(".attn_mask") {
            guard let (s, _) = blockPosition(key, stages: depths.count), s >= 0, s < depths.count else { continue }   // an unknown key, reported later
            let t = tensors[key]!, N = windows[s] * windows[s]
            guard t.shape.count == 3, t.shape[1] == N, t.shape[2] == N, let side = integerSquareRoot(t.shape[0]) else {
                throw ConvertError.inconsistent(path: path, reason: "\(evidence(key)) is not (windows, \(N), \(N)) with a square grid of windows, as the stage's window \(windows[s]) needs")
            }
            try sizes.append((imageSize([side, windows[s], 1 << s, P], evidence(key)), evidence(key)))
        }
        for (s, ws) in windows.enumerated() where ws < largestWindow {
            let why = "\(evidence("layers.\(s).blocks.0.attn.relative_position_bias_table")), a stage of one \(ws)x\(ws) window"
            try sizes.append((imageSize([ws, 1 << s, P], why), why))
        }
        if let a = sizes.first, let b = sizes.first(where: { $0.img != a.img }) {
            throw ConvertError.inconsistent(path: path, reason: "\(a.evidence) means img_size \(a.img) but \(b.evidence) means \(b.img)")
        }

        try confirm("--embed-dim", flags.embedDim, E, "embed_dim", evidence("patch_embed.proj.weight"))
        try confirm("--in-chans", flags.inChans, inChans, "in_chans", evidence("patch_embed.proj.weight"))
        try confirm("--num-classes", flags.numClasses, numClasses, "num_classes", evidence("output.weight"))
        if let given = flags.depths, given != depths {
            throw ConvertError.configMismatch(path: path, flag: "--depths", flagValue: listText(given), checkpointValue: "depths \(listText(depths))",
                                              evidence: "blocks counted under layers.0 ... layers.\(depths.count - 1)")
        }
        if let given = flags.numHeads, given != heads {
            throw ConvertError.configMismatch(path: path, flag: "--heads", flagValue: listText(given), checkpointValue: "heads \(listText(heads))",
                                              evidence: "the second dimension of each stage's relative_position_bias_table")
        }
        let imgSize: Int
        if let found = sizes.first {
            try confirm("--img-size", flags.imgSize, found.img, "img_size", found.evidence)
            imgSize = found.img
        } else if let given = flags.imgSize {
            imgSize = given
        } else {
            throw ConvertError.needsFlag(path: path, flag: "--img-size (224 for AdvMIM's ACDC, Synapse and ISIC models)",
                                         reason: "it has no attn_mask or mask_token to read img_size from")
        }

        let config = SwinUNetConfig(imgSize: imgSize, patchSize: P, inChans: inChans, numClasses: numClasses, embedDim: E,
                                    depths: depths, numHeads: heads, windowSize: flags.windowSize ?? largestWindow, mlpRatio: mlpRatio)
        // The window each stage runs with must be the one its bias table was trained with.
        for (s, ws) in windows.enumerated() where config.stage(s).window != ws {
            let key = "layers.\(s).blocks.0.attn.relative_position_bias_table"
            let found = "window \(ws) in stage \(s), where the flags give \(config.stage(s).window)"
            if let w = flags.windowSize {
                throw ConvertError.configMismatch(path: path, flag: "--window", flagValue: "\(w)", checkpointValue: found, evidence: evidence(key))
            }
            if sizes.isEmpty {
                throw ConvertError.configMismatch(path: path, flag: "--img-size", flagValue: "\(imgSize)", checkpointValue: found, evidence: evidence(key))
            }
            throw ConvertError.inconsistent(path: path, reason: "\(evidence(key)) means window \(ws), but img_size \(imgSize) gives stage \(s) a window of \(config.stage(s).window)")
        }
        let problems = config.problems()
        guard problems.isEmpty else { throw ConvertError.invalidConfig(path: path, problems: problems) }
        return config
    }
}
