// The typed metadata of a model file and its key/value form (docs/FORMAT.md, "Metadata keys").

/// Everything a model file says about itself besides the tensors.
public struct ModelMetadata: Equatable, Codable, Sendable {
    public var config: SwinUNetConfig
    public var preprocessing: Preprocessing
    public var classNames: [String]              // count == config.numClasses, [0] is background
    public var sourceSHA256: String              // sha256 hex of the source checkpoint ("" if none)
    public var converterVersion: String
    public var provenance: [String: String]      // training data, split, recipe, seed, iterations ... (may be empty)
    public var classCodes: [ClassCode]           // codes of foreground classes, sorted by label (optional key: may be empty)

    public init(config: SwinUNetConfig, preprocessing: Preprocessing = .init(), classNames: [String],
                sourceSHA256: String = "", converterVersion: String = "", provenance: [String: String] = [:],
                classCodes: [ClassCode] = []) {
        self.config = config; self.preprocessing = preprocessing; self.classNames = classNames
        self.sourceSHA256 = sourceSHA256; self.converterVersion = converterVersion; self.provenance = provenance
        self.classCodes = classCodes.sorted { $0.label < $1.label }
    }

    /// The codes of class `label`, or nil when the model file gives none.
    public func codes(of label: Int) -> ClassCode? { classCodes.first { $0.label == label } }

    /// The value of `general.architecture`: the only architecture this format version describes.
    public static let architecture = "swin-unet"
}

/// The metadata keys, in the order the writer stores them (provenance.* last, sorted).
enum MetadataKey {
    static let architecture = "general.architecture"
    static let classNames = "general.class_names"
    static let classCodes = "general.class_codes"   // optional: absent when no class has codes
    static let sourceSHA256 = "general.source_sha256"
    static let converterVersion = "general.converter_version"
    static let imgSize = "swin_unet.img_size", patchSize = "swin_unet.patch_size", inChans = "swin_unet.in_chans"
    static let numClasses = "swin_unet.num_classes", embedDim = "swin_unet.embed_dim", depths = "swin_unet.depths"
    static let numHeads = "swin_unet.num_heads", windowSize = "swin_unet.window_size", mlpRatio = "swin_unet.mlp_ratio"
    static let channels = "preprocessing.channels", intensity = "preprocessing.intensity"
    static let windowLo = "preprocessing.window_lo", windowHi = "preprocessing.window_hi"
    static let sliceAxis = "preprocessing.slice_axis", rowAxis = "preprocessing.row_axis", colAxis = "preprocessing.col_axis"
    static let orientation = "preprocessing.orientation"
    static let imageOrder = "preprocessing.image_order", labelOrder = "preprocessing.label_order"
    static let provenancePrefix = "provenance."

    /// Every required key and its value type.
    static let required: [(key: String, type: UInt32)] = [
        (architecture, 3), (classNames, 5), (sourceSHA256, 3), (converterVersion, 3),
        (imgSize, 1), (patchSize, 1), (inChans, 1), (numClasses, 1), (embedDim, 1), (depths, 4), (numHeads, 4),
        (windowSize, 1), (mlpRatio, 2),
        (channels, 3), (intensity, 3), (windowLo, 2), (windowHi, 2), (sliceAxis, 1), (rowAxis, 1), (colAxis, 1),
        (orientation, 3), (imageOrder, 1), (labelOrder, 1),
    ]
}

