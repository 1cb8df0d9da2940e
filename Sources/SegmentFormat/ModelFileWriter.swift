import Foundation
import SegmentCore

/// Builds a model file: metadata plus the tensors of `metadata.config.expectedTensors()`, each converted to
/// its storage dtype when added. `write(to:)` checks the set is exactly the spec, then writes atomically.
public struct ModelFileWriter {
    public let metadata: ModelMetadata
    /// The converted tensors, in the order added.
    private var tensors: [RawTensor] = []
    private var names: Set<String> = []
    /// name -> expected shape, or why the configuration cannot have tensors.
    private let expected: Result<[String: [Int]], ModelWriterError>

    public init(metadata: ModelMetadata) {
        self.metadata = metadata
        var problems = metadata.config.limitProblems()
        if problems.isEmpty { problems = metadata.config.problems() }
        if !problems.isEmpty {
            expected = .failure(ModelWriterError(path: "", tensor: "", reason: "the Swin-UNet configuration cannot run: \(problems.joined(separator: "; "))"))
        } else if let bad = metadata.problem() {
            expected = .failure(ModelWriterError(path: "", tensor: bad.key, reason: bad.reason))
        } else {
            expected = .success(Dictionary(uniqueKeysWithValues: metadata.config.expectedTensors().map { ($0.name, $0.shape) }))
        }
    }

    /// Adds a tensor (values row-major in PyTorch order), converted to `dtype` with round-to-nearest-even.
    /// Throws when the name is not in the spec or was added before, the shape differs from the spec, the value
    /// count does not match the shape, a value is not finite, or a value overflows the dtype.
    public mutating func add(_ name: String, shape: [Int], values: [Float], dtype: DType) throws {
        func refuse(_ reason: String) -> ModelWriterError { ModelWriterError(path: "", tensor: name, reason: reason) }
        let spec = try expected.get()
        guard let want = spec[name] else { throw refuse("a Swin-UNet of this configuration has no tensor of this name") }
        guard !names.contains(name) else { throw refuse("added twice") }
        guard shape == want else { throw refuse("shape \(shape) differs from the expected \(want)") }
        guard values.count == want.reduce(1, *) else { throw refuse("\(values.count) values for shape \(shape)") }
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw refuse("value \(i) is \(values[i]): the checkpoint holds NaN/inf weights (training diverged or the file is damaged)")
        }
        let bytes: [UInt8]
        switch dtype {
        case .f32:
            bytes = values.withUnsafeBytes { Array($0) }
        case .f16, .bf16:
            let convert: (Float) -> UInt16 = dtype == .f16 ? HalfFloat.f16Bits : HalfFloat.bf16Bits
            let halves = values.map(convert)
            if let i = halves.firstIndex(where: { $0 & 0x7FFF >= (dtype == .f16 ? 0x7C00 : 0x7F80) }) {
                throw refuse("value \(i) (\(values[i])) overflows \(dtype.rawValue) (largest \(dtype == .f16 ? "65504" : "3.39e38")): store this model as f32")
            }
            bytes = halves.withUnsafeBytes { Array($0) }
        }
        tensors.append(RawTensor(name: name, dtypeCode: dtype.code, shape: shape, bytes: bytes))
        names.insert(name)
    }

    /// Checks every expected tensor was added, then writes the file atomically (temporary file + rename).
    public func write(to path: String) throws {
        do {
            let spec = try expected.get()
            if let missing = metadata.config.expectedTensors().first(where: { !names.contains($0.name) }) {
                throw ModelWriterError(path: "", tensor: missing.name, reason: "not added (expected shape \(missing.shape)); all \(spec.count) tensors of the configuration are required")
            }
        } catch let e as ModelWriterError {
            throw ModelWriterError(path: path, tensor: e.tensor, reason: e.reason)
        }
        var bytes = Self.assemble(entries: metadata.entries(), tensors: tensors)
        try bytes.withUnsafeMutableBytes { buffer in   // hands the buffer to Data without a second copy
            try AtomicFile.write(Data(bytesNoCopy: buffer.baseAddress!, count: buffer.count, deallocator: .none), to: path)
        }
    }

    /// One tensor as stored: its table fields and its data bytes.
    struct RawTensor {
        var name: String
        var dtypeCode: UInt32
        var shape: [Int]
        var bytes: [UInt8]
    }

    /// Lays out a complete file (docs/FORMAT.md) from metadata entries and tensors, in the order given, and
    /// stores its checksum. No validation: `write(to:)` validates first; tests use this to craft broken files.
    static func assemble(entries: [(key: String, value: MetadataValue)], tensors: [RawTensor]) -> [UInt8] {
        var header = ByteWriter()
        header.bytes = ModelFileLayout.magic
        header.u32(ModelFileLayout.version)
        header.u64(0)                              // checksum, stored last
        header.u64(0)                              // file_size, patched below
        header.u64(0)                              // header_size
        header.u64(UInt64(entries.count))
        header.u64(UInt64(tensors.count))
        header.u64(0)                              // data_offset
        for (key, value) in entries { header.string(key); header.value(value) }
        var offset = 0                             // relative to data_offset
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            header.string(t.name)
            header.u32(t.dtypeCode)
            header.u32(UInt32(t.shape.count))
            t.shape.forEach { header.u64(UInt64($0)) }
            header.u64(UInt64(offset))
            header.u64(UInt64(t.bytes.count))
            offset = ModelFileLayout.aligned(offset + t.bytes.count)
        }
        let headerSize = header.bytes.count
        let dataOffset = ModelFileLayout.aligned(headerSize)
        let fileSize = dataOffset + (offsets.last.map { $0 + tensors.last!.bytes.count } ?? 0)

        var file = header.bytes
        file.reserveCapacity(fileSize)
        file += repeatElement(0, count: dataOffset - headerSize)
        for (t, o) in zip(tensors, offsets) {
            file += repeatElement(0, count: dataOffset + o - file.count)
            file += t.bytes
        }
        func patch(_ at: Int, _ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { file.replaceSubrange(at..<at + 8, with: $0) } }
        patch(16, UInt64(fileSize)); patch(24, UInt64(headerSize)); patch(48, UInt64(dataOffset))
        storeChecksum(&file)
        return file
    }

    /// Computes the checksum of `file` and stores it at bytes 8..<16.
    static func storeChecksum(_ file: inout [UInt8]) {
        let h = file.withUnsafeBytes { XXH64.hash(UnsafeRawBufferPointer(rebasing: $0[ModelFileLayout.checksummedFrom...])) }
        withUnsafeBytes(of: h.littleEndian) { file.replaceSubrange(8..<16, with: $0) }
    }
}
