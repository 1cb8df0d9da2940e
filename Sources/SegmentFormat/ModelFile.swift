import Foundation
import SegmentCore

/// One tensor of an open model file.
public struct TensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]            // PyTorch order
    public let offset: Int             // absolute byte offset in the file (a multiple of 64)
    public let byteCount: Int
    public var count: Int { shape.reduce(1, *) }
}

/// A model file, memory-mapped read-only and fully validated by `open` before anything can use it.
public final class ModelFile: @unchecked Sendable {   // immutable after open; the mapping is read-only
    public let path: String
    public let metadata: ModelMetadata
    public let tensors: [TensorInfo]   // in file order
    public let checksum: String        // the stored (and verified) XXH64, 16 hex digits
    public let fileSize: Int
    private let mapping: MappedFile              // the whole file, mapped read-only
    private var bytes: UnsafeRawBufferPointer { mapping.bytes }
    private let index: [String: Int]

    private init(path: String, mapping: MappedFile, parsed: Parsed) {
        self.path = path; self.mapping = mapping; self.fileSize = mapping.count
        self.metadata = parsed.metadata; self.tensors = parsed.tensors; self.checksum = XXH64.hex(parsed.checksum)
        self.index = Dictionary(uniqueKeysWithValues: parsed.tensors.enumerated().map { ($1.name, $0) })
    }

    /// Maps `path` and validates it completely (docs/FORMAT.md, "Validation"); throws `ModelFileError`.
    public static func open(_ path: String) throws -> ModelFile {
        let mapping: MappedFile
        do { mapping = try MappedFile(path: path) } catch let f as MappedFile.Failure {
            switch f {
            case .empty: throw ModelFileError.empty(path: path)
            case .unreadable(let reason): throw ModelFileError.unreadable(path: path, reason: reason)
            }
        }
        return ModelFile(path: path, mapping: mapping, parsed: try parse(mapping.bytes, path: path))
    }

    /// The tensor called `name`, if the file holds it.
    public func tensor(_ name: String) -> TensorInfo? { index[name].map { tensors[$0] } }