extension ModelMetadata {
    /// The key/value entries stored in the file, in order.
    func entries() -> [(key: String, value: MetadataValue)] {
        let c = config, p = preprocessing
        var e: [(key: String, value: MetadataValue)] = [
            (MetadataKey.architecture, .string(Self.architecture)),
            (MetadataKey.classNames, .strings(classNames)),
        ]
        if !classCodes.isEmpty { e.append((MetadataKey.classCodes, .string(ClassCode.json(classCodes)))) }
        e += [
            (MetadataKey.sourceSHA256, .string(sourceSHA256)),
            (MetadataKey.converterVersion, .string(converterVersion)),
            (MetadataKey.imgSize, .int(Int64(c.imgSize))), (MetadataKey.patchSize, .int(Int64(c.patchSize))),
            (MetadataKey.inChans, .int(Int64(c.inChans))), (MetadataKey.numClasses, .int(Int64(c.numClasses))),
            (MetadataKey.embedDim, .int(Int64(c.embedDim))),
            (MetadataKey.depths, .ints(c.depths.map(Int64.init))), (MetadataKey.numHeads, .ints(c.numHeads.map(Int64.init))),
            (MetadataKey.windowSize, .int(Int64(c.windowSize))), (MetadataKey.mlpRatio, .float(c.mlpRatio)),
            (MetadataKey.channels, .string(p.channels.rawValue)), (MetadataKey.intensity, .string(p.intensity.rawValue)),
            (MetadataKey.windowLo, .float(p.windowLo)), (MetadataKey.windowHi, .float(p.windowHi)),
            (MetadataKey.sliceAxis, .int(Int64(p.sliceAxis))), (MetadataKey.rowAxis, .int(Int64(p.rowAxis))),
            (MetadataKey.colAxis, .int(Int64(p.colAxis))), (MetadataKey.orientation, .string(p.orientation)),
            (MetadataKey.imageOrder, .int(Int64(p.imageOrder.rawValue))), (MetadataKey.labelOrder, .int(Int64(p.labelOrder.rawValue))),
        ]
        for k in provenance.keys.sorted() { e.append((MetadataKey.provenancePrefix + k, .string(provenance[k]!))) }
        return e
    }

    /// Decodes the entries read from `path`: every required key present with its type, no unknown key, no
    /// duplicate. Value checks are `problem()`'s and the config's `problems()`; the reader calls both after this.
    init(entries: [(key: String, value: MetadataValue)], path: String) throws {
        var values: [String: MetadataValue] = [:]
        var provenance: [String: String] = [:]
        let known = Dictionary(uniqueKeysWithValues: MetadataKey.required.map { ($0.key, $0.type) })
        for (key, value) in entries {
            guard values[key] == nil else { throw ModelFileError.badMetadata(path: path, key: key, reason: "appears twice") }
            values[key] = value
            if key.hasPrefix(MetadataKey.provenancePrefix) {
                guard key.count > MetadataKey.provenancePrefix.count else {
                    throw ModelFileError.badMetadata(path: path, key: key, reason: "has an empty name after \"provenance.\"")
                }
                guard case .string(let s) = value else {
                    throw ModelFileError.badMetadata(path: path, key: key, reason: "is a \(value.typeName), not a string")
                }
                provenance[String(key.dropFirst(MetadataKey.provenancePrefix.count))] = s
            } else if key == MetadataKey.classCodes {
                guard case .string = value else {
                    throw ModelFileError.badMetadata(path: path, key: key, reason: "is a \(value.typeName), not a string")
                }
            } else if let type = known[key] {
                guard value.typeCode == type else {
                    throw ModelFileError.badMetadata(path: path, key: key, reason: "is a \(value.typeName), not a \(MetadataValue.typeName(type))")
                }
            } else {
                throw ModelFileError.unknownMetadata(path: path, key: key)
            }
        }
        for (key, _) in MetadataKey.required where values[key] == nil {
            throw ModelFileError.missingMetadata(path: path, key: key)
        }
        // Types were checked above, so these extractions cannot fail.
        func int(_ k: String) -> Int { guard case .int(let v) = values[k]! else { preconditionFailure() }; return Int(v) }
        func ints(_ k: String) -> [Int] { guard case .ints(let v) = values[k]! else { preconditionFailure() }; return v.map { Int($0) } }
        func float(_ k: String) -> Double { guard case .float(let v) = values[k]! else { preconditionFailure() }; return v }
        func string(_ k: String) -> String { guard case .string(let v) = values[k]! else { preconditionFailure() }; return v }
        func strings(_ k: String) -> [String] { guard case .strings(let v) = values[k]! else { preconditionFailure() }; return v }

        let arch = string(MetadataKey.architecture)
        guard arch == Self.architecture else {
            throw ModelFileError.badMetadata(path: path, key: MetadataKey.architecture,
                                             reason: "is \"\(arch)\", but this segment runs \"\(Self.architecture)\" models only")
        }
        let config = SwinUNetConfig(
            imgSize: int(MetadataKey.imgSize), patchSize: int(MetadataKey.patchSize), inChans: int(MetadataKey.inChans),
            numClasses: int(MetadataKey.numClasses), embedDim: int(MetadataKey.embedDim),
            depths: ints(MetadataKey.depths), numHeads: ints(MetadataKey.numHeads),
            windowSize: int(MetadataKey.windowSize), mlpRatio: float(MetadataKey.mlpRatio))
        let p: Preprocessing
        switch Preprocessing.validated(
            channels: string(MetadataKey.channels), intensity: string(MetadataKey.intensity),
            windowLo: float(MetadataKey.windowLo), windowHi: float(MetadataKey.windowHi),
            sliceAxis: int(MetadataKey.sliceAxis), rowAxis: int(MetadataKey.rowAxis), colAxis: int(MetadataKey.colAxis),
            orientation: string(MetadataKey.orientation),
            imageOrder: int(MetadataKey.imageOrder), labelOrder: int(MetadataKey.labelOrder), inChans: config.inChans) {
        case .success(let valid): p = valid
        case .failure(let problem): throw ModelFileError.badMetadata(path: path, key: problem.key, reason: problem.reason)
        }
        var codes: [ClassCode] = []
        if case .string(let json)? = values[MetadataKey.classCodes] {
            guard let decoded = ClassCode.decode(json) else {
                throw ModelFileError.badMetadata(path: path, key: MetadataKey.classCodes,
                                                 reason: "is not a JSON array of {label, category, type} with codes of {value, scheme, meaning}")
            }
            codes = decoded
        }
        self.init(config: config, preprocessing: p, classNames: strings(MetadataKey.classNames),
                  sourceSHA256: string(MetadataKey.sourceSHA256), converterVersion: string(MetadataKey.converterVersion),
                  provenance: provenance, classCodes: codes)
    }

