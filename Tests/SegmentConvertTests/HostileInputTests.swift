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
}
