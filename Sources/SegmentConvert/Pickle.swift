// A restricted unpickler: reads the pickles torch.save writes for a state_dict and nothing more.
//
// It is a stack machine over the opcodes of pickle protocols 2 to 5 that plain data needs (None, bools, ints,
// floats, strings, tuples, lists, dicts, sets, memo, marks), plus exactly four callables and the storage types:
//   collections.OrderedDict                 REDUCE with () -> an empty dict
//   torch._utils._rebuild_tensor_v2         REDUCE (storage, offset, size, stride, requires_grad, hooks[, metadata])
//   torch._utils._rebuild_tensor            REDUCE (storage, offset, size, stride)
//   torch._utils._rebuild_parameter         REDUCE (tensor, requires_grad, hooks) -> the tensor
//   torch.<T>Storage                        only as the type tag of a persistent id, never called
// and BINPERSID for torch's storage ids ('storage', torch.<T>Storage, key, location, numel[, None]).
// Any other global (os.system, builtins.eval, a model class ...) is refused when it is named, before anything
// could call it; opcodes that build arbitrary objects (INST, OBJ, NEWOBJ, EXT*, PERSID ...) are refused too.
// Nothing is ever executed: "calling" an approved global builds a record in `PickleHeap`.
//
// Bounds: every length is checked against the remaining input before use; the values created (stack pushes, memo
// entries and marks) are counted and capped at `maxValues` and at the pickle's byte length, so memory stays linear in
// the input; containers live in the heap and are referred to by index, so no value owns another and nothing recurses.

/// The element type of a storage (torch.<T>Storage) or a safetensors dtype.
public enum ElementType: String, CaseIterable, Sendable {
    case float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool, complex64, complex128

    public var size: Int {
        switch self {
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .float64, .int64, .complex64: return 8
        case .int8, .uint8, .bool: return 1
        case .complex128: return 16
        }
    }

    public var isFloatingPoint: Bool { [.float32, .float16, .bfloat16, .float64].contains(self) }

    /// The class name torch pickles for a storage of this type (torch.FloatStorage ...).
    var storageName: String {
        switch self {
        case .float32: return "FloatStorage"
        case .float16: return "HalfStorage"
        case .bfloat16: return "BFloat16Storage"
        case .float64: return "DoubleStorage"
        case .int64: return "LongStorage"
        case .int32: return "IntStorage"
        case .int16: return "ShortStorage"
        case .int8: return "CharStorage"
        case .uint8: return "ByteStorage"
        case .bool: return "BoolStorage"
        case .complex64: return "ComplexFloatStorage"
        case .complex128: return "ComplexDoubleStorage"
        }
    }
}

/// The only globals a state_dict pickle may name.
enum PickleGlobal: Equatable {
    case orderedDict, rebuildTensorV2, rebuildTensor, rebuildParameter
    case storageType(ElementType)

    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor"): self = .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch", _):
            guard let t = ElementType.allCases.first(where: { $0.storageName == name }) else { return nil }
            self = .storageType(t)
        default: return nil
        }
    }
}

/// A value on the stack or in a container. Containers, storages and tensors are indices into `PickleHeap`.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case bigInt([UInt8])            // little-endian two's complement, too wide for Int (torch's legacy magic number)
    case float(Double)
    case string(String)
    case bytes(count: Int)          // bytes objects are never needed, only skipped
    case tuple(Int), list(Int), dict(Int)
    case global(PickleGlobal)
    case storage(Int)
    case tensor(Int)

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int, .bigInt: return "an int"
        case .float: return "a float"
        case .string: return "a string"
        case .bytes: return "bytes"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        case .global: return "a global"
        case .storage: return "a storage"
        case .tensor: return "a tensor"
        }
    }
}

/// An ordered dict (insertion order, as Python's). String keys are indexed so a repeated key replaces its value.
struct PickleDict {
    var keys: [PickleValue] = []
    var values: [PickleValue] = []
    var stringIndex: [String: Int] = [:]

    mutating func set(_ key: PickleValue, _ value: PickleValue) {
        if case .string(let s) = key {
            if let i = stringIndex[s] { values[i] = value; return }
            stringIndex[s] = keys.count
        }
        keys.append(key); values.append(value)
    }

