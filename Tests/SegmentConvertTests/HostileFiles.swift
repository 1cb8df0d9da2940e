// Hand-made hostile checkpoints, built byte by byte: torch's pickle of a state_dict with any sizes, strides and
// storage sizes, the stored zip around it (with the entry layout under the test's control), and edits of the
// safetensors fixture. Each test states exactly which header number is hostile.
import Foundation
@testable import SegmentConvert
import SegmentCore
import TestSupport
import XCTest

/// One tensor of a hand-made state_dict: `name` -> _rebuild_tensor_v2(storage `key`, offset, shape, stride).
struct HandTensor {
    var name: String
    var key: String
    var storage = "FloatStorage"
    var numel: Int
    var offset = 0
    var shape: [Int]
    var stride: [Int]

    /// A contiguous float32 tensor with a storage of its own.
    static func dense(_ name: String, key: String, shape: [Int]) -> HandTensor {
        HandTensor(name: name, key: key, numel: shape.reduce(1, *), shape: shape,
                   stride: shape.indices.map { shape[($0 + 1)...].reduce(1, *) })
    }
}

/// Pickle opcodes (protocol 2), as torch.save writes them.
struct PickleBytes {
    var bytes: [UInt8] = [0x80, 0x02]

    mutating func string(_ s: String) {
        let u = Array(s.utf8)
        bytes += [0x58] + le(u.count, 4) + u                                       // BINUNICODE
    }
    mutating func int(_ v: Int) {
        if (0...255).contains(v) { bytes += [0x4B, UInt8(v)] } else { bytes += [0x8A, 8] + le(v, 8) }   // BININT1 / LONG1
    }
    mutating func global(_ module: String, _ name: String) { bytes += [0x63] + Array("\(module)\n\(name)\n".utf8) }
    mutating func ints(_ v: [Int]) {
        bytes.append(0x28)
        v.forEach { int($0) }
        bytes.append(0x74)                                                         // MARK ... TUPLE
    }
    mutating func tensor(_ t: HandTensor) {
        global("torch._utils", "_rebuild_tensor_v2")
        bytes.append(0x28)
        bytes.append(0x28); string("storage"); global("torch", t.storage); string(t.key); string("cpu"); int(t.numel)
        bytes += [0x74, 0x51]                                                      // TUPLE, BINPERSID
        int(t.offset); ints(t.shape); ints(t.stride)
        bytes.append(0x89); global("collections", "OrderedDict"); bytes += [0x29, 0x52]   // False, OrderedDict()
        bytes += [0x74, 0x52]                                                      // TUPLE, REDUCE
    }

    /// {name: tensor, ...}. Tensors after the first that share its storage key and view reuse it through the memo,
    /// so a state_dict of many keys stays small.
    static func stateDict(_ tensors: [HandTensor]) -> [UInt8] {
        var p = PickleBytes()
        p.bytes.append(0x7D)                                                       // EMPTY_DICT
        var memo: [String: UInt8] = [:]
        for t in tensors {
            p.string(t.name)
            let id = "\(t.key) \(t.offset) \(t.shape) \(t.stride)"
            if let m = memo[id] { p.bytes += [0x68, m] } else {                   // BINGET
                p.tensor(t)
                if memo.count < 256 { memo[id] = UInt8(memo.count); p.bytes += [0x71, memo[id]!] }   // BINPUT
            }
            p.bytes.append(0x73)                                                   // SETITEM
        }
        p.bytes.append(0x2E)
        return p.bytes
    }
}

func le(_ v: Int, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

/// A stored zip as torch.save writes it. `localOffset` overrides the local header offset the central directory
/// gives an entry (by name); `embed` places an entry's local header and data inside another entry's data instead of
/// after it (by name: the entry it goes into), to build overlapping entries.
func storedZip(_ entries: [(name: String, data: [UInt8])], localOffset: [String: Int] = [:],
               embed: [String: String] = [:]) -> [UInt8] {
    func local(_ name: String, _ data: [UInt8]) -> [UInt8] {
        let n = Array(name.utf8)
        var crc: UInt32 = 0
        data.withUnsafeBytes { crc = CRC32.checksum($0) }
        return le(0x0403_4B50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(Int(crc), 4) + le(data.count, 4)
            + le(data.count, 4) + le(n.count, 2) + le(0, 2) + n + data
    }
    var out: [UInt8] = [], central: [UInt8] = []
    var offsets: [String: Int] = [:]
    var contents = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0.data) })
    // An embedded entry becomes part of its host's data, right after the host's first 8 bytes.
    for (inner, host) in embed {
        let innerBytes = local(inner, contents[inner]!)
        var h = contents[host]!
        h.insert(contentsOf: innerBytes, at: 8)
        contents[host] = h
    }
    for (name, _) in entries where embed[name] == nil {
        offsets[name] = out.count
        out += local(name, contents[name]!)
        for (inner, host) in embed where host == name {
            offsets[inner] = offsets[name]! + 30 + name.utf8.count + 8
        }
    }
    for (name, _) in entries {
        let data = contents[name]!, n = Array(name.utf8)
        var crc: UInt32 = 0
        data.withUnsafeBytes { crc = CRC32.checksum($0) }
        central += le(0x0201_4B50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(Int(crc), 4)
            + le(data.count, 4) + le(data.count, 4) + le(n.count, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4)
            + le(localOffset[name] ?? offsets[name]!, 4) + n
    }
    let cdOffset = out.count
    out += central
    out += le(0x0605_4B50, 4) + le(0, 2) + le(0, 2) + le(entries.count, 2) + le(entries.count, 2) + le(central.count, 4)
        + le(cdOffset, 4) + le(0, 2)
    return out
}

