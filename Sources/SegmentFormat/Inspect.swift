import Foundation

/// What `segment inspect` shows of a model file: everything in it but the tensor values. `Encodable` is the
/// `--json` form; `text` the human one. Only built from an opened (so fully validated) ModelFile.
public struct ModelInspection: Encodable {
    public struct Checksum: Encodable {
        public let algorithm: String   // "xxh64"
        public let value: String       // 16 hex digits
        public let verified: Bool
    }

    public struct Tensor: Encodable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let offset: Int
        public let bytes: Int
    }

    public let path: String
    public let formatVersion: Int
    public let fileSize: Int
    public let checksum: Checksum
    public let metadata: ModelMetadata
    public let parameters: Int
    public let tensorBytes: Int
    public let parametersByDType: [String: Int]
    public let tensors: [Tensor]

    public init(_ model: ModelFile) {
        path = model.path
        formatVersion = Int(ModelFileLayout.version)
        fileSize = model.fileSize
        checksum = Checksum(algorithm: "xxh64", value: model.checksum, verified: true)   // open() verified it
        metadata = model.metadata
        parameters = model.tensors.reduce(0) { $0 + $1.count }
        tensorBytes = model.tensors.reduce(0) { $0 + $1.byteCount }
        parametersByDType = Dictionary(model.tensors.map { ($0.dtype.rawValue, $0.count) }, uniquingKeysWith: +)
        tensors = model.tensors.map { Tensor(name: $0.name, dtype: $0.dtype, shape: $0.shape, offset: $0.offset, bytes: $0.byteCount) }
    }

    /// Pretty-printed JSON with sorted keys.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The human-readable report: one "field  value" line each, then the tensor table.
    public var text: String {
        let c = metadata.config, p = metadata.preprocessing
        func list(_ a: [Int]) -> String { "[" + a.map(String.init).joined(separator: ", ") + "]" }
        var lines: [(String, String)] = [
            ("model", path),
            ("format", "segment model file v\(formatVersion), \(Self.size(fileSize))"),
            ("checksum", "xxh64 \(checksum.value) (verified)"),
            ("architecture", "\(ModelMetadata.architecture): img_size \(c.imgSize), patch_size \(c.patchSize), in_chans \(c.inChans), embed_dim \(c.embedDim), depths \(list(c.depths)), num_heads \(list(c.numHeads)), window \(c.windowSize), mlp_ratio \(c.mlpRatio)"),
            ("classes", "\(metadata.classNames.count): " + metadata.classNames.enumerated().map { "\($0) \($1)" }.joined(separator: ", ")),
            ("class codes", metadata.classCodes.isEmpty ? "(none: a DICOM SEG describes each class as SCT 85756007 Tissue)"
                : metadata.classCodes.map { "\($0.label) type \($0.type) category \($0.category)" }.joined(separator: "; ")),
            ("preprocessing", "channels \(p.channels.rawValue), intensity \(p.intensity.rawValue)" + (p.intensity == .window ? " [\(p.windowLo), \(p.windowHi)]" : "")
                + ", slice axis \(p.sliceAxis), row axis \(p.rowAxis), column axis \(p.colAxis), orientation \(p.orientation.isEmpty ? "as stored" : p.orientation)"
                + ", zoom order image \(p.imageOrder.rawValue) / labels \(p.labelOrder.rawValue)"),
            ("source sha256", metadata.sourceSHA256.isEmpty ? "(none)" : metadata.sourceSHA256),
            ("converter", metadata.converterVersion.isEmpty ? "(unknown)" : metadata.converterVersion),
        ]
        for k in metadata.provenance.keys.sorted() { lines.append(("provenance", "\(k) = \(metadata.provenance[k]!)")) }
        let byType = parametersByDType.keys.sorted().map { "\($0) \(Self.grouped(parametersByDType[$0]!))" }.joined(separator: ", ")
        lines.append(("parameters", "\(Self.grouped(parameters)) (\(byType)), \(Self.size(tensorBytes)) of tensor data"))
        lines.append(("tensors", "\(tensors.count)"))
        let w = lines.map(\.0.count).max()!
        var out = lines.map { $0.0.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n") + "\n\n"
        let rows = [("name", "dtype", "shape", "bytes")] + tensors.map { ($0.name, $0.dtype.rawValue, list($0.shape), Self.grouped($0.bytes)) }
        let wn = rows.map(\.0.count).max()!, ws = rows.map(\.2.count).max()!, wb = rows.map(\.3.count).max()!
        for r in rows {
            out += r.0.padding(toLength: wn, withPad: " ", startingAt: 0) + "  " + r.1.padding(toLength: 5, withPad: " ", startingAt: 0)
                + "  " + r.2.padding(toLength: ws, withPad: " ", startingAt: 0) + "  " + String(repeating: " ", count: wb - r.3.count) + r.3 + "\n"
        }
        return out
    }

    /// 27154364 -> "27,154,364".
    static func grouped(_ n: Int) -> String {
        var s = String(n.magnitude), out = ""
        while s.count > 3 { out = "," + s.suffix(3) + out; s.removeLast(3) }
        return (n < 0 ? "-" : "") + s + out
    }

    /// Bytes in kB or MB (powers of 10) with the exact count.
    static func size(_ bytes: Int) -> String {
        let (scale, unit) = bytes < 1_000_000 ? (1e3, "kB") : (1e6, "MB")
        return String(format: "%.1f", Double(bytes) / scale) + " \(unit) (\(grouped(bytes)) bytes)"
    }
}
