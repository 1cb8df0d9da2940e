// The converter: checkpoint -> checked Swin-UNet state_dict -> model-file tensors -> model file.
//
//   1. open the checkpoint (Checkpoint.swift: container, restricted unpickler, state_dict, tensor bytes)
//   2. strip module./swin_unet., drop AdvMIM's training-only keys (StateDict.swift)
//   3. infer the configuration, check the flags against it (ConfigInference.swift)
//   4. check the key set and every shape against the configuration (missing / unknown keys named)
//   5. check relative_position_index and attn_mask against their definitions (SwinBuffers.swift)
//   6. rewrite: dense relative-position bias, q rows scaled by head_dim^-0.5 (float32)
//   7. write metadata + tensors with ModelFileWriter (names and shapes checked again, atomic write)
import Foundation
import SegmentCore
import SegmentFormat

public struct ConvertOptions: Sendable {
    public var config = ConfigFlags()
    /// Class names, background first; nil gives background, class1, class2 ...
    public var classNames: [String]?
    public var preprocessing = Preprocessing()
    public var provenance: [String: String] = [:]
    /// Codes of foreground classes (`--class-code`), stored as `general.class_codes`.
    public var classCodes: [ClassCode] = []
    public var dtype: DType = .f32
    /// Recorded in the model file (`general.converter_version`).
    public var converterVersion = ""
    /// Replace an existing output file.
    public var overwrite = false
    public init() {}
}

/// What a conversion did, for the command's summary.
public struct ConvertReport: Sendable {
    public let format: Checkpoint.Format
    public let nesting: String
    public let sha256: String
    public let metadata: ModelMetadata
    /// Names (as saved) of the training-only tensors dropped.
    public let dropped: [String]
    public let tensorCount: Int
    public let parameterCount: Int
}

/// A checkpoint whose tensors passed every check: the model-file tensors are computed from it one at a time.
public struct ConvertedModel {
    public let checkpoint: Checkpoint
    public let config: SwinUNetConfig
    public let dropped: [String]
    let stateDict: SwinStateDict

    /// Step 6: calls `body` with every tensor of `config.expectedTensors()`, in that order, as float32 (the dense
    /// bias gathered, the q rows scaled). One tensor is alive at a time.
    public func forEachTensor(_ body: (TensorSpec, [Float]) throws -> Void) throws {
        let L = config.numLayers
        func floats(_ key: String) throws -> [Float] {
            let t = stateDict.tensors[key]!, saved = stateDict.saved[key] ?? key
            guard let v = t.floats() else { throw ConvertError.unsupportedDType(path: checkpoint.path, tensor: saved, dtype: t.type.rawValue) }
            // Weights must be finite: one NaN or inf (training diverged, or the file is damaged) spreads through
            // every output. Checked on the values about to be written, once per source tensor; a float64 value
            // beyond float32's range becomes inf here and is refused the same way.
            if let i = v.firstIndex(where: { !$0.isFinite }) {
                let stored = t.storedValue(ofElement: i) ?? Double(v[i])
                throw ConvertError.nonFinite(path: checkpoint.path, tensor: saved, index: t.index(ofElement: i),
                                             value: stored.isNaN ? "NaN" : "\(stored)", narrowed: stored.isFinite)
            }
            return v
        }
        for spec in config.expectedTensors() {
            let name = spec.name
            if name.hasSuffix(".attn.relative_position_bias") {
                let block = String(name.dropLast("attn.relative_position_bias".count))
                let g = config.stage(blockPosition(block, stages: L)!.stage)
                let table = try floats(block + "attn.relative_position_bias_table")
                try body(spec, SwinBuffers.denseBias(table: table, heads: g.heads, index: SwinBuffers.relativePositionIndex(window: g.window)))
            } else if name.hasSuffix(".attn.qkv.weight") || name.hasSuffix(".attn.qkv.bias") {
                let g = config.stage(blockPosition(name, stages: L)!.stage)
                var v = try floats(name)
                SwinBuffers.scaleQ(&v, channels: g.dim, rowLength: spec.shape.count == 2 ? g.dim : 1, scale: SwinBuffers.qScale(headDim: g.headDim))
                try body(spec, v)
            } else {
                try body(spec, try floats(name))
            }
        }
    }
}