    subscript(_ key: String) -> PickleValue? { stringIndex[key].map { values[$0] } }
}

/// A storage named by a persistent id: its bytes are found later by `key` (zip entry data/KEY, or the legacy list).
struct StorageRecord {
    let type: ElementType
    let key: String
    let numel: Int
}

/// A tensor view: shape and strides in elements over a storage, from `offset` elements in.
struct TensorRecord {
    let storage: Int
    let offset: Int
    let shape: [Int]
    let strides: [Int]
}

/// Everything the pickles of one checkpoint built.
final class PickleHeap {
    var tuples: [[PickleValue]] = []
    var lists: [[PickleValue]] = []
    var dicts: [PickleDict] = []
    var storages: [StorageRecord] = []
    var storageByKey: [String: Int] = [:]
    var tensors: [TensorRecord] = []
}

struct Unpickler {
    /// Cap on values created by one pickle; a Swin-UNet state_dict needs about 10,000.
    static let maxValues = 1 << 21
    static let maxRank = 16

    let path: String
    let heap: PickleHeap
    var reader: ByteReader
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var created = 0
    private let budget: Int
    private var opcodeOffset = 0

    /// An unpickler for the pickle starting at `start` in `bytes` (which may hold more after its STOP).
    init(path: String, bytes: UnsafeRawBufferPointer, from start: Int = 0, to end: Int? = nil, heap: PickleHeap) {
        self.path = path
        self.heap = heap
        let stop = end ?? bytes.count
        self.reader = ByteReader(bytes, from: start, to: stop) { what in
            ConvertError.truncated(path: path, what: "the pickle at byte \(start) ends inside \(what)")
        }
        self.budget = min(Self.maxValues, max(stop - start, 0))
    }

    private func malformed(_ reason: String) -> ConvertError {
        ConvertError.malformedPickle(path: path, reason: reason, offset: opcodeOffset)
    }

    // MARK: stack

    /// Counts one more value (stack push, memo entry or mark) against the budget.
    private mutating func spend() throws {
        created += 1
        guard created <= budget else { throw malformed("more than \(budget) objects; a state_dict needs far fewer") }
    }

