// The restricted unpickler against CPython's pickle on plain data (protocols 2 to 5), and its limits: deep
// nesting, object counts, stack discipline. The checksums (CRC-32, SHA-256) against zlib and hashlib.
import Foundation
@testable import SegmentConvert
import TestSupport
import XCTest

final class PickleTests: XCTestCase {
    /// Runs the unpickler on `bytes`.
    func unpickle(_ bytes: [UInt8]) throws -> (PickleValue, PickleHeap) {
        let heap = PickleHeap()
        let value = try bytes.withUnsafeBytes { raw in
            var u = Unpickler(path: "test.pkl", bytes: raw, heap: heap)
            return try u.load()
        }
        return (value, heap)
    }

    /// A value as JSON-able Foundation objects, in the form the Python side below builds.
    func plain(_ v: PickleValue, _ heap: PickleHeap) -> Any {
        switch v {
        case .none: return ["none"]
        case .bool(let b): return ["bool", b]
        case .int(let i): return ["int", String(i)]
        case .bigInt(let bytes): return ["bigint", bytes.map { String(format: "%02x", $0) }.joined()]
        case .float(let d): return ["float", String(d.bitPattern, radix: 16)]
        case .string(let s): return ["str", s]
        case .bytes(let n): return ["bytes", n]
        case .tuple(let i): return ["tuple"] + heap.tuples[i].map { plain($0, heap) }
        case .list(let i): return ["list"] + heap.lists[i].map { plain($0, heap) }
        case .dict(let i): return ["dict"] + zip(heap.dicts[i].keys, heap.dicts[i].values).map { [plain($0, heap), plain($1, heap)] }
        default: return ["other"]
        }
    }