extension DType {
    /// `value` (finite) rounds to a finite value of this storage type.
    func holds(_ value: Float) -> Bool {
        switch self {
        case .f32: return true
        case .f16: return HalfFloat.f16Bits(value) & 0x7FFF < 0x7C00
        case .bf16: return HalfFloat.bf16Bits(value) & 0x7FFF < 0x7F80
        }
    }
}

public enum Converter {
    /// The largest model built: 2^28 values (1 GiB as float32), ten times Swin-T.
    static let maxValues = 1 << 28

    /// Steps 2-5: every check, from the opened checkpoint to the tensors the model file needs.
    public static func prepare(_ checkpoint: Checkpoint, flags: ConfigFlags) throws -> ConvertedModel {
        let path = checkpoint.path
        let sd = try SwinStateDict(checkpoint)
        let config = try sd.inferConfig(flags: flags, path: path)
        let L = config.numLayers
        let specs = config.expectedTensors()

        // Expected checkpoint keys: the spec's names, except that each dense bias comes from a bias table, plus the
        // optional buffers (relative_position_index per block, attn_mask per shifted block).
        var required: [(key: String, shape: [Int])] = [], optional: [(key: String, shape: [Int])] = []
        for spec in specs {
            guard spec.name.hasSuffix(".attn.relative_position_bias") else { required.append((spec.name, spec.shape)); continue }
            let block = String(spec.name.dropLast("attn.relative_position_bias".count))
            let (s, j) = blockPosition(block, stages: L)!
            let g = config.stage(s), N = g.tokensPerWindow
            required.append((block + "attn.relative_position_bias_table", [(2 * g.window - 1) * (2 * g.window - 1), g.heads]))
            optional.append((block + "attn.relative_position_index", [N, N]))
            if g.shift(ofBlock: j) > 0 { optional.append((block + "attn_mask", [g.windowsPerImage, N, N])) }
        }
        let expectedShape = Dictionary(uniqueKeysWithValues: (required + optional).map { ($0.key, $0.shape) })
        let unknown = sd.order.filter { expectedShape[$0] == nil }
        if !unknown.isEmpty {
            let shown = Array(unknown.prefix(5))
            throw ConvertError.unknownKeys(path: path, keys: shown, closest: shown.map { closest(to: $0, in: required.map(\.key)) }, total: unknown.count)
        }
        let missing = required.map(\.key).filter { sd.tensors[$0] == nil }
        if !missing.isEmpty {
            let shown = Array(missing.prefix(5))
            throw ConvertError.missingKeys(path: path, keys: shown, closest: shown.map { _ in "" }, total: missing.count)
        }
        for key in sd.order where sd.tensors[key]!.shape != expectedShape[key]! {
            throw ConvertError.wrongShape(path: path, key: key, expected: expectedShape[key]!, found: sd.tensors[key]!.shape)
        }
        // The dense biases are the only tensors larger than their source (heads x N x N from a (2ws-1)^2 table):
        // bound the model before anything is allocated for it.
        var total = 0
        for spec in specs {
            let (count, o1) = spec.shape.reduce((1, false)) { acc, n in
                let (p, o) = acc.0.multipliedReportingOverflow(by: n); return (p, acc.1 || o)
            }
            let (sum, o2) = total.addingReportingOverflow(count)
            guard !o1, !o2, sum <= Self.maxValues else {
                throw ConvertError.invalidConfig(path: path, problems: ["its model would hold more than \(Self.maxValues) values (27 million for Swin-T); refusing to build it"])
            }
            total = sum
        }

        for (key, _) in required where !sd.tensors[key]!.type.isFloatingPoint {
            throw ConvertError.unsupportedDType(path: path, tensor: key, dtype: sd.tensors[key]!.type.rawValue)
        }
        try checkBuffers(sd, config, path)
        return ConvertedModel(checkpoint: checkpoint, config: config, dropped: sd.dropped, stateDict: sd)
    }