/// torch.save's zip archive around a state_dict pickle; each storage's bytes are zeros of its declared size unless
/// `storages` gives them.
func torchZip(_ tensors: [HandTensor], storages: [String: [UInt8]] = [:], localOffset: [String: Int] = [:],
              embed: [String: String] = [:]) -> [UInt8] {
    var entries: [(name: String, data: [UInt8])] = [("archive/data.pkl", PickleBytes.stateDict(tensors)),
                                                     ("archive/byteorder", Array("little".utf8))]
    var seen = Set<String>()
    for t in tensors where seen.insert(t.key).inserted {
        entries.append(("archive/data/\(t.key)", storages[t.key] ?? [UInt8](repeating: 0, count: t.numel * 4)))
    }
    return storedZip(entries, localOffset: localOffset, embed: embed)
}

/// torch.save's legacy stream around a state_dict pickle: magic number, protocol 1001, sys_info, the state_dict,
/// the storage keys, then per storage its element count (u64, `declared` overrides it by key) and its bytes (zeros).
func torchLegacy(_ tensors: [HandTensor], declared: [String: UInt64] = [:]) -> [UInt8] {
    var out: [UInt8] = [0x80, 0x02, 0x8A, 10] + Checkpoint.legacyMagic + [0x2E]     // LONG1 magic
    out += [0x80, 0x02, 0x4D] + le(1001, 2) + [0x2E]                                  // BININT2 1001
    out += [0x80, 0x02, 0x7D, 0x2E]                                                   // sys_info {}
    out += PickleBytes.stateDict(tensors)
    var keys: [HandTensor] = [], seen = Set<String>()
    for t in tensors where seen.insert(t.key).inserted { keys.append(t) }
    var list = PickleBytes()
    list.bytes += [0x5D, 0x28]                                                         // EMPTY_LIST, MARK
    keys.forEach { list.string($0.key) }
    out += list.bytes + [0x65, 0x2E]                                                   // APPENDS, STOP
    for t in keys {
        let n = declared[t.key] ?? UInt64(t.numel)
        out += (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + [UInt8](repeating: 0, count: t.numel * 4)
    }
    return out
}

/// The first keys a Swin-UNet's configuration is read from (embed 8, 1 input channel, patch 4, 4 classes, one
/// stage of window 4 and one head), each with a storage of its own; tests add or replace keys.
func swinStart() -> [HandTensor] {
    [.dense("patch_embed.proj.weight", key: "0", shape: [8, 1, 4, 4]),
     .dense("output.weight", key: "1", shape: [4, 8, 1, 1]),
     .dense("layers.0.blocks.0.attn.relative_position_bias_table", key: "2", shape: [49, 1]),
     .dense("layers.0.blocks.0.mlp.fc1.weight", key: "3", shape: [16, 8])]
}

extension XCTestCase {
    /// Writes `bytes` to a fresh file named `name` and returns its path.
    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let url = try TestSupport.temporaryDirectory(self).appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// Opens and prepares the checkpoint at `path`; asserts it fails with ConvertError `expected` (a case name),
    /// exit code `exit`, and a message naming the file and containing `fragment`.
    func assertRefused(_ path: String, _ expected: String, _ fragment: String, exit: Int32 = 3, flags: ConfigFlags = ConfigFlags(),
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Converter.prepare(try Checkpoint.open(path), flags: flags), file: file, line: line) { error in
            XCTAssertEqual(caseName(error), expected, "\(error)", file: file, line: line)
            XCTAssertEqual((error as? SegmentError)?.exitCode.rawValue, exit, "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(path), "the message does not name the file: \(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(fragment), "expected \"\(fragment)\" in: \(error)", file: file, line: line)
        }
    }
}

/// The safetensors fixture `file` with its header and data edited: `edit` gets the header entries and the data.
func editedSafetensors(_ file: String, _ edit: (inout [String: Any], inout [UInt8]) throws -> Void) throws -> [UInt8] {
    let bytes = [UInt8](try Data(contentsOf: try TestSupport.fixture("convert/" + file)))
    let n = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    var header = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
    var data = Array(bytes[(8 + n)...])
    try edit(&header, &data)
    let json = [UInt8](try JSONSerialization.data(withJSONObject: header))
    return le(json.count, 8) + json + data
}

/// Sets element `i` of float32 tensor `name` in a safetensors header + data to `value`.
func setFloat(_ header: [String: Any], _ data: inout [UInt8], _ name: String, _ i: Int, _ value: Float) throws {
    let info = try XCTUnwrap(header[name] as? [String: Any], name)
    XCTAssertEqual(info["dtype"] as? String, "F32")
    let begin = try XCTUnwrap(info["data_offsets"] as? [Int])[0]
    withUnsafeBytes(of: value.bitPattern.littleEndian) { data.replaceSubrange((begin + 4 * i)..<(begin + 4 * i + 4), with: $0) }
}
