// Hostile header numbers, one per test: each must end in its own typed error (exit code, a message naming the file
// and the problem), never a trap, a hang or an allocation the file does not back.
import Foundation
@testable import SegmentConvert
import SegmentCore
import SegmentFormat
import TestSupport
import XCTest

final class HostileInputTests: XCTestCase {
    // MARK: storages and views

    func testStorageSizeBeyondInt64IsRefused() throws {
        // A storage of 2^62 float32 elements: its byte size overflows; the entry holds 16 bytes.
        var t = swinStart()
        t[0] = HandTensor(name: "patch_embed.proj.weight", key: "0", numel: 1 << 62, shape: [4], stride: [1])
        let path = try write(torchZip(t, storages: ["0": [UInt8](repeating: 0, count: 16)]), "huge-storage.pth")
        assertRefused(path, "badTensor", "has a storage of 4611686018427387904 float32 elements but entry archive/data/0 holds 16 bytes")
    }

    func testLegacyStorageSizeIsReadUnsigned() throws {
        // The legacy stream's u64 element count of storage 0 is 2^64 - 1 where the pickle says 128.
        let path = try write(torchLegacy(swinStart(), declared: ["0": .max]), "legacy.pth")
        assertRefused(path, "malformedArchive", "storage 0 has 18446744073709551615 elements but its tensors say 128")
        XCTAssertEqual(try Checkpoint.open(try write(torchLegacy(swinStart()), "ok.pth")).tensors.count, 4, "the builder writes a valid stream")
    }

    func testEmptyTensorWithHugeDimensionsIsRefused() throws {
        // Zero elements, but the other dimensions multiply beyond 2^63: every later product of them would trap.
        var t = swinStart()
        t.append(HandTensor(name: "norm.weight", key: "9", numel: 0, shape: [0, 1 << 40, 1 << 40], stride: [0, 1 << 40, 1]))
        let pth = try write(torchZip(t), "empty-huge.pth")
        assertRefused(pth, "malformedPickle", "dimensions multiply beyond 2^63")

        let json = #"{"t": {"dtype": "F32", "shape": [0, 1099511627776, 1099511627776], "data_offsets": [0, 0]}}"#
        let st = try write(le(json.utf8.count, 8) + Array(json.utf8), "empty-huge.safetensors")
        assertRefused(st, "malformedArchive", "impossibly large shape")
    }

    func testViewThatRepeatsElementsIsRefused() throws {
        // 128 elements read from a storage of one (stride 0): arrays built from it would outgrow the file.
        var t = swinStart()
        t[0] = HandTensor(name: "patch_embed.proj.weight", key: "0", numel: 1, shape: [8, 1, 4, 4], stride: [0, 0, 0, 0])
        let path = try write(torchZip(t), "expanded.pth")
        assertRefused(path, "malformedPickle", "repeats elements")
    }