    private mutating func push(_ v: PickleValue) throws {
        try spend()
        stack.append(v)
    }

    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast(), stack.count >= (marks.last ?? 0) else { throw malformed("stack underflow") }
        return v
    }

    private func top() throws -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw malformed("stack underflow") }
        return v
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw malformed("no MARK before a mark-terminated opcode") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private mutating func newTuple(_ items: [PickleValue]) throws {
        heap.tuples.append(items)
        try push(.tuple(heap.tuples.count - 1))
    }

    private mutating func memoize(_ index: Int) throws {
        try spend()
        memo[index] = try top()
    }

    // MARK: reading operands

    private mutating func string(length n: Int, _ what: String) throws -> String {
        let raw = try reader.take(n, what)
        guard let s = String(validating: raw, as: UTF8.self) else { throw malformed("\(what) is not valid UTF-8") }
        return s
    }

    /// A newline-terminated ASCII line (GLOBAL's operands).
    private mutating func line(_ what: String) throws -> String {
        var n = 0
        while true {
            try reader.require(n + 1, what)
            if reader.bytes[reader.position + n] == 0x0A { break }
            n += 1
        }
        let s = try string(length: n, what)
        reader.position += 1
        return s
    }

    /// A little-endian two's complement integer of `n` bytes (LONG1 / LONG4).
    private mutating func long(_ n: Int) throws -> PickleValue {
        let raw = try reader.take(n, "a long integer")
        if n == 0 { return .int(0) }
        let negative = raw[n - 1] & 0x80 != 0
        // Drop sign-extension bytes beyond the 8 an Int holds.
        var used = n
        while used > 8 && raw[used - 1] == (negative ? 0xFF : 0x00) && (raw[used - 2] & 0x80 != 0) == negative { used -= 1 }
        guard used <= 8 else { return .bigInt(Array(raw)) }
        var v: UInt64 = negative ? ~0 : 0
        for i in 0..<used {
            v &= ~(UInt64(0xFF) << (8 * UInt64(i)))
            v |= UInt64(raw[i]) << (8 * UInt64(i))
        }
        return .int(Int(Int64(bitPattern: v)))
    }

    private func resolve(module: String, name: String) throws -> PickleValue {
        guard let g = PickleGlobal(module: module, name: name) else {
            throw ConvertError.refusedGlobal(path: path, name: "\(module).\(name)")
        }
        return .global(g)
    }

    // MARK: the machine

    /// Runs to the next STOP and returns the pickled object.
    mutating func load() throws -> PickleValue {
        while true {
            opcodeOffset = reader.position
            let op = try reader.u8("an opcode")
            switch op {
            case 0x80:                                                  // PROTO
                let v = try reader.u8("the protocol number")
                guard (2...5).contains(v) else { throw malformed("pickle protocol \(v) (torch.save writes 2)") }
            case 0x95:                                                  // FRAME: a length hint, nothing to do
                let n = try reader.u64("a frame length")
                try reader.require(n, "a frame of \(n) bytes")
            case 0x2E:                                                  // STOP
                return try pop()
            case 0x28: try spend(); marks.append(stack.count)           // MARK
            case 0x30: _ = try pop()                                    // POP
            case 0x31: _ = try popMark()                                // POP_MARK
            case 0x32: try push(try top())                              // DUP

            case 0x4E: try push(.none)                                  // NONE
            case 0x88: try push(.bool(true))                            // NEWTRUE
            case 0x89: try push(.bool(false))                           // NEWFALSE
            case 0x4A:                                                  // BININT (i32)
                try push(.int(Int(Int32(truncatingIfNeeded: try reader.uintLE(4, "an int")))))
            case 0x4B: try push(.int(Int(try reader.u8("an int"))))     // BININT1 (u8)
            case 0x4D: try push(.int(try reader.u16("an int")))         // BININT2 (u16)
            case 0x8A: try push(try long(Int(try reader.u8("a long length"))))           // LONG1
            case 0x8B:                                                  // LONG4
                let n = Int(Int32(truncatingIfNeeded: try reader.uintLE(4, "a long length")))
                guard n >= 0 else { throw malformed("negative long length \(n)") }
                try push(try long(n))
            case 0x47:                                                  // BINFLOAT: big-endian f64
                let raw = try reader.take(8, "a float")
                var bits: UInt64 = 0
                for b in raw { bits = bits << 8 | UInt64(b) }
                try push(.float(Double(bitPattern: bits)))

            case 0x58: try push(.string(try string(length: try reader.u32("a string length"), "a string")))  // BINUNICODE
            case 0x8C: try push(.string(try string(length: Int(try reader.u8("a string length")), "a string")))  // SHORT_BINUNICODE
            case 0x8D: try push(.string(try string(length: try reader.u64("a string length"), "a string")))  // BINUNICODE8
            case 0x54:                                                  // BINSTRING (Python 2 str, i32 length)
                let n = Int(Int32(truncatingIfNeeded: try reader.uintLE(4, "a string length")))
                try push(.string(try string(length: n, "a string")))
            case 0x55: try push(.string(try string(length: Int(try reader.u8("a string length")), "a string")))  // SHORT_BINSTRING
            case 0x42, 0x43, 0x8E, 0x96:                                // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                let n = op == 0x42 ? try reader.u32("a bytes length")
                      : op == 0x43 ? Int(try reader.u8("a bytes length")) : try reader.u64("a bytes length")
                try reader.skip(n, "bytes of length \(n)")
                try push(.bytes(count: n))

            case 0x29: try newTuple([])                                 // EMPTY_TUPLE
            case 0x85: try newTuple([try pop()])                        // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); try newTuple([a, b])                     // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); try newTuple([a, b, c])   // TUPLE3
            case 0x74: try newTuple(try popMark())                      // TUPLE
            case 0x5D, 0x8F:                                            // EMPTY_LIST, EMPTY_SET (a set is kept as a list)
                heap.lists.append([]); try push(.list(heap.lists.count - 1))
            case 0x6C:                                                  // LIST
                heap.lists.append(try popMark()); try push(.list(heap.lists.count - 1))
            case 0x91:                                                  // FROZENSET
                heap.lists.append(try popMark()); try push(.list(heap.lists.count - 1))
            case 0x61:                                                  // APPEND
                let v = try pop()
                guard case .list(let i) = try top() else { throw malformed("APPEND to \(try top().kind)") }
                heap.lists[i].append(v)
            case 0x65, 0x90:                                            // APPENDS, ADDITEMS
                let items = try popMark()
                guard case .list(let i) = try top() else { throw malformed("APPENDS to \(try top().kind)") }
                heap.lists[i] += items
            case 0x7D:                                                  // EMPTY_DICT
                heap.dicts.append(PickleDict()); try push(.dict(heap.dicts.count - 1))
            case 0x64:                                                  // DICT
                let items = try popMark()
                guard items.count % 2 == 0 else { throw malformed("DICT with an odd number of items") }
                var d = PickleDict()
                for k in stride(from: 0, to: items.count, by: 2) { d.set(items[k], items[k + 1]) }
                heap.dicts.append(d); try push(.dict(heap.dicts.count - 1))
            case 0x73:                                                  // SETITEM
                let v = try pop(), k = try pop()
                guard case .dict(let i) = try top() else { throw malformed("SETITEM on \(try top().kind)") }
                heap.dicts[i].set(k, v)
            case 0x75:                                                  // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw malformed("SETITEMS with an odd number of items") }
                guard case .dict(let i) = try top() else { throw malformed("SETITEMS on \(try top().kind)") }
                for k in stride(from: 0, to: items.count, by: 2) { heap.dicts[i].set(items[k], items[k + 1]) }

            case 0x71: try memoize(Int(try reader.u8("a memo index")))  // BINPUT
            case 0x72: try memoize(try reader.u32("a memo index"))      // LONG_BINPUT
            case 0x94: try memoize(memo.count)                          // MEMOIZE
            case 0x68, 0x6A:                                            // BINGET, LONG_BINGET
                let i = op == 0x68 ? Int(try reader.u8("a memo index")) : try reader.u32("a memo index")
                guard let v = memo[i] else { throw malformed("memo entry \(i) read before it was written") }
                try push(v)

            case 0x63:                                                  // GLOBAL "module\nname\n"
                let module = try line("a global's module"), name = try line("a global's name")
                try push(try resolve(module: module, name: name))
            case 0x93:                                                  // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard case .string(let m) = module, case .string(let n) = name else {
                    throw malformed("STACK_GLOBAL needs two strings, got \(module.kind) and \(name.kind)")
                }
                try push(try resolve(module: m, name: n))
            case 0x52:                                                  // REDUCE
                let args = try pop(), callable = try pop()
                try push(try reduce(callable, args))
            case 0x51:                                                  // BINPERSID
                try push(try persistentLoad(try pop()))
            case 0x62:                                                  // BUILD: only OrderedDict's attributes (_metadata)
                let state = try pop()
                guard case .dict = try top() else { throw malformed("BUILD on \(try top().kind); a state_dict builds only dicts") }
                switch state { case .dict, .none: break; default: throw malformed("BUILD with \(state.kind) as state") }

            default:
                if let name = Self.refused[op] {
                    throw ConvertError.refusedOpcode(path: path, opcode: name, offset: opcodeOffset)
                }
                throw malformed(String(format: "unknown opcode 0x%02x", op))
            }
        }
    }

    /// Opcodes a state_dict never uses: object construction, the extension registry, protocol-0 text forms,
    /// out-of-band buffers. Refused by name.
    static let refused: [UInt8: String] = [
        0x69: "INST", 0x6F: "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
        0x50: "PERSID", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
        0x49: "INT", 0x4C: "LONG", 0x46: "FLOAT", 0x53: "STRING", 0x56: "UNICODE", 0x70: "PUT", 0x67: "GET",
    ]

    // MARK: the approved callables

    private func tupleItems(_ v: PickleValue, _ what: String) throws -> [PickleValue] {
        guard case .tuple(let i) = v else { throw malformed("\(what) is \(v.kind), not a tuple") }
        return heap.tuples[i]
    }

    private func ints(_ v: PickleValue, _ what: String) throws -> [Int] {
        let items = try tupleItems(v, what)
        guard items.count <= Self.maxRank else { throw malformed("\(what) has \(items.count) dimensions") }
        return try items.map {
            guard case .int(let n) = $0, n >= 0 else { throw malformed("\(what) holds \($0.kind), not a non-negative int") }
            return n
        }
    }

    private mutating func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case .global(let g) = callable else { throw malformed("REDUCE calls \(callable.kind)") }
        let a = try tupleItems(args, "REDUCE's arguments")
        switch g {
        case .orderedDict:
            guard a.isEmpty else { throw malformed("collections.OrderedDict called with \(a.count) arguments") }
            heap.dicts.append(PickleDict())
            return .dict(heap.dicts.count - 1)
        case .rebuildTensorV2, .rebuildTensor:
            let expected = g == .rebuildTensor ? [4] : [6, 7]
            guard expected.contains(a.count) else {
                throw malformed("torch._utils._rebuild_tensor\(g == .rebuildTensor ? "" : "_v2") called with \(a.count) arguments")
            }
            if a.count >= 6 {
                guard case .dict(let hooks) = a[5], heap.dicts[hooks].keys.isEmpty else {
                    throw malformed("a tensor with backward hooks (a state_dict has none)")
                }
            }
            return try rebuildTensor(storage: a[0], offset: a[1], size: a[2], stride: a[3])
        case .rebuildParameter:
            guard a.count == 3, case .tensor = a[0] else { throw malformed("torch._utils._rebuild_parameter needs (tensor, requires_grad, hooks)") }
            return a[0]
        case .storageType(let t):
            throw ConvertError.refusedOpcode(path: path, opcode: "REDUCE calling torch.\(t.storageName)", offset: opcodeOffset)
        }
    }

    private mutating func rebuildTensor(storage: PickleValue, offset: PickleValue, size: PickleValue, stride: PickleValue) throws -> PickleValue {
        guard case .storage(let s) = storage else { throw malformed("a tensor built from \(storage.kind), not a storage") }
        guard case .int(let off) = offset, off >= 0 else { throw malformed("a tensor's storage offset is \(offset.kind) or negative") }
        let shape = try ints(size, "a tensor's size"), strides = try ints(stride, "a tensor's stride")
        guard shape.count == strides.count else { throw malformed("a tensor's size has \(shape.count) dimensions but its stride \(strides.count)") }
        let record = heap.storages[s]
        // Checked here against the size the persistent id declares (so a bad view is reported at its opcode), and
        // again when the tensor is bound to its bytes, against the bytes the file holds.
        if let problem = SourceTensor.viewProblem(shape: shape, strides: strides, offset: off, elements: record.numel) {
            throw malformed("a tensor of storage \(shown(record.key)) \(problem)")
        }
        heap.tensors.append(TensorRecord(storage: s, offset: off, shape: shape, strides: strides))
        return .tensor(heap.tensors.count - 1)
    }

    /// torch's persistent id of a storage: ('storage', torch.<T>Storage, key, location, numel) in the zip format,
    /// with a sixth item, the view metadata (None), in the legacy format.
    private mutating func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
        let t = try tupleItems(pid, "a persistent id")
        guard t.count == 5 || t.count == 6, case .string("storage") = t[0] else {
            throw malformed("a persistent id that is not ('storage', type, key, location, numel)")
        }
        guard case .global(.storageType(let type)) = t[1] else { throw malformed("a storage whose type is \(t[1].kind)") }
        guard case .string(let key) = t[2], case .string = t[3], case .int(let numel) = t[4], numel >= 0 else {
            throw malformed("a storage id with a bad key, location or size")
        }
        if t.count == 6 {
            guard case .none = t[5] else {
                throw malformed("storage \(shown(key)) is a view of another storage (pre-0.4 PyTorch); re-save the checkpoint")
            }
        }
        if let existing = heap.storageByKey[key] {
            let e = heap.storages[existing]
            guard e.type == type, e.numel == numel else {
                throw malformed("storage \(shown(key)) is named as \(e.numel) \(e.type) and as \(numel) \(type)")
            }
            return .storage(existing)
        }
        heap.storages.append(StorageRecord(type: type, key: key, numel: numel))
        heap.storageByKey[key] = heap.storages.count - 1
        return .storage(heap.storages.count - 1)
    }
}