    /// Step 5: the checkpoint's copies of the geometry buffers must equal their definitions.
    static func checkBuffers(_ sd: SwinStateDict, _ config: SwinUNetConfig, _ path: String) throws {
        var indexByWindow: [Int: [Int64]] = [:]
        for key in sd.order where key.hasSuffix(".attn.relative_position_index") || key.hasSuffix(".attn_mask") {
            let t = sd.tensors[key]!
            let (s, j) = blockPosition(key, stages: config.numLayers)!
            let g = config.stage(s), N = g.tokensPerWindow
            if key.hasSuffix(".attn.relative_position_index") {
                guard let stored = t.int64s() else {
                    throw ConvertError.bufferMismatch(path: path, key: key, reason: "has dtype \(t.type.rawValue), not int64")
                }
                if indexByWindow[g.window] == nil { indexByWindow[g.window] = SwinBuffers.relativePositionIndex(window: g.window) }
                let defined = indexByWindow[g.window]!
                if let p = stored.indices.first(where: { stored[$0] != defined[$0] }) {
                    throw ConvertError.bufferMismatch(path: path, key: key, reason: "holds \(stored[p]) at [\(p / N), \(p % N)] where its definition for window \(g.window) gives \(defined[p])")
                }
            } else {
                guard let stored = t.floats() else {
                    throw ConvertError.bufferMismatch(path: path, key: key, reason: "has dtype \(t.type.rawValue), not a float type")
                }
                let defined = SwinBuffers.attentionMask(resolution: g.resolution, window: g.window, shift: g.shift(ofBlock: j))
                if let p = stored.indices.first(where: { stored[$0] != defined[$0] }) {
                    throw ConvertError.bufferMismatch(path: path, key: key, reason: "holds \(stored[p]) at [\(p / (N * N)), \(p / N % N), \(p % N)] where the shifted-window mask of a \(g.resolution)x\(g.resolution) grid (window \(g.window), shift \(g.shift)) has \(defined[p])")
                }
            }
        }
    }

    /// The whole conversion: checks the output path, reads and checks the checkpoint, writes the model file.
    public static func convert(checkpoint path: String, to output: String, options: ConvertOptions) throws -> ConvertReport {
        try checkOutput(output, input: path, overwrite: options.overwrite)
        let checkpoint = try Checkpoint.open(path)
        let model = try prepare(checkpoint, flags: options.config)
        let config = model.config

        let names = options.classNames ?? ["background"] + (1..<max(config.numClasses, 1)).map { "class\($0)" }
        guard names.count == config.numClasses else {
            throw ConvertError.badOption(flag: "--classes", reason: "gives \(names.count) names but checkpoint \(path) has \(config.numClasses) classes (output.weight); give \(config.numClasses) names, background first")
        }
        if options.preprocessing.channels == .rgb && config.inChans != 3 {
            throw ConvertError.badOption(flag: "--channels rgb", reason: "checkpoint \(path) takes \(config.inChans) input channel(s); use --channels gray")
        }
        if let p = ClassCode.problem(options.classCodes, numClasses: config.numClasses) {
            throw ConvertError.badOption(flag: "--class-code", reason: p + " (checkpoint \(path) has \(config.numClasses) classes)")
        }
        let metadata = ModelMetadata(config: config, preprocessing: options.preprocessing, classNames: names,
                                     sourceSHA256: checkpoint.sha256, converterVersion: options.converterVersion,
                                     provenance: options.provenance, classCodes: options.classCodes)
        var writer = ModelFileWriter(metadata: metadata)
        try model.forEachTensor { spec, values in
            // Finite float32 values beyond the range of --dtype f16/bf16 would be stored as inf: the flag, not the
            // checkpoint, is at fault (f32 holds them).
            if let i = values.firstIndex(where: { !options.dtype.holds($0) }) {
                throw ConvertError.badOption(flag: "--dtype \(options.dtype.rawValue)", reason: "checkpoint \(path): \(spec.name) holds \(values[i]), beyond the range of \(options.dtype.rawValue) (largest \(options.dtype == .f16 ? "65504" : "3.39e38")); store the model with --dtype f32")
            }
            try writer.add(spec.name, shape: spec.shape, values: values, dtype: options.dtype)
        }
        try writer.write(to: output)
        let specs = config.expectedTensors()
        return ConvertReport(format: checkpoint.format, nesting: checkpoint.nesting, sha256: checkpoint.sha256, metadata: metadata,
                             dropped: model.dropped, tensorCount: specs.count, parameterCount: specs.reduce(0) { $0 + $1.count })
    }