    func json(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    func testPlainDataMatchesCPython() throws {
        // Python pickles each object with each protocol and prints [pickle hex, expected plain form].
        let code = #"""
        import json, pickle, struct
        from collections import OrderedDict
        def plain(v):
            if v is None: return ["none"]
            if isinstance(v, bool): return ["bool", v]
            if isinstance(v, int):
                return ["int", str(v)] if -2**63 <= v < 2**63 else ["bigint", pickle.encode_long(v).hex()]
            if isinstance(v, float): return ["float", format(struct.unpack("<Q", struct.pack("<d", v))[0], "x")]
            if isinstance(v, str): return ["str", v]
            if isinstance(v, (bytes, bytearray)): return ["bytes", len(v)]
            if isinstance(v, tuple): return ["tuple"] + [plain(x) for x in v]
            if isinstance(v, (list, set, frozenset)): return ["list"] + [plain(x) for x in v]
            if isinstance(v, dict): return ["dict"] + [[plain(k), plain(x)] for k, x in v.items()]
        shared = ["shared", 1]
        data = [   # plain data every protocol writes with the opcodes a state_dict uses
            None, True, False, 0, 1, 255, 256, 65535, 65536, -1, -129, 2**31 - 1, -2**31, 2**31, 2**63 - 1, -2**63,
            2**64, -2**70, 0x1950a86a20f9469cfc6c, 0.0, -0.0, 1.5, 1e300, float("inf"), "", "state_dict", "µm 肝臓 🫀",
            "x" * 300, (), (1,), (1, 2), (1, 2, 3), tuple(range(10)), [], list(range(1200)), {},
            {"a": 1, "b": [1.0, {"c": ()}]}, OrderedDict(w=1, x=2), {1: "one", 2.5: None}, {"k": shared, "l": shared},
            [shared, shared, (shared,)],
        ]
        newer = [b"", b"\x00\x01" * 200, {3, 1, 2}, frozenset({4, 5})]   # opcodes of protocol 4 (bytes: 3)
        out = []
        for proto in (2, 3, 4, 5):
            for o in data + (newer if proto >= 4 else []) + ([bytearray(b"ab")] if proto == 5 else []):
                out.append([proto, pickle.dumps(o, protocol=proto).hex(), plain(o)])
        print(json.dumps(out))
        """#
        let cases = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try TestSupport.python(code).utf8)) as? [[Any]])
        XCTAssertGreaterThan(cases.count, 150)
        for c in cases {
            let proto = c[0] as! Int, hex = c[1] as! String
            let bytes = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
                let s = hex.index(hex.startIndex, offsetBy: i)
                return UInt8(hex[s..<hex.index(s, offsetBy: 2)], radix: 16)!
            }
            let (value, heap) = try unpickle(bytes)
            XCTAssertEqual(try json(plain(value, heap)), try json(c[2]), "protocol \(proto): \(hex.prefix(80))")
        }
    }

    func testDeepNestingNeitherRecursesNorCrashes() throws {
        // NONE wrapped in a million 1-tuples: built and freed without recursion.
        let depth = 1_000_000
        let bytes: [UInt8] = [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: depth) + [0x2E]
        let (value, heap) = try unpickle(bytes)
        guard case .tuple = value else { return XCTFail("\(value)") }
        XCTAssertEqual(heap.tuples.count, depth)
    }

    func testObjectCountIsBounded() throws {
        // More NONEs than the cap: refused before memory grows further.
        let bytes: [UInt8] = [0x80, 0x02] + [UInt8](repeating: 0x4E, count: Unpickler.maxValues + 1) + [0x2E]
        XCTAssertThrowsError(try unpickle(bytes)) { error in
            guard case let .malformedPickle(_, reason, _)? = error as? ConvertError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("objects"), reason)
        }
    }

    func testStackDisciplineAndUnknownOpcodes() throws {
        let cases: [([UInt8], String)] = [
            ([0x2E], "stack underflow"),                                     // STOP on an empty stack
            ([0x80, 0x02, 0x4E, 0x28, 0x30, 0x2E], "stack underflow"),       // POP crossing a MARK
            ([0x80, 0x02, 0x74, 0x2E], "no MARK"),                           // TUPLE without MARK
            ([0x80, 0x02, 0x4E, 0x4E, 0x61, 0x2E], "APPEND to None"),        // APPEND to a non-list
            ([0x80, 0x02, 0xFF, 0x2E], "unknown opcode 0xff"),
            ([0x80, 0x09, 0x2E], "pickle protocol 9"),
            ([0x80, 0x02, 0x4E, 0x29, 0x52, 0x2E], "REDUCE calls None"),     // calling a non-global
            ([0x80, 0x02, 0x4E, 0x7D, 0x62, 0x2E], "BUILD on None"),         // BUILD on a non-dict
        ]
        for (bytes, message) in cases {
            XCTAssertThrowsError(try unpickle(bytes), message) { error in
                XCTAssertTrue("\(error)".contains(message), "expected \"\(message)\": \(error)")
            }
        }
    }

    func testRefusedOpcodesAreNamed() throws {
        for (op, name) in [(UInt8(0x69), "INST"), (0x6F, "OBJ"), (0x81, "NEWOBJ"), (0x92, "NEWOBJ_EX"), (0x82, "EXT1"),
                           (0x50, "PERSID"), (0x97, "NEXT_BUFFER"), (0x49, "INT")] {
            XCTAssertThrowsError(try unpickle([0x80, 0x02, op, 0x2E])) { error in
                guard case let .refusedOpcode(_, opcode, offset)? = error as? ConvertError else { return XCTFail("\(name): \(error)") }
                XCTAssertEqual(opcode, name)
                XCTAssertEqual(offset, 2)
            }
        }
    }

    func testTensorViewsMustStayInsideTheirStorage() throws {
        // _rebuild_tensor_v2(storage of 6 floats, offset, size, stride, False, OrderedDict()) for good and bad views.
        func tensorPickle(offset: UInt8, size: [UInt8], stride: [UInt8]) -> [UInt8] {
            var b: [UInt8] = [0x80, 0x02]
            b += Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8) + [0x28]                  // GLOBAL, MARK
            b += [0x28] + [0x58, 7, 0, 0, 0] + Array("storage".utf8) + Array("ctorch\nFloatStorage\n".utf8)
            b += [0x58, 1, 0, 0, 0, 0x30] + [0x58, 3, 0, 0, 0] + Array("cpu".utf8) + [0x4B, 6, 0x74, 0x51]   // ...numel 6) BINPERSID
            b += [0x4B, offset, 0x28] + size.flatMap { [0x4B, $0] } + [0x74, 0x28] + stride.flatMap { [0x4B, $0] } + [0x74]
            b += [0x89] + Array("ccollections\nOrderedDict\n".utf8) + [0x29, 0x52, 0x74, 0x52, 0x2E]
            return b
        }
        let (ok, heap) = try unpickle(tensorPickle(offset: 1, size: [2, 2], stride: [1, 3]))   // reads elements 1, 4, 2, 5
        guard case .tensor(let t) = ok else { return XCTFail("\(ok)") }
        XCTAssertEqual(heap.tensors[t].shape, [2, 2])
        for (offset, size, stride) in [(UInt8(3), [UInt8(2), 2], [UInt8(2), 1]), (0, [7], [1]), (0, [2, 3], [4, 1])] {
            XCTAssertThrowsError(try unpickle(tensorPickle(offset: offset, size: size, stride: stride))) { error in
                XCTAssertTrue("\(error)".contains("reads element"), "\(error)")
            }
        }
    }

    func testChecksumsMatchZlibAndHashlib() throws {
        // Lengths around the SHA-256 padding boundaries and the CRC's 8-byte steps.
        let lengths = [0, 1, 7, 8, 9, 55, 56, 63, 64, 65, 119, 120, 1000, 1 << 20]
        let code = """
        import hashlib, json, sys, zlib
        out = []
        for n in json.loads(sys.argv[1]):
            data = bytes((i * 131 + 7) % 251 for i in range(n))
            out.append([hashlib.sha256(data).hexdigest(), zlib.crc32(data)])
        print(json.dumps(out))
        """
        let reference = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try TestSupport.python(code, ["\(lengths)"]).utf8)) as? [[Any]])
        for (n, ref) in zip(lengths, reference) {
            let data = (0..<n).map { UInt8(($0 * 131 + 7) % 251) }
            data.withUnsafeBytes { raw in
                XCTAssertEqual(SHA256.hex(raw), ref[0] as? String, "sha256 of \(n) bytes")
                XCTAssertEqual(Int(CRC32.checksum(raw)), ref[1] as? Int, "crc32 of \(n) bytes")
                XCTAssertEqual(CRC32.checksumBytewise(raw), CRC32.checksum(raw), "crc32 bytewise vs sliced, \(n) bytes")
            }
        }
    }
}
