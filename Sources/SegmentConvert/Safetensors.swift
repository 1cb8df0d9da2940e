// safetensors: a little-endian u64 N, an N-byte JSON header {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {...}}, then the data; offsets are relative to the end of the header. No code, only bounds to check.
import Foundation
import SegmentCore

enum Safetensors {
    static let dtypes: [String: ElementType] = [
        "F64": .float64, "F32": .float32, "F16": .float16, "BF16": .bfloat16,
        "I64": .int64, "I32": .int32, "I16": .int16, "I8": .int8, "U8": .uint8, "BOOL": .bool,
    ]

    /// A safetensors file starts with its header length, then the JSON object's "{".
    static func looksLike(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 9 && bytes[8] == UInt8(ascii: "{")
    }

    /// A header is {name: {"dtype", "shape": [...], "data_offsets": [...]}, "__metadata__": {...}}: 3 levels.
    /// Deeper JSON is refused before it reaches the parser, so no header depends on the parser's own depth limits.
    static let maxDepth = 8

    /// The deepest nesting of [ and { outside strings (bounded work: one pass, no recursion).
    static func nesting(_ json: UnsafeRawBufferPointer) -> Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for b in json {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1; deepest = max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }

    static func load(_ file: MappedFile) throws -> [(name: String, tensor: SourceTensor)] {
        let path = file.path
        func corrupt(_ reason: String) -> ConvertError { .malformedArchive(path: path, reason: "its safetensors header \(reason)") }
        var r = ByteReader(file.bytes) { what in ConvertError.truncated(path: path, what: "the file ends inside \(what)") }
        let headerLength = try r.u64("the header length")
        let header = try r.take(headerLength, "the \(headerLength)-byte safetensors header")
        let dataStart = r.position, dataLength = r.remaining
        let depth = nesting(header)
        guard depth <= maxDepth else { throw corrupt("nests \(depth) levels of brackets; a safetensors header nests 3") }
        guard let json = try? JSONSerialization.jsonObject(with: Data(header)), let entries = json as? [String: Any] else {
            throw corrupt("is not a JSON object")
        }
        var tensors: [(name: String, begin: Int, tensor: SourceTensor)] = []
        for (name, value) in entries where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw corrupt("describes \(shown(name)) without a dtype, a shape and two data_offsets")
            }
            guard let type = dtypes[dtypeName] else {
                throw ConvertError.unsupportedDType(path: path, tensor: name, dtype: dtypeName)
            }
            guard shape.count <= Unpickler.maxRank, shape.allSatisfy({ $0 >= 0 }) else { throw corrupt("gives \(shown(name)) the shape \(shape)") }
            // The non-zero dimensions too must multiply without overflow: a zero one empties the tensor, but the
            // strides below multiply the others.
            var bytes = type.size, nonZero = type.size
            for n in shape {
                let (p, o1) = bytes.multipliedReportingOverflow(by: n)
                let (q, o2) = n > 0 ? nonZero.multipliedReportingOverflow(by: n) : (nonZero, false)
                guard !o1, !o2 else { throw corrupt("gives \(shown(name)) the impossibly large shape \(shape)") }
                bytes = p; nonZero = q
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard 0 <= begin, begin <= end, end <= dataLength else {
                throw ConvertError.truncated(path: path, what: "tensor \(shown(name)) lies at bytes \(begin)..<\(end) of the data, which has \(dataLength)")
            }
            guard end - begin == bytes else {
                throw corrupt("gives \(shown(name)) (\(shown(dtypeName)), shape \(shape), \(bytes) bytes) a range of \(end - begin) bytes")
            }
            let storage = UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + begin)..<(dataStart + end)])
            tensors.append((name, begin, try SourceTensor(name: name, path: path, type: type, shape: shape,
                                                          strides: SourceTensor.contiguousStrides(shape), offset: 0,
                                                          storage: storage, bigEndian: false, owner: file)))
        }
        tensors.sort { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (a, b) in zip(tensors, tensors.dropFirst()) where a.begin + a.tensor.count * a.tensor.type.size > b.begin {
            throw corrupt("makes \(shown(a.name)) and \(shown(b.name)) overlap")
        }
        guard !tensors.isEmpty else { throw ConvertError.noStateDict(path: path, reason: "the safetensors file holds no tensors") }
        return tensors.map { ($0.name, $0.tensor) }
    }
}