    func testMarksCountAgainstTheObjectBudget() throws {
        let bytes: [UInt8] = [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x28, count: Unpickler.maxValues + 1) + [0x2E]
        XCTAssertThrowsError(try bytes.withUnsafeBytes { raw in
            var u = Unpickler(path: "marks.pkl", bytes: raw, heap: PickleHeap())
            return try u.load()
        }) { error in
            guard case let .malformedPickle(path, reason, _)? = error as? ConvertError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "marks.pkl")
            XCTAssertTrue(reason.contains("objects"), reason)
        }
    }

    // MARK: zip

    func testZipEntriesSharingALocalHeaderAreRefused() throws {
        let path = try write(torchZip(swinStart(), localOffset: ["archive/byteorder": 0]), "shared.pth")
        assertRefused(path, "malformedArchive", "entries archive/data.pkl and archive/byteorder share the local header at byte 0")
    }

    func testZipEntryInsideAnotherEntrysDataIsRefused() throws {
        // Entry data/1 (local header and data) lies inside the data of entry data/0.
        let path = try write(torchZip(swinStart(), embed: ["archive/data/1": "archive/data/0"]), "overlap.pth")
        assertRefused(path, "malformedArchive", "entry archive/data/0 claims")
        assertRefused(path, "malformedArchive", "(the entries overlap)")
    }

    // MARK: safetensors

    func testDeeplyNestedSafetensorsHeaderIsRefused() throws {
        let json = #"{"t": "# + String(repeating: "[", count: 20) + String(repeating: "]", count: 20) + "}"
        let path = try write(le(json.utf8.count, 8) + Array(json.utf8), "deep.safetensors")
        assertRefused(path, "malformedArchive", "nests 21 levels of brackets")
    }

    // MARK: configuration inference

    func testIntegerSquareRootOfAnyInt() {
        let r = 3_037_000_499                          // the largest root of an Int
        XCTAssertEqual(integerSquareRoot(r * r), r)
        XCTAssertNil(integerSquareRoot(r * r + 1))
        XCTAssertNil(integerSquareRoot(Int.max))
        XCTAssertEqual(integerSquareRoot(0), 0)
        XCTAssertEqual(integerSquareRoot(169), 13)
        XCTAssertNil(integerSquareRoot(-4))
    }

    func testBiasTableOfHugeEmptyShapeIsRefused() throws {
        // (Int.max, 0): no elements, so no storage bounds the first dimension; its square root is taken.
        var t = swinStart()
        t[2] = HandTensor(name: "layers.0.blocks.0.attn.relative_position_bias_table", key: "2", numel: 0,
                          shape: [Int.max, 0], stride: [0, 1])
        let path = try write(torchZip(t), "table.pth")
        assertRefused(path, "inconsistent", "layers.0.blocks.0.attn.relative_position_bias_table (9223372036854775807, 0) is not a ((2*window-1)^2, heads) table")
    }

    func testBlockIndicesAreDecimalDigits() throws {
        XCTAssertNil(blockPosition("layers_up.-9223372036854775808.blocks.1.attn_mask", stages: 4))
        XCTAssertNil(blockPosition("layers.+1.blocks.0.attn_mask", stages: 4))
        XCTAssertNil(blockPosition("layers.01.blocks.0.attn_mask", stages: 4))
        XCTAssertNil(blockPosition("layers.4.blocks.1.attn_mask", stages: 4))
        XCTAssertTrue(blockPosition("layers_up.1.blocks.12.attn_mask", stages: 4)! == (2, 12))
        // The same key in a checkpoint: an unknown key, named.
        var t = swinStart()
        t.append(HandTensor(name: "layers_up.-9223372036854775808.blocks.1.attn_mask", key: "9", numel: 0, shape: [0], stride: [1]))
        let path = try write(torchZip(t), "index.pth")
        assertRefused(path, "unknownKeys", "layers_up.-9223372036854775808.blocks.1.attn_mask", flags: ConfigFlags(imgSize: 16))
    }

    func testStagesAndBlocksAreBounded() throws {
        let empty = { (name: String) in HandTensor(name: name, key: "9", numel: 0, shape: [0], stride: [1]) }
        let stages = swinStart() + (1..<20).map { empty("layers.\($0).blocks.0.norm1.weight") }
        assertRefused(try write(torchZip(stages), "stages.pth"), "invalidConfig", "it has more than 8 stages")
        // 5,000 blocks: counted in one pass over the keys, and refused.
        let blocks = swinStart() + (1..<5000).map { empty("layers.0.blocks.\($0).norm1.weight") }
        assertRefused(try write(torchZip(blocks), "blocks.pth"), "invalidConfig", "stage 0 has 5000 blocks")
    }

    func testImageSizeIsBounded() throws {
        // An empty patch embedding (in_chans 0) lets the patch size be anything: 2^20 here, so img_size 2^21.
        var t = swinStart()
        t[0] = HandTensor(name: "patch_embed.proj.weight", key: "0", numel: 0, shape: [8, 0, 1 << 20, 1 << 20], stride: [0, 0, 0, 0])
        t.append(.dense("mask_token", key: "9", shape: [1, 4, 8]))
        assertRefused(try write(torchZip(t), "patch.pth"), "invalidConfig", "mask_token (1, 4, 8) means an img_size beyond 65536")
        // A flag is bounded the same way (exit 2).
        let tiny = try TestSupport.fixture("convert/tiny/no-buffers.safetensors").path
        assertRefused(tiny, "badOption", "beyond the largest input", exit: 2, flags: ConfigFlags(imgSize: 1 << 40))
    }

    func testLongNamesAreCutInMessages() throws {
        var t = swinStart()
        t.append(HandTensor(name: String(repeating: "x", count: 100_000), key: "9", numel: 0, shape: [0], stride: [1]))
        let path = try write(torchZip(t), "long.pth")
        assertRefused(path, "unknownKeys", "... (100000 bytes)", flags: ConfigFlags(imgSize: 16))
        XCTAssertThrowsError(try Converter.prepare(try Checkpoint.open(path), flags: ConfigFlags(imgSize: 16))) { error in
            XCTAssertLessThan("\(error)".count, 2000)
        }
    }

    // MARK: weights

    func convert(_ bytes: [UInt8], dtype: DType = .f32) throws -> (String, Error?) {
        let path = try write(bytes, "weights.safetensors")
        var options = ConvertOptions()
        options.dtype = dtype
        let out = try TestSupport.temporaryDirectory(self).appendingPathComponent("m.segm").path
        do { _ = try Converter.convert(checkpoint: path, to: out, options: options) } catch { return (path, error) }
        return (path, nil)
    }

    func assertNonFinite(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (path, error) = try convert(bytes)
        guard let error else { return XCTFail("converted", file: file, line: line) }
        XCTAssertEqual(caseName(error), "nonFinite", "\(error)", file: file, line: line)
        XCTAssertEqual((error as? SegmentError)?.exitCode, .invalidInput, file: file, line: line)
        XCTAssertTrue("\(error)".contains(path), "\(error)", file: file, line: line)
        XCTAssertTrue("\(error)".contains(fragment), "expected \"\(fragment)\" in: \(error)", file: file, line: line)
    }

    func testNonFiniteWeightsNameTheirTensor() throws {
        let fixture = "small/state_dict.safetensors"
        try assertNonFinite(try editedSafetensors(fixture) { h, d in
            try setFloat(h, &d, "swin_unet.layers.0.blocks.0.attn.qkv.weight", 17, .nan)
        }, "tensor swin_unet.layers.0.blocks.0.attn.qkv.weight holds NaN at [2, 1]; a model's weights must be finite")
        // A bias table's values reach the model through the dense bias: the table is named.
        try assertNonFinite(try editedSafetensors(fixture) { h, d in
            try setFloat(h, &d, "swin_unet.layers.1.blocks.0.attn.relative_position_bias_table", 5, -.infinity)
        }, "tensor swin_unet.layers.1.blocks.0.attn.relative_position_bias_table holds -inf at [2, 1]")
        // A float64 value beyond float32's range.
        try assertNonFinite(try editedSafetensors(fixture) { h, d in
            var info = try XCTUnwrap(h["swin_unet.norm.weight"] as? [String: Any])
            let shape = try XCTUnwrap(info["shape"] as? [Int])
            var values = [Double](repeating: 0.5, count: shape.reduce(1, *))
            values[3] = 1e300
            info["dtype"] = "F64"
            info["data_offsets"] = [d.count, d.count + 8 * values.count]
            values.withUnsafeBytes { d += $0 }
            h["swin_unet.norm.weight"] = info
        }, "tensor swin_unet.norm.weight holds 1e+300 at [3], beyond the range of float32")
    }

    func testWeightsBeyondF16AreAUsageErrorOfDtype() throws {
        let bytes = try editedSafetensors("small/state_dict.safetensors") { h, d in
            try setFloat(h, &d, "swin_unet.norm.weight", 2, 70000)
        }
        let (path, error) = try convert(bytes, dtype: .f16)
        let e = try XCTUnwrap(error)
        XCTAssertEqual(caseName(e), "badOption", "\(e)")
        XCTAssertEqual((e as? SegmentError)?.exitCode, .usage)
        XCTAssertTrue("\(e)".contains("--dtype f16: checkpoint \(path): norm.weight holds 70000.0"), "\(e)")
        XCTAssertNil(try convert(bytes, dtype: .bf16).1, "bf16 holds 70000")
    }
}
