// Test helpers of the engine tests: the fixture reader (safetensors, float32 only), a seeded generator of
// random tensors, pointer storage for kernel arguments, and comparisons that report what they measured.
import NaiveEngine
import Foundation
import SegmentCore
import SegmentFormat
import TestSupport
import XCTest
@testable import SegmentEngine
import SegmentKernels

/// A float32 safetensors file read whole: name -> (shape, values).
struct SafeTensors {
    var tensors: [String: (shape: [Int], values: [Float])] = [:]

    init(_ url: URL) throws {
        let data = try Data(contentsOf: url)
        let headerLength = Int(data.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
        let header = try JSONSerialization.jsonObject(with: data[8..<(8 + headerLength)]) as! [String: Any]
        for (name, entry) in header where name != "__metadata__" {
            let e = entry as! [String: Any]
            precondition(e["dtype"] as! String == "F32", "\(url.lastPathComponent): \(name) is not F32")
            let shape = e["shape"] as! [Int], range = e["data_offsets"] as! [Int]
            let bytes = data[(8 + headerLength + range[0])..<(8 + headerLength + range[1])]
            let values = bytes.withUnsafeBytes { raw in Array(raw.bindMemory(to: Float.self)) }
            tensors[name] = (shape, values)
        }
    }

    subscript(_ name: String) -> [Float] { tensors[name]!.values }
}

/// One case of trainer/fixtures/gen_engine.py.
struct EngineCase {
    let name: String
    let config: SwinUNetConfig
    let weights: SafeTensors
    let io: SafeTensors
    var input: [Float] { io["input"] }
    var batch: Int { io.tensors["input"]!.shape[0] }
    var channels: Int { io.tensors["input"]!.shape[1] }

    init(_ name: String) throws {
        self.name = name
        config = try JSONDecoder().decode(SwinUNetConfig.self,
                                          from: Data(contentsOf: TestSupport.fixture("engine/\(name)/config.json")))
        weights = try SafeTensors(TestSupport.fixture("engine/\(name)/weights.safetensors"))
        io = try SafeTensors(TestSupport.fixture("engine/\(name)/io.safetensors"))
    }

    func engine(threads: Int, maxBatch: Int? = nil, precision: Precision = .fp32) throws -> SwinUNetEngine {
        try SwinUNetEngine(config: config, threads: threads, maxBatch: maxBatch ?? batch, source: name, precision: precision) { n in
            guard let t = weights.tensors[n] else { throw CocoaError(.fileReadCorruptFile) }
            return t.values
        }
    }

    /// A model file of this case's weights stored as `dtype`, written to `folder`.
    func modelFile(_ dtype: DType, in folder: URL) throws -> ModelFile {
        var writer = ModelFileWriter(metadata: ModelMetadata(config: config, classNames: (0..<config.numClasses).map { "class\($0)" }))
        for spec in config.expectedTensors() { try writer.add(spec.name, shape: spec.shape, values: weights[spec.name], dtype: dtype) }
        let path = folder.appendingPathComponent("\(name)-\(dtype.rawValue).segm").path
        try writer.write(to: path)
        return try ModelFile.open(path)
    }
}

extension SwinUNetEngine {
    /// Binds `weights(name)` for every tensor of `config.expectedTensors()` (f32 values in PyTorch order), checks
    /// their sizes, and preallocates. `source` names the model in errors.
    convenience init(config: SwinUNetConfig, threads: Int, maxBatch: Int, source: String, precision: Precision = .fp32,
                     weights: (String) throws -> [Float]) throws {
        try self.init(config: config, threads: threads, maxBatch: maxBatch, source: source, precision: precision) { spec, out in
            let values = try weights(spec.name)
            guard values.count == spec.count else {
                throw EngineError(kind: .wrongTensor, message: "\(source): tensor '\(spec.name)' has \(values.count) values, expected \(spec.count) (shape \(spec.shape)). Re-convert the checkpoint with `segment convert`.")
            }
            _ = out.update(from: values)
        }
    }

    /// Logits of `input` as an array.
    func logits(_ input: [Float], batch: Int, channels: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: batch * config.numClasses * config.imgSize * config.imgSize)
        input.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { logits(i, batch: batch, channels: channels, into: $0) } }
        return out
    }

    /// Logits and every named stage activation, the modules run one by one (NaiveEngine's StageForward).
    func stages(_ input: [Float], batch: Int, channels: Int) -> [String: [Float]] {
        var seen: [String: [Float]] = [:]
        let forward = StageForward(self)
        input.withUnsafeBufferPointer { x in
            forward(x.baseAddress!, batch: batch, channels: channels) { name, values in seen[name] = Array(values) }
        }
        return seen
    }
}