    /// The raw stored bytes of tensor `name` (little-endian, its dtype), valid only inside `body`.
    public func withBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let t = tensor(name) else { throw ModelFileError.noSuchTensor(path: path, tensor: name) }
        return try body(UnsafeRawBufferPointer(rebasing: bytes[t.offset..<t.offset + t.byteCount]))
    }

    /// A Float copy of tensor `name`, widened exactly from f16/bf16.
    public func floats(_ name: String) throws -> [Float] {
        guard let t = tensor(name) else { throw ModelFileError.noSuchTensor(path: path, tensor: name) }
        return try [Float](unsafeUninitializedCapacity: t.count) { out, initialized in
            try floats(name, into: out)
            initialized = t.count
        }
    }

    /// Writes tensor `name`, widened exactly from f16/bf16, into `out` (exactly the tensor's element count).
    public func floats(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let t = tensor(name) else { throw ModelFileError.noSuchTensor(path: path, tensor: name) }
        precondition(out.count == t.count, "floats(into:): \(out.count) floats for the \(t.count) of '\(name)'")
        try withBytes(of: name) { raw in
            switch t.dtype {
            case .f32:
                _ = raw.copyBytes(to: UnsafeMutableRawBufferPointer(out))   // offsets are 64-byte aligned
            case .f16:
                let h = raw.assumingMemoryBound(to: UInt16.self)
                for i in 0..<t.count { out[i] = HalfFloat.float(f16: UInt16(littleEndian: h[i])) }
            case .bf16:
                let h = raw.assumingMemoryBound(to: UInt16.self)
                for i in 0..<t.count { out[i] = HalfFloat.float(bf16: UInt16(littleEndian: h[i])) }
            }
        }
    }

    /// What validation yields.
    struct Parsed {
        var metadata: ModelMetadata
        var tensors: [TensorInfo]
        var checksum: UInt64
    }

    /// Validates a whole file image and decodes it. Order: size and magic, version, declared size, checksum
    /// (so a damaged byte anywhere is reported as such), header structure, metadata, tensor table, tensor set.
    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Parsed {
        typealias L = ModelFileLayout
        let n = bytes.count
        guard n > 0 else { throw ModelFileError.empty(path: path) }
        guard zip(bytes.prefix(4), L.magic).allSatisfy({ $0 == $1 }) else { throw ModelFileError.badMagic(path: path) }
        guard n >= 8 else { throw ModelFileError.truncated(path: path, expectedBytes: L.fixedHeaderSize, actualBytes: n) }
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        let version = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        guard version == L.version else { throw ModelFileError.unsupportedVersion(path: path, version: version) }
        guard n >= L.fixedHeaderSize else { throw ModelFileError.truncated(path: path, expectedBytes: L.fixedHeaderSize, actualBytes: n) }
        let declared = Int(clamping: u64(16))
        guard declared <= n else { throw ModelFileError.truncated(path: path, expectedBytes: declared, actualBytes: n) }
        guard declared >= n else { throw ModelFileError.trailingBytes(path: path, expectedBytes: declared, actualBytes: n) }

        let stored = u64(L.checksumOffset)
        let computed = XXH64.hash(UnsafeRawBufferPointer(rebasing: bytes[L.checksummedFrom...]))
        guard stored == computed else {
            throw ModelFileError.checksumMismatch(path: path, stored: XXH64.hex(stored), computed: XXH64.hex(computed))
        }

        // Header structure.
        let headerSize = Int(clamping: u64(24)), dataOffset = Int(clamping: u64(48))
        guard (L.fixedHeaderSize...n).contains(headerSize) else {
            throw ModelFileError.corruptHeader(path: path, reason: "header size \(headerSize) is outside \(L.fixedHeaderSize)...\(n)")
        }
        guard dataOffset == L.aligned(headerSize), dataOffset <= n else {
            throw ModelFileError.corruptHeader(path: path, reason: "data offset \(dataOffset) is not the header size \(headerSize) rounded up to \(L.alignment) within the file")
        }
        guard bytes[headerSize..<dataOffset].allSatisfy({ $0 == 0 }) else {
            throw ModelFileError.corruptHeader(path: path, reason: "the padding after the header (bytes \(headerSize)..<\(dataOffset)) is not zero")
        }
        // Smallest entries: a metadata entry is >= 20 bytes (key length, type, i64), a tensor entry >= 32.
        let room = headerSize - L.fixedHeaderSize
        let metadataCount = u64(32), tensorCount = u64(40)
        guard metadataCount <= UInt64(room / 20), tensorCount <= UInt64(room / 32) else {
            throw ModelFileError.corruptHeader(path: path, reason: "\(metadataCount) metadata entries and \(tensorCount) tensors cannot fit in a \(headerSize)-byte header")
        }
        var r = ByteReader(bytes: bytes, position: L.fixedHeaderSize, end: headerSize, path: path)

        // Metadata.
        var entries: [(key: String, value: MetadataValue)] = []
        for i in 0..<Int(metadataCount) {
            let key = try r.string("metadata key #\(i)", limit: L.maxNameBytes)
            entries.append((key, try r.value("metadata \"\(key)\"")))
        }
        let metadata = try ModelMetadata(entries: entries, path: path)
        var configProblems = metadata.config.limitProblems()
        if configProblems.isEmpty { configProblems = metadata.config.problems() }
        guard configProblems.isEmpty else { throw ModelFileError.invalidConfig(path: path, problems: configProblems) }
        if let bad = metadata.problem() { throw ModelFileError.badMetadata(path: path, key: bad.key, reason: bad.reason) }

        // Tensor table: each entry on its own.
        let dataSize = n - dataOffset
        var tensors: [TensorInfo] = []
        var seen: Set<String> = []
        for i in 0..<Int(tensorCount) {
            let name = try r.string("tensor name #\(i)", limit: L.maxNameBytes)
            let code = try r.u32("dtype of tensor \(name)")
            let rank = try r.u32("rank of tensor \(name)")
            guard rank <= L.maxRank else {
                throw ModelFileError.corruptHeader(path: path, reason: "tensor \(name) has rank \(rank), more than \(L.maxRank)")
            }
            let shape = try (0..<Int(rank)).map { _ in try r.count("a dimension of tensor \(name)", limit: Int(Int32.max)) }
            let offset = try r.count("offset of tensor \(name)", limit: Int(Int64.max))
            let byteCount = try r.count("byte size of tensor \(name)", limit: Int(Int64.max))
            guard let dtype = DType(code: code) else { throw ModelFileError.unknownDType(path: path, tensor: name, code: code) }
            let (elements, overflow) = shape.reduce((1, false)) { acc, d in
                let m = acc.0.multipliedReportingOverflow(by: d); return (m.partialValue, acc.1 || m.overflow)
            }
            guard !overflow, elements <= Int.max / 4, elements * dtype.bytesPerElement == byteCount else {
                throw ModelFileError.badByteCount(path: path, tensor: name, shape: shape, dtype: dtype, byteCount: byteCount)
            }
            guard offset % L.alignment == 0 else { throw ModelFileError.misaligned(path: path, tensor: name, offset: dataOffset &+ offset) }
            guard offset <= dataSize, byteCount <= dataSize - offset else {
                throw ModelFileError.outOfBounds(path: path, tensor: name, offset: dataOffset &+ offset, byteCount: byteCount, fileSize: n)
            }
            guard seen.insert(name).inserted else { throw ModelFileError.duplicateTensor(path: path, tensor: name) }
            tensors.append(TensorInfo(name: name, dtype: dtype, shape: shape, offset: dataOffset + offset, byteCount: byteCount))
        }
        guard r.position == headerSize else {
            throw ModelFileError.corruptHeader(path: path, reason: "the tensor table ends at byte \(r.position) but the header at byte \(headerSize)")
        }

        // Tensor table as a whole: no two tensors share a byte.
        var furthest: TensorInfo?   // of the tensors before, the one reaching furthest
        let byOffset = tensors.indices.sorted { (tensors[$0].offset, $0) < (tensors[$1].offset, $1) }.map { tensors[$0] }
        for t in byOffset where t.byteCount > 0 {
            if let f = furthest, t.offset < f.offset + f.byteCount {
                throw ModelFileError.overlapping(path: path, tensor: t.name, other: f.name)
            }
            if furthest.map({ t.offset + t.byteCount > $0.offset + $0.byteCount }) ?? true { furthest = t }
        }

        // Exactly the tensors of the configuration, with their shapes.
        let expected = metadata.config.expectedTensors()
        let found = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
        for spec in expected {
            guard let t = found[spec.name] else {
                throw ModelFileError.missingTensor(path: path, tensor: spec.name, expectedShape: spec.shape)
            }
            guard t.shape == spec.shape else {
                throw ModelFileError.wrongShape(path: path, tensor: spec.name, expected: spec.shape, found: t.shape)
            }
        }
        let expectedNames = Set(expected.map(\.name))
        if let extra = tensors.first(where: { !expectedNames.contains($0.name) }) {
            throw ModelFileError.unknownTensor(path: path, tensor: extra.name, shape: extra.shape)
        }
        for t in tensors { try checkFinite(t, bytes, path: path) }
        return Parsed(metadata: metadata, tensors: tensors, checksum: stored)
    }

    /// Throws `nonFinite` at the first NaN or infinity of `t`: the checksum proves a file unchanged, not usable
    /// (a NaN weight makes every logit NaN, and the argmax of NaNs is an all-background mask).
    static func checkFinite(_ t: TensorInfo, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[t.offset..<t.offset + t.byteCount])
        func first<W: FixedWidthInteger>(_: W.Type, exponent: W) -> Int? {
            // An all-ones exponent is infinity or NaN, in every IEEE format.
            var found: Int? = nil
            for i in 0..<t.count where raw.loadUnaligned(fromByteOffset: i * MemoryLayout<W>.size, as: W.self) & exponent == exponent {
                found = i; break
            }
            return found
        }
        let bad: Int?
        switch t.dtype {
        case .f32: bad = first(UInt32.self, exponent: 0x7F80_0000)
        case .f16: bad = first(UInt16.self, exponent: 0x7C00)
        case .bf16: bad = first(UInt16.self, exponent: 0x7F80)
        }
        guard let i = bad else { return }
        var value = [Float](repeating: 0, count: 1)
        switch t.dtype {
        case .f32: value[0] = raw.loadUnaligned(fromByteOffset: i * 4, as: Float.self)
        case .f16: value[0] = HalfFloat.float(f16: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
        case .bf16: value[0] = HalfFloat.float(bf16: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
        }
        throw ModelFileError.nonFinite(path: path, tensor: t.name, index: i, value: value[0].isNaN ? "NaN" : "\(value[0])")
    }
}
