// Hostile and broken model files: each is a valid file with one thing wrong, and must fail with its own error.
import Foundation
import TestSupport
import XCTest
@testable import SegmentFormat

final class ValidationTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try TestSupport.temporaryDirectory(self) }

    /// Writes `image` and opens it.
    func open(_ image: FileImage) throws -> ModelFile { try ModelFile.open(try image.write(in: dir)) }
    var path: String { dir.appendingPathComponent("model.segm").path }

    func testValidImageOpens() throws {
        let model = try open(FileImage())
        XCTAssertEqual(model.metadata, Tiny.metadata)
        XCTAssertEqual(model.tensors.count, Tiny.config.expectedTensors().count)
    }

    // MARK: file level

    func testMissingFileAndFolder() {
        let missing = dir.appendingPathComponent("nope.segm").path
        XCTAssertThrows(ModelFileError.unreadable(path: missing, reason: "No such file or directory"), try ModelFile.open(missing))
        XCTAssertThrows(ModelFileError.unreadable(path: dir.path, reason: "it is a folder"), try ModelFile.open(dir.path))
        // A FIFO: opening it for reading must not wait for a writer.
        let fifo = dir.appendingPathComponent("pipe.segm").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertThrows(ModelFileError.unreadable(path: fifo, reason: "it is a FIFO (named pipe), not a regular file"), try ModelFile.open(fifo))
        XCTAssertThrows(ModelFileError.unreadable(path: "/dev/zero", reason: "it is a device, not a regular file"), try ModelFile.open("/dev/zero"))
    }

    func testEmptyFile() throws {
        XCTAssertThrows(ModelFileError.empty(path: path), try open(FileImage(bytes: [])))
    }

    func testWrongMagic() throws {
        var image = FileImage()
        image.bytes[0] = UInt8(ascii: "P")
        XCTAssertThrows(ModelFileError.badMagic(path: path), try open(image))
        // A PyTorch zip checkpoint (PK..), a single wrong byte.
        XCTAssertThrows(ModelFileError.badMagic(path: path), try open(FileImage(bytes: [0x50, 0x4B, 3, 4, 20, 0, 0, 0])))
        XCTAssertThrows(ModelFileError.badMagic(path: path), try open(FileImage(bytes: [0x53, 0x46])))
    }

    func testUnsupportedVersion() throws {
        for v: UInt32 in [0, 2, 0xFFFF_FFFF] {
            var image = FileImage()
            image.set(v, at: 4)
            XCTAssertThrows(ModelFileError.unsupportedVersion(path: path, version: v), try open(image))
        }
    }

    /// Cut points: inside the magic, inside the fixed header, inside the metadata, inside the tensor table,
    /// inside the padding, inside the data, one byte short.
    func testTruncatedFiles() throws {
        let full = FileImage()
        let size = full.bytes.count, header = full.u64(at: 24), data = full.u64(at: 48)
        XCTAssertGreaterThan(data, header)   // the image has padding to cut into
        for cut in [2, 6] {
            XCTAssertThrows(ModelFileError.truncated(path: path, expectedBytes: 56, actualBytes: cut), try open(FileImage(bytes: Array(full.bytes[..<cut]))))
        }
        XCTAssertThrows(ModelFileError.truncated(path: path, expectedBytes: 56, actualBytes: 55), try open(FileImage(bytes: Array(full.bytes[..<55]))))
        for cut in [56, 100, header - 10, header, data - 1, data, data + 1000, size - 1] {
            XCTAssertThrows(ModelFileError.truncated(path: path, expectedBytes: size, actualBytes: cut), try open(FileImage(bytes: Array(full.bytes[..<cut]))),
                            "cut at \(cut)")
        }
    }

    func testAppendedBytes() throws {
        var image = FileImage()
        let size = image.bytes.count
        image.bytes += [0]
        XCTAssertThrows(ModelFileError.trailingBytes(path: path, expectedBytes: size, actualBytes: size + 1), try open(image))
    }

    /// One flipped bit anywhere after the checksum field, in the header or in the data.
    func testBitFlipsFailTheChecksum() throws {
        let full = FileImage()
        for (i, bit) in [(16, 0), (40, 3), (60, 1), (full.u64(at: 24) - 1, 7), (full.u64(at: 48) + 5, 2), (full.bytes.count - 1, 6)] {
            var image = full
            image.bytes[i] ^= 1 << bit
            do {
                _ = try open(image)
                XCTFail("flip at \(i) accepted")
            } catch let e as ModelFileError {
                if i == 16 {   // the file_size field: the size check comes first
                    XCTAssertEqual(e, .truncated(path: path, expectedBytes: full.bytes.count + 1, actualBytes: full.bytes.count))
                } else {
                    guard case .checksumMismatch = e else { return XCTFail("flip at \(i): \(e)") }
                }
            }
        }
    }

    // MARK: header structure

    func testCorruptHeaderFields() throws {
        let full = FileImage()
        let cases: [(Int, UInt64, String)] = [
            (24, UInt64(full.bytes.count + 1), "header size"),           // header_size past the end
            (24, 40, "header size"),                                     // inside the fixed header
            (48, UInt64(full.u64(at: 48) + 64), "data offset"),          // data_offset not header_size rounded up
            (32, 1 << 40, "cannot fit"),                                 // absurd metadata count
            (40, UInt64.max, "cannot fit"),                              // absurd tensor count
            (32, UInt64(Tiny.metadata.entries().count - 1), ""),         // one entry short: the rest is misparsed
        ]
        for (at, value, words) in cases {
            var image = full
            image.set(value, at: at)
            image.rehash()
            do {
                _ = try open(image)
                XCTFail("field at \(at) = \(value) accepted")
            } catch let ModelFileError.corruptHeader(p, reason) {
                XCTAssertEqual(p, path)
                XCTAssertTrue(words.isEmpty || reason.contains(words), "\(at): \(reason)")
            } catch let ModelFileError.unknownMetadata(_, key) where at == 32 {
                XCTFail("misparsed as key \(key)")
            }
        }
    }

    func testHugeStringLengthIsRefusedWithoutAllocating() throws {
        var image = FileImage()
        image.set(UInt64.max, at: 56)   // the length of the first metadata key
        image.rehash()
        XCTAssertThrows(ModelFileError.corruptHeader(path: path, reason: "length of metadata key #0 is \(UInt64.max), more than the limit 256"), try open(image))
    }

    func testUnknownValueTypeAndInvalidUTF8() throws {
        var image = FileImage()
        let keyLength = "general.architecture".utf8.count
        image.set(UInt32(9), at: 56 + 8 + keyLength)
        image.rehash()
        XCTAssertThrows(ModelFileError.corruptHeader(path: path, reason: "metadata \"general.architecture\" has the unknown value type 9 (known: 1 int, 2 float, 3 string, 4 int array, 5 string array)"), try open(image))
        image = FileImage()
        image.bytes[56 + 8] = 0xFF   // first byte of the first key
        image.rehash()
        XCTAssertThrows(ModelFileError.corruptHeader(path: path, reason: "metadata key #0 is not valid UTF-8"), try open(image))
    }

    func testNonZeroPadding() throws {
        var image = FileImage()
        image.bytes[image.u64(at: 48) - 1] = 1
        image.rehash()
        XCTAssertThrows(ModelFileError.corruptHeader(path: path, reason: "the padding after the header (bytes \(image.u64(at: 24))..<\(image.u64(at: 48))) is not zero"), try open(image))
    }

    // MARK: metadata

    func entries(without key: String) -> [(key: String, value: MetadataValue)] { Tiny.metadata.entries().filter { $0.key != key } }

    func entries(setting key: String, to value: MetadataValue) -> [(key: String, value: MetadataValue)] {
        Tiny.metadata.entries().map { $0.key == key ? (key, value) : $0 }
    }

    func testMissingUnknownDuplicateAndMistypedMetadata() throws {
        XCTAssertThrows(ModelFileError.missingMetadata(path: path, key: "preprocessing.channels"),
                        try open(FileImage(entries: entries(without: "preprocessing.channels"))))
        XCTAssertThrows(ModelFileError.unknownMetadata(path: path, key: "preprocessing.gamma"),
                        try open(FileImage(entries: Tiny.metadata.entries() + [("preprocessing.gamma", .float(2))])))
        XCTAssertThrows(ModelFileError.badMetadata(path: path, key: "swin_unet.img_size", reason: "appears twice"),
                        try open(FileImage(entries: Tiny.metadata.entries() + [("swin_unet.img_size", .int(32))])))
        XCTAssertThrows(ModelFileError.badMetadata(path: path, key: "swin_unet.img_size", reason: "is a string, not a int"),
                        try open(FileImage(entries: entries(setting: "swin_unet.img_size", to: .string("32")))))
        XCTAssertThrows(ModelFileError.badMetadata(path: path, key: "provenance.seed", reason: "is a int, not a string"),
                        try open(FileImage(entries: entries(setting: "provenance.seed", to: .int(1)))))
        XCTAssertThrows(ModelFileError.badMetadata(path: path, key: "general.architecture", reason: "is \"unet\", but this segment runs \"swin-unet\" models only"),
                        try open(FileImage(entries: entries(setting: "general.architecture", to: .string("unet")))))
    }

    func testInvalidMetadataValues() throws {
        let cases: [(String, MetadataValue, String)] = [
            ("general.class_names", .strings(["background", "liver"]), "has 2 names but num_classes is 3"),
            ("general.class_names", .strings(["background", "liver", "liver"]), "has a name twice: [\"background\", \"liver\", \"liver\"]"),
            ("general.source_sha256", .string("ABC"), "is \"ABC\", not 64 lowercase hex digits"),
            ("preprocessing.channels", .string("bgr"), "is \"bgr\", not gray, rgb"),
            ("preprocessing.intensity", .string("ct"), "is \"ct\", not none, minmax, window, zscore"),
            ("preprocessing.window_hi", .float(-200), "and window_hi are -100.0, -200.0: they must be finite, with lo < hi for intensity window"),
            ("preprocessing.row_axis", .int(3), "is 3, not an array axis 0, 1 or 2"),
            ("preprocessing.row_axis", .int(2), "slice, row and column axes 2, 2, 1 are not distinct"),
            ("preprocessing.orientation", .string("LPR"), "is \"LPR\", not three axis codes such as RAS or LPS"),
            ("preprocessing.image_order", .int(6), "is 6, not a spline order this tool resamples with (0, 1, 3)"),
            ("preprocessing.label_order", .int(2), "is 2, not a spline order this tool resamples with (0, 1, 3)"),
        ]
        for (key, value, reason) in cases {
            do {
                _ = try open(FileImage(entries: entries(setting: key, to: value)))
                XCTFail("\(key) = \(value) accepted")
            } catch let ModelFileError.badMetadata(p, k, r) {
                XCTAssertEqual(p, path)
                XCTAssertTrue([key, "preprocessing.window_lo", "preprocessing.slice_axis"].contains(k), "\(key) reported as \(k)")
                XCTAssertEqual(r, reason)
            }
        }
    }

    /// A configuration failing SwinUNetConfig.problems(), and hostile ones that would overflow shape arithmetic.
    func testInvalidConfig() throws {
        XCTAssertThrows(ModelFileError.invalidConfig(path: path, problems: ["stage 0: resolution 8 is not a multiple of window 3", "stage 1: resolution 4 is not a multiple of window 3"]),
                        try open(FileImage(entries: entries(setting: "swin_unet.window_size", to: .int(3)))))
        XCTAssertThrows(ModelFileError.invalidConfig(path: path, problems: ["depths has 2 stages but num_heads has 3"]),
                        try open(FileImage(entries: entries(setting: "swin_unet.num_heads", to: .ints([1, 2, 4])))))
        XCTAssertThrows(ModelFileError.invalidConfig(path: path, problems: ["embed_dim is 4611686018427387904, outside 1...16384"]),
                        try open(FileImage(entries: entries(setting: "swin_unet.embed_dim", to: .int(1 << 62)))))
        XCTAssertThrows(ModelFileError.invalidConfig(path: path, problems: ["mlp_ratio is nan, outside (0, 64]"]),
                        try open(FileImage(entries: entries(setting: "swin_unet.mlp_ratio", to: .float(.nan)))))
        XCTAssertThrows(ModelFileError.invalidConfig(path: path, problems: ["number of stages is 0, outside 1...8"]),
                        try open(FileImage(entries: entries(setting: "swin_unet.depths", to: .ints([])))))
    }

    // MARK: tensor table

    func testUnknownDType() throws {
        var image = FileImage()
        image.set(UInt32(7), at: image.entry("norm.weight").dtype)
        image.rehash()
        XCTAssertThrows(ModelFileError.unknownDType(path: path, tensor: "norm.weight", code: 7), try open(image))
    }

    func testByteCountInconsistentWithShape() throws {
        var image = FileImage()
        image.set(UInt64(60), at: image.entry("norm.weight").byteCount)   // 16 f32 need 64
        image.rehash()
        XCTAssertThrows(ModelFileError.badByteCount(path: path, tensor: "norm.weight", shape: [16], dtype: .f32, byteCount: 60), try open(image))
    }

    func testMisalignedOffset() throws {
        var image = FileImage()
        let e = image.entry("norm.weight")
        let offset = image.u64(at: e.offset)
        image.set(UInt64(offset + 4), at: e.offset)
        image.rehash()
        XCTAssertThrows(ModelFileError.misaligned(path: path, tensor: "norm.weight", offset: image.u64(at: 48) + offset + 4), try open(image))
    }

    func testOffsetsPastTheEnd() throws {
        let full = FileImage()
        let data = full.u64(at: 48), size = full.bytes.count
        for offset in [UInt64(size - data) / 64 * 64 + 64, UInt64(size - data) / 64 * 64, 1 << 62] {   // fully past; straddling the end; absurd
            var image = full
            image.set(offset, at: image.entry("norm.weight").offset)
            image.rehash()
            XCTAssertThrows(ModelFileError.outOfBounds(path: path, tensor: "norm.weight", offset: data &+ Int(offset), byteCount: 64, fileSize: size), try open(image))
        }
    }

    func testOverlappingTensors() throws {
        var image = FileImage()
        let a = image.entry("norm.weight"), b = image.entry("norm.bias")
        image.set(UInt64(image.u64(at: a.offset) + 0), at: b.offset)   // norm.bias onto norm.weight
        image.rehash()
        XCTAssertThrows(ModelFileError.overlapping(path: path, tensor: "norm.bias", other: "norm.weight"), try open(image))
        // Partly: patch_embed.proj.weight (96x4 floats) starting inside the first 64 bytes of its own span + 64.
        image = FileImage()
        let big = image.entry("patch_embed.proj.weight"), next = image.entry("patch_embed.proj.bias")
        image.set(UInt64(image.u64(at: big.offset) + 64), at: next.offset)
        image.rehash()
        XCTAssertThrows(ModelFileError.overlapping(path: path, tensor: "patch_embed.proj.bias", other: "patch_embed.proj.weight"), try open(image))
    }

    func testDuplicateTensor() throws {
        var tensors = Tiny.rawTensors()
        tensors.append(tensors[3])
        XCTAssertThrows(ModelFileError.duplicateTensor(path: path, tensor: tensors[3].name), try open(FileImage(tensors: tensors)))
    }

    func testMissingTensor() throws {
        let tensors = Tiny.rawTensors().filter { $0.name != "layers.1.blocks.1.attn.relative_position_bias" }
        XCTAssertThrows(ModelFileError.missingTensor(path: path, tensor: "layers.1.blocks.1.attn.relative_position_bias", expectedShape: [2, 16, 16]),
                        try open(FileImage(tensors: tensors)))
    }

    func testUnknownTensor() throws {
        // The AdvMIM wrapper's mask token, which the converter must drop.
        let extra = ModelFileWriter.RawTensor(name: "mask_token", dtypeCode: 0, shape: [1, 64, 8], bytes: Array(repeating: 0, count: 64 * 8 * 4))
        XCTAssertThrows(ModelFileError.unknownTensor(path: path, tensor: "mask_token", shape: [1, 64, 8]),
                        try open(FileImage(tensors: Tiny.rawTensors() + [extra])))
    }

    func testWrongShape() throws {
        // Same element count, other shape (a transposed weight), and another element count.
        var tensors = Tiny.rawTensors()
        let i = tensors.firstIndex { $0.name == "layers.0.blocks.0.mlp.fc1.weight" }!
        tensors[i].shape = [8, 32]
        XCTAssertThrows(ModelFileError.wrongShape(path: path, tensor: "layers.0.blocks.0.mlp.fc1.weight", expected: [32, 8], found: [8, 32]),
                        try open(FileImage(tensors: tensors)))
        tensors = Tiny.rawTensors()
        let j = tensors.firstIndex { $0.name == "output.weight" }!
        tensors[j] = .init(name: "output.weight", dtypeCode: 0, shape: [4, 8, 1, 1], bytes: Array(repeating: 0, count: 4 * 8 * 4))
        XCTAssertThrows(ModelFileError.wrongShape(path: path, tensor: "output.weight", expected: [3, 8, 1, 1], found: [4, 8, 1, 1]),
                        try open(FileImage(tensors: tensors)))
    }

    /// A NaN or an infinity in any tensor, in any dtype, is refused at open with the tensor and the element named,
    /// even with a recomputed checksum (the checksum proves a file unchanged, not usable).
    func testNonFiniteWeightsAreRefusedWithTheTensorNamed() throws {
        let cases: [(DType, [UInt8], String)] = [
            (.f32, [0x00, 0x00, 0xC0, 0x7F], "NaN"), (.f32, [0x00, 0x00, 0x80, 0xFF], "-inf"),
            (.f16, [0x00, 0x7C], "inf"), (.f16, [0x01, 0x7E], "NaN"),
            (.bf16, [0x80, 0x7F], "inf"), (.bf16, [0xC1, 0x7F], "NaN"),
        ]
        for (dtype, pattern, text) in cases {
            let tensors = Tiny.rawTensors().map { t -> ModelFileWriter.RawTensor in
                let count = t.shape.reduce(1, *)
                var bytes = [UInt8](repeating: 0, count: count * dtype.bytesPerElement)   // zeros: finite
                if t.name == "layers.1.blocks.0.mlp.fc2.weight" {
                    let k = 5 * dtype.bytesPerElement
                    bytes.replaceSubrange(k ..< k + pattern.count, with: pattern)
                }
                return .init(name: t.name, dtypeCode: dtype.code, shape: t.shape, bytes: bytes)
            }
            XCTAssertThrows(ModelFileError.nonFinite(path: path, tensor: "layers.1.blocks.0.mlp.fc2.weight", index: 5, value: text),
                            try open(FileImage(tensors: tensors)), "\(dtype) \(text)")
        }
        // Largest finite values and subnormals are finite.
        let tensors = Tiny.rawTensors().map { t -> ModelFileWriter.RawTensor in
            let count = t.shape.reduce(1, *)
            let bytes = (0..<count).flatMap { i -> [UInt8] in i % 2 == 0 ? [0xFF, 0xFF, 0x7F, 0x7F] : [0x01, 0x00, 0x00, 0x80] }
            return .init(name: t.name, dtypeCode: DType.f32.code, shape: t.shape, bytes: bytes)
        }
        XCTAssertNoThrow(try open(FileImage(tensors: tensors)))
    }

    /// Random single-byte changes to the header (checksum then recomputed so they reach the parser) and random
    /// truncations never crash: each opens or throws a ModelFileError.
    func testRandomHeaderDamageNeverCrashes() throws {
        let full = FileImage()
        let header = full.u64(at: 24)
        var s: UInt64 = 99
        func next() -> Int { s = s &* 6364136223846793005 &+ 1442695040888963407; return Int(s >> 33) }
        var refused = 0
        for _ in 0..<1500 {
            var image = full
            for _ in 0..<(1 + next() % 3) { image.bytes[16 + next() % (header - 16)] = UInt8(truncatingIfNeeded: next()) }
            image.rehash()
            do { _ = try image.bytes.withUnsafeBytes { try ModelFile.parse($0, path: path) } } catch is ModelFileError { refused += 1 }
        }
        XCTAssertGreaterThan(refused, 1000)   // most damage is caught (some lands in values that stay valid)
        print("random header damage: \(refused) of 1500 refused")
    }
}