/// Deterministic normal-ish values (SplitMix64 + Box-Muller).
struct Rand {
    var generator: SplitMix64
    init(_ seed: UInt64) { generator = SplitMix64(seed: seed) }
    mutating func uniform() -> Double { Double(generator.next() >> 11) / Double(1 << 53) }
    mutating func normal(_ n: Int, std: Double = 1, mean: Double = 0) -> [Float] {
        (0..<n).map { _ in Float(mean + std * (-2 * Foundation.log(max(uniform(), 1e-300))).squareRoot() * Foundation.cos(2 * .pi * uniform())) }
    }
}

/// Arrays pinned as pointers for kernel calls, freed with the store.
/// Every kernel level this CPU can run, best first (2 AVX-512, 1 AVX2, 0 plain C); resets the selection to the best.
func kernelISAs() -> [Int32] {
    seg_kernel_select(-1)
    return Array((0...seg_kernel_isa()).reversed())
}

final class Pinned {
    private var blocks: [UnsafeMutablePointer<Float>] = []
    private var tables: [UnsafeMutablePointer<Int32>] = []
    func callAsFunction(_ a: [Float]) -> UnsafePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(a.count, 1))
        p.initialize(from: a, count: a.count)
        blocks.append(p)
        return UnsafePointer(p)
    }
    /// A table of row indices (Int32), as the engine's row tables.
    func callAsFunction(_ a: [Int32]) -> UnsafePointer<Int32> {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: max(a.count, 1))
        p.initialize(from: a, count: a.count)
        tables.append(p)
        return UnsafePointer(p)
    }
    /// A (N, K) weight packed for the engine's GEMM (the raw values stay available through `self(...)`).
    func packed(_ w: UnsafePointer<Float>, N: Int, K: Int) -> PackedWeight {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: PackedWeight.floats(N: N, K: K))
        blocks.append(p)
        return PackedWeight(packing: w, N: N, K: K, into: p)
    }
    func packed(_ w: [Float], N: Int, K: Int) -> PackedWeight { packed(self(w), N: N, K: K) }
    func scratch(threads: Int, perThread: Int = 1 << 21, scores: Int = 8192) -> Scratch {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: threads * perThread)
        p.initialize(repeating: .nan, count: threads * perThread)
        blocks.append(p)
        return Scratch(base: p, perThread: perThread, scoreFloats: scores)
    }
    deinit { for b in blocks { b.deallocate() }; for t in tables { t.deallocate() } }
}

/// max |got - want| (infinity if any value is NaN).
func maxAbsDiff(_ got: [Float], _ want: [Float]) -> Float {
    precondition(got.count == want.count, "sizes differ: \(got.count) vs \(want.count)")
    var m: Float = 0
    for (a, b) in zip(got, want) { let d = abs(a - b); if d.isNaN { return .infinity }; m = max(m, d) }
    return m
}

/// Fails unless max |got - want| <= tol * max(1, max |want|); returns the measured relative error.
@discardableResult
func assertClose(_ got: [Float], _ want: [Float], tol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) -> Float {
    guard got.count == want.count else { XCTFail("\(what): \(got.count) values, expected \(want.count)", file: file, line: line); return .infinity }
    let scale = max(1, want.reduce(0) { max($0, abs($1)) })
    let err = maxAbsDiff(got, want) / scale
    XCTAssertLessThanOrEqual(err, tol, "\(what): max|diff| / max(1, max|ref|) = \(err) (scale \(scale)), tolerance \(tol)", file: file, line: line)
    return err
}

/// Fraction of pixels whose argmax over classes agrees, for logits (B, nc, P) laid out class-major per image.
func argmaxAgreement(_ a: [Float], _ b: [Float], batch: Int, classes nc: Int) -> Double {
    let P = a.count / (batch * nc)
    var same = 0
    for i in 0..<batch { for p in 0..<P {
        var ba = 0, bb = 0
        for k in 1..<max(nc, 1) {
            if a[(i * nc + k) * P + p] > a[(i * nc + ba) * P + p] { ba = k }
            if b[(i * nc + k) * P + p] > b[(i * nc + bb) * P + p] { bb = k }
        }
        if ba == bb { same += 1 }
    } }
    return Double(same) / Double(batch * P)
}