    /// True when `path` starts with the model file's magic "SEGM" (a model file, not a checkpoint).
    public static func isModelFile(_ path: String) -> Bool {
        // Never open a FIFO or device to look (it would block or never end): the checkpoint reader refuses those.
        guard notARegularFile(path) == nil, let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        return (try? h.read(upToCount: 4)) == Data("SEGM".utf8)
    }

    /// Re-writes model file `path` to `output` with `classCodes` as its class codes: the tensors (in their stored
    /// dtypes, so bit for bit) and every other metadata value are kept; the checksum is computed anew. How a model
    /// converted before class codes existed gains them without its checkpoint.
    public static func recode(model path: String, to output: String, classCodes: [ClassCode], orientation: String? = nil,
                              overwrite: Bool) throws -> ModelMetadata {
        try checkOutput(output, input: path, overwrite: overwrite)
        let model = try ModelFile.open(path)
        var metadata = model.metadata
        if !classCodes.isEmpty {
            if let p = ClassCode.problem(classCodes, numClasses: metadata.config.numClasses) {
                throw ConvertError.badOption(flag: "--class-code", reason: p + " (model \(path) has \(metadata.config.numClasses) classes)")
            }
            metadata.classCodes = classCodes.sorted { $0.label < $1.label }
        }
        if let orientation {
            // The same validation as a checkpoint's conversion: three axis codes, one of each pair.
            let pp = metadata.preprocessing
            switch Preprocessing.validated(channels: pp.channels.rawValue, intensity: pp.intensity.rawValue, windowLo: pp.windowLo,
                                           windowHi: pp.windowHi, sliceAxis: pp.sliceAxis, rowAxis: pp.rowAxis, colAxis: pp.colAxis,
                                           orientation: orientation, imageOrder: pp.imageOrder.rawValue,
                                           labelOrder: pp.labelOrder.rawValue, inChans: metadata.config.inChans) {
            case .success(let p): metadata.preprocessing = p
            case .failure(let problem): throw ConvertError.badOption(flag: "--orientation", reason: "\(problem.key) \(problem.reason)")
            }
        }
        var writer = ModelFileWriter(metadata: metadata)
        for t in model.tensors {   // f16 and bf16 values widen to Float exactly and narrow back to the same bits
            try writer.add(t.name, shape: t.shape, values: try model.floats(t.name), dtype: t.dtype)
        }
        try writer.write(to: output)
        return metadata
    }

    /// The output must not be the input (even with --overwrite), must not exist unless `overwrite`, and its folder
    /// must be writable: checked before any work.
    static func checkOutput(_ output: String, input: String, overwrite: Bool) throws {
        var o = stat(), i = stat()
        if stat(output, &o) == 0 {
            if stat(input, &i) == 0 && o.st_dev == i.st_dev && o.st_ino == i.st_ino { throw ConvertError.outputIsInput(path: output) }
            if !overwrite { throw ConvertError.outputExists(path: output) }
        }
        let folder = URL(fileURLWithPath: output).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ConvertError.outputFolder(path: output, reason: "its folder \(folder) does not exist")
        }
        guard access(folder, W_OK) == 0 else {
            throw ConvertError.outputFolder(path: output, reason: "its folder \(folder) is not writable")
        }
    }
}
