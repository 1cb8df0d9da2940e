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
    /// The storage's bytes; the view reads only inside them (checked by `init`).
    let storage: UnsafeRawBufferPointer
    /// Storage bytes are big-endian (a checkpoint saved on a big-endian machine).
    let bigEndian: Bool
    /// Keeps `storage` mapped.
    let owner: AnyObject

    /// A view over `storage`, refused with `ConvertError.badTensor` naming `name` and `path` unless it reads only
    /// inside the storage (see `viewProblem`): every later read, product and allocation relies on that.
    init(name: String, path: String, type: ElementType, shape: [Int], strides: [Int], offset: Int,
         storage: UnsafeRawBufferPointer, bigEndian: Bool, owner: AnyObject) throws {
        guard storage.count % type.size == 0 else {
            throw ConvertError.badTensor(path: path, tensor: name, reason: "has a storage of \(storage.count) bytes, not a whole number of \(type) elements")
        }
        if let problem = Self.viewProblem(shape: shape, strides: strides, offset: offset, elements: storage.count / type.size) {
            throw ConvertError.badTensor(path: path, tensor: name, reason: problem)
        }
        self.type = type; self.shape = shape; self.strides = strides; self.offset = offset
        self.storage = storage; self.bigEndian = bigEndian; self.owner = owner
    }

    /// Why a view (size `shape`, `strides` and `offset` in elements) cannot be read from a storage of `elements`
    /// elements, or nil when it can. Shapes and strides come from the file, so:
    /// - the non-zero dimensions must multiply without overflow (a zero dimension empties the tensor whatever the
    ///   others say, and would otherwise let any later product of them trap);
    /// - a non-empty view's last element must lie inside the storage, computed without overflow;
    /// - a non-empty view may not hold more elements than its storage: only a view that repeats elements (stride 0,
    ///   as torch.expand makes) could, and a saved parameter or buffer never does. This keeps every array built
    ///   from a tensor no larger than the file.
    static func viewProblem(shape: [Int], strides: [Int], offset: Int, elements: Int) -> String? {
        let described = "offset \(offset), size \(shapeText(shape)), stride \(shapeText(strides))"
        guard shape.count == strides.count else { return "has a size of \(shape.count) dimensions but a stride of \(strides.count)" }
        guard shape.count <= Unpickler.maxRank else { return "has \(shape.count) dimensions; convert reads at most \(Unpickler.maxRank)" }
        guard offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            return "has a negative size, stride or offset (\(described))"
        }
        var nonZeroProduct = 1
        for n in shape where n > 0 {
            let (p, overflow) = nonZeroProduct.multipliedReportingOverflow(by: n)
            guard !overflow else { return "has a size \(shapeText(shape)) whose dimensions multiply beyond 2^63" }
            nonZeroProduct = p
        }
        guard !shape.contains(0) else { return nil }
        var last = offset
        for (n, st) in zip(shape, strides) where n > 1 {
            let (step, o1) = (n - 1).multipliedReportingOverflow(by: st)
            let (l, o2) = last.addingReportingOverflow(step)
            guard !o1, !o2 else { return "is a view (\(described)) whose last element lies beyond 2^63" }
            last = l
        }
        guard last < elements else {
            return "is a view (\(described)) that reads element \(last) of a storage of \(elements) elements"
        }
        guard nonZeroProduct <= elements else {
            return "is a view of \(nonZeroProduct) elements (\(described)) over a storage of only \(elements): it repeats elements (a stride of 0, as torch.expand makes), which a saved parameter never does; save it with .clone()"
        }
        return nil
    }

    /// Row-major strides of a contiguous tensor. Only for a shape `viewProblem` accepts (so no product overflows).
    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var step = 1
        for d in shape.indices.reversed() {
            strides[d] = step
            if shape[d] > 0 { step *= shape[d] }
        }
        return strides
    }

    public var count: Int { shape.contains(0) ? 0 : shape.reduce(1, *) }

    var isContiguous: Bool {
        var expected = 1
        for (n, s) in zip(shape, strides).reversed() where n != 1 {
            if n == 0 { return true }
            if s != expected { return false }
            expected *= n
        }
        return true
    }

    /// The storage index of element `i` (row-major over `shape`) of the view.
    func storageIndex(ofElement i: Int) -> Int {
        var rest = i, at = offset
        for d in shape.indices.reversed() where shape[d] > 0 {
            at += (rest % shape[d]) * strides[d]
            rest /= shape[d]
        }
        return at
    }

    /// The multi-index of element `i` (row-major over `shape`), for messages.
    func index(ofElement i: Int) -> [Int] {
        var rest = i
        var index = [Int](repeating: 0, count: shape.count)
        for d in shape.indices.reversed() where shape[d] > 0 {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        return index
    }

    /// `element(i)` for the storage index i of every element of the view, in row-major order of `shape`.
    func map<T>(_ element: (Int) -> T) -> [T] {
        let n = count
        if n == 0 { return [] }
        if isContiguous { return (offset..<(offset + n)).map(element) }
        var out: [T] = []
        out.reserveCapacity(n)
        var index = [Int](repeating: 0, count: shape.count)
        var at = offset
        for k in 0..<n {
            out.append(element(at))
            if k == n - 1 { break }
            // Odometer: advance the last dimension, carrying into earlier ones. `at` only ever moves to an element
            // of the view, so it stays inside the bounds `viewProblem` checked.
            var d = shape.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { at += strides[d]; break }
                at -= strides[d] * (shape[d] - 1); index[d] = 0; d -= 1
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

    /// Element `i` (row-major) exactly as stored, widened to Double, or nil when the tensor is not floating point:
    /// tells a float64 value beyond float32's range from a stored inf in messages.
    func storedValue(ofElement i: Int) -> Double? {
        let at = storageIndex(ofElement: i)
        switch type {
        case .float32: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits(at, 4))))
        case .float16: return Double(HalfFloat.float(f16: UInt16(truncatingIfNeeded: bits(at, 2))))
        case .bfloat16: return Double(HalfFloat.float(bf16: UInt16(truncatingIfNeeded: bits(at, 2))))
        case .float64: return Double(bitPattern: bits(at, 8))
        default: return nil
        }
    }

    /// The values of an int64 tensor, or nil for any other type.
    public func int64s() -> [Int64]? {
        guard type == .int64 else { return nil }
        return map { Int64(bitPattern: bits($0, 8)) }
    }
}