    /// The first value that a valid model file cannot hold, as (key, reason); nil when all are valid.
    /// The configuration's own checks are `config.problems()`, the preprocessing's `Preprocessing.validated`.
    func problem() -> (key: String, reason: String)? {
        let c = config
        if classNames.count != c.numClasses {
            return (MetadataKey.classNames, "has \(classNames.count) names but num_classes is \(c.numClasses)")
        }
        if let i = classNames.firstIndex(where: { $0.isEmpty }) { return (MetadataKey.classNames, "has an empty name at index \(i)") }
        if Set(classNames).count != classNames.count { return (MetadataKey.classNames, "has a name twice: \(classNames)") }
        if let p = ClassCode.problem(classCodes, numClasses: c.numClasses) { return (MetadataKey.classCodes, p) }
        if !(sourceSHA256.isEmpty || (sourceSHA256.count == 64 && sourceSHA256.allSatisfy { $0.isHexDigit && !$0.isUppercase })) {
            return (MetadataKey.sourceSHA256, "is \"\(sourceSHA256)\", not 64 lowercase hex digits")
        }
        return nil
    }
}

extension MetadataValue {
    static func typeName(_ code: UInt32) -> String {
        switch code { case 1: return "int"; case 2: return "float"; case 3: return "string"; case 4: return "int array"; default: return "string array" }
    }
}

extension SwinUNetConfig {
    /// Bounds checked before `problems()` and `expectedTensors()`, so that a hostile header cannot make shape
    /// arithmetic overflow: generous for any Swin-UNet that fits in memory.
    func limitProblems() -> [String] {
        var p: [String] = []
        func check(_ name: String, _ v: Int, _ range: ClosedRange<Int>) {
            if !range.contains(v) { p.append("\(name) is \(v), outside \(range.lowerBound)...\(range.upperBound)") }
        }
        check("img_size", imgSize, 1...16384); check("patch_size", patchSize, 1...1024); check("embed_dim", embedDim, 1...16384)
        check("window_size", windowSize, 1...1024); check("number of stages", depths.count, 1...8)
        depths.forEach { check("a depth", $0, 0...256) }
        numHeads.forEach { check("a head count", $0, 0...4096) }
        if !(mlpRatio.isFinite && mlpRatio > 0 && mlpRatio <= 64) { p.append("mlp_ratio is \(mlpRatio), outside (0, 64]") }
        if p.isEmpty && embedDim << (depths.count - 1) > 1 << 20 {
            p.append("embed_dim \(embedDim) doubled over \(depths.count) stages exceeds \(1 << 20) channels")
        }
        return p
    }
}
