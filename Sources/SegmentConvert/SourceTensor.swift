// One tensor of a checkpoint: a strided view over a storage's bytes in the mapped file, read on demand.
import SegmentFormat

#if _endian(big)
#error("SegmentConvert assumes a little-endian host")
#endif

public struct SourceTensor {
    public let type: ElementType
    public let shape: [Int]
    /// Strides in elements (PyTorch's), and the view's first element within the storage.
    let strides: [Int]
    let offset: Int
    /// The storage's bytes; the view reads only inside them (checked when the view was built).
    let storage: UnsafeRawBufferPointer
    /// Storage bytes are big-endian (a checkpoint saved on a big-endian machine).
    let bigEndian: Bool
    /// Keeps `storage` mapped.
    let owner: AnyObject

    public var count: Int { shape.reduce(1, *) }

    var isContiguous: Bool {
        var expected = 1
        for (n, s) in zip(shape, strides).reversed() where n != 1 {
            if s != expected { return false }
            expected *= n
        }
        return true
    }

    /// `element(i)` for the storage index i of every element of the view, in row-major order of `shape`.
    func map<T>(_ element: (Int) -> T) -> [T] {
        let n = count
        if isContiguous { return (offset..<(offset + n)).map(element) }
        var out: [T] = []
        out.reserveCapacity(n)
        var index = [Int](repeating: 0, count: shape.count)
        var at = offset
        for _ in 0..<n {
            out.append(element(at))
            // Odometer: advance the last dimension, carrying into earlier ones.
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1; at += strides[d]
                if index[d] < shape[d] { break }
                at -= strides[d] * shape[d]; index[d] = 0; d -= 1
            }
        }
        return out
    }

    /// The raw little-endian bits of element `i` of the storage (size 1, 2, 4 or 8).
    @inline(__always) private func bits(_ i: Int, _ size: Int) -> UInt64 {
        var v: UInt64 = 0
        let base = i * size
        if bigEndian {
            for k in 0..<size { v = v << 8 | UInt64(storage[base + k]) }
        } else {
            for k in (0..<size).reversed() { v = v << 8 | UInt64(storage[base + k]) }
        }
        return v
    }

    /// The values as Float (float32 exact, float16/bfloat16 exact, float64 rounded to nearest), or nil when the
    /// tensor is not floating point.
    public func floats() -> [Float]? {
        let size = type.size
        if type == .float32 && !bigEndian && isContiguous {
            return [Float](unsafeUninitializedCapacity: count) { buf, n in
                if count > 0 {
                    UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[(offset * 4)..<((offset + count) * 4)]))
                }
                n = count
            }
        }
        let decode: (UInt64) -> Float
        switch type {
        case .float32: decode = { Float(bitPattern: UInt32(truncatingIfNeeded: $0)) }
        case .float16: decode = { HalfFloat.float(f16: UInt16(truncatingIfNeeded: $0)) }
        case .bfloat16: decode = { HalfFloat.float(bf16: UInt16(truncatingIfNeeded: $0)) }
        case .float64: decode = { Float(Double(bitPattern: $0)) }
        default: return nil
        }
        return map { decode(bits($0, size)) }
    }

    /// The values of an int64 tensor, or nil for any other type.
    public func int64s() -> [Int64]? {
        guard type == .int64 else { return nil }
        return map { Int64(bitPattern: bits($0, 8)) }
    }
}
