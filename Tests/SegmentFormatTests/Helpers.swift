// Shared by the SegmentFormat tests: a tiny valid model, deterministic weights, and byte surgery on model files.
import Foundation
import XCTest
@testable import SegmentFormat

enum Tiny {
    /// Stage 0: 8x8 tokens, window 4, shifted blocks; stage 1: 4x4 tokens, one window, no shift.
    static let config = SwinUNetConfig(imgSize: 32, patchSize: 4, inChans: 3, numClasses: 3, embedDim: 8,
                                       depths: [2, 2], numHeads: [1, 2], windowSize: 4, mlpRatio: 4)

    static var metadata: ModelMetadata {
        var p = Preprocessing()
        p.intensity = .window; p.windowLo = -100; p.windowHi = 240.5; p.orientation = "LPS"; p.imageOrder = .cubic
        return ModelMetadata(config: config, preprocessing: p, classNames: ["background", "liver", "tumour"],
                             sourceSHA256: String(repeating: "ab", count: 32), converterVersion: "test",
                             provenance: ["seed": "1337", "data": "LiTS"])
    }

    /// Deterministic values of many magnitudes (2^-30 ... 2^10, both signs), from a 64-bit LCG.
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var s = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<count).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            let mantissa = Float(s >> 40) / Float(1 << 24) + 0.5               // [0.5, 1.5)
            let exponent = Int((s >> 20) & 0xFFFFF) % 41 - 30                  // -30 ... 10
            return (s & 1 == 0 ? 1 : -1) * mantissa * Float(sign: .plus, exponent: exponent, significand: 1)
        }
    }

    /// The values of every expected tensor of `config`, seeded by position.
    static func weights(_ config: SwinUNetConfig = config) -> [(TensorSpec, [Float])] {
        config.expectedTensors().enumerated().map { i, spec in (spec, values(spec.count, seed: UInt64(i))) }
    }

    /// A valid model file of `config` with every tensor stored as `dtype`, written by ModelFileWriter.
    static func write(to path: String, dtype: DType = .f32, metadata: ModelMetadata = metadata) throws {
        var w = ModelFileWriter(metadata: metadata)
        for (spec, v) in weights(metadata.config) { try w.add(spec.name, shape: spec.shape, values: v, dtype: dtype) }
        try w.write(to: path)
    }

    /// The raw tensors a valid file holds (f32), for assembling variants with `ModelFileWriter.assemble`.
    static func rawTensors(_ config: SwinUNetConfig = config) -> [ModelFileWriter.RawTensor] {
        weights(config).map { spec, v in
            ModelFileWriter.RawTensor(name: spec.name, dtypeCode: DType.f32.code, shape: spec.shape, bytes: v.withUnsafeBytes { Array($0) })
        }
    }
}

/// A model file image to damage in tests; `open()` writes it to a fresh file and opens it.
struct FileImage {
    var bytes: [UInt8]

    init(entries: [(key: String, value: MetadataValue)] = Tiny.metadata.entries(), tensors: [ModelFileWriter.RawTensor] = Tiny.rawTensors()) {
        bytes = ModelFileWriter.assemble(entries: entries, tensors: tensors)
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    func u64(at i: Int) -> Int { Int(bytes[i..<i + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) }

    mutating func set(_ v: UInt64, at i: Int) { for k in 0..<8 { bytes[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) } }
    mutating func set(_ v: UInt32, at i: Int) { for k in 0..<4 { bytes[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) } }

    /// Recomputes the checksum, so that a change reaches the validation step after it.
    mutating func rehash() { ModelFileWriter.storeChecksum(&bytes) }

    /// Position of tensor `name`'s table entry just after its name: dtype u32, rank u32, dims, offset, byte size.
    func entry(_ name: String) -> (dtype: Int, rank: Int, offset: Int, byteCount: Int) {
        let key = Array(UInt64(name.utf8.count).littleEndianBytes) + Array(name.utf8)
        let header = u64(at: 24)
        guard let start = (56..<header).first(where: { bytes[$0..<min($0 + key.count, header)].elementsEqual(key) }) else {
            preconditionFailure("no tensor \(name)")
        }
        let p = start + key.count
        let rank = Int(bytes[p + 4])
        return (p, p + 4, p + 8 + 8 * rank, p + 16 + 8 * rank)
    }

    func write(in dir: URL, _ name: String = "model.segm") throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }
}

extension UInt64 {
    var littleEndianBytes: [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: self >> (8 * $0)) } }
}

/// Asserts `body` throws exactly `expected`.
func XCTAssertThrows<E: Error & Equatable, T>(_ expected: E, _ body: @autoclosure () throws -> T, _ message: String = "",
                                              file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected \(expected), nothing thrown. \(message)", file: file, line: line)
    } catch let e as E {
        XCTAssertEqual(e, expected, message, file: file, line: line)
    } catch {
        XCTFail("expected \(expected), got \(error). \(message)", file: file, line: line)
    }
}
