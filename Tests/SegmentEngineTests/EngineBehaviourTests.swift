// The public API's promises: reproducible output for a thread count, predict == argmax/softmax of logits,
// batches beyond maxBatch, model files in every storage dtype, and typed errors.
import NaiveEngine
import Foundation
import SegmentCore
import SegmentFormat
import TestSupport
import XCTest
@testable import SegmentEngine

final class EngineBehaviourTests: XCTestCase {
    /// Every kernel gives the same bits for any split of its rows, columns or windows, and which thread takes a
    /// tile never changes it: so the logits are identical for every call, engine and thread count (the shared
    /// work queue hands tiles out in a different order each time).
    func testSameOutputForEveryCallAndThreadCount() throws {
        let c = try EngineCase("small3")
        let single = try c.engine(threads: 1).logits(c.input, batch: c.batch, channels: c.channels)
        for t in [1, 2, 3, 5] {
            let a = try c.engine(threads: t), b = try c.engine(threads: t)
            for call in 0..<3 {
                XCTAssertEqual(a.logits(c.input, batch: c.batch, channels: c.channels), single, "threads \(t), call \(call): differs from 1 thread")
            }
            XCTAssertEqual(b.logits(c.input, batch: c.batch, channels: c.channels), single, "threads \(t): second engine differs")
        }
    }

    func testPredictIsArgmaxAndSoftmaxOfLogits() throws {
        let c = try EngineCase("small3")
        let engine = try c.engine(threads: 2)
        let nc = c.config.numClasses, plane = c.config.imgSize * c.config.imgSize
        let logits = engine.logits(c.input, batch: c.batch, channels: c.channels)
        var labels = [UInt8](repeating: 255, count: c.batch * plane)
        var probs = [Float](repeating: .nan, count: logits.count)
        c.input.withUnsafeBufferPointer { i in labels.withUnsafeMutableBufferPointer { l in probs.withUnsafeMutableBufferPointer { p in
            engine.predict(i, batch: c.batch, channels: c.channels, labels: l, probabilities: p)
        } } }
        var labelsOnly = [UInt8](repeating: 255, count: labels.count)
        c.input.withUnsafeBufferPointer { i in labelsOnly.withUnsafeMutableBufferPointer { l in
            engine.predict(i, batch: c.batch, channels: c.channels, labels: l, probabilities: nil)
        } }
        XCTAssertEqual(labelsOnly, labels, "labels depend on whether probabilities are asked for")
        var wantProbs = [Float](repeating: 0, count: logits.count)
        var mismatches = 0
        for b in 0..<c.batch { for q in 0..<plane {
            let scores = (0..<nc).map { logits[(b * nc + $0) * plane + q] }
            if Int(labels[b * plane + q]) != scores.firstIndex(of: scores.max()!)! { mismatches += 1 }
            for (k, v) in Reference.softmax(scores).enumerated() { wantProbs[(b * nc + k) * plane + q] = v }
        } }
        XCTAssertEqual(mismatches, 0, "labels that are not the first maximum of the logits")
        assertClose(probs, wantProbs, tol: 5e-7, "probabilities vs softmax(logits)")
    }

    func testBatchLargerThanMaxBatchRunsInPasses() throws {
        let c = try EngineCase("small3")                 // batch 3
        let whole = try c.engine(threads: 2).logits(c.input, batch: c.batch, channels: c.channels)
        let passes = try c.engine(threads: 2, maxBatch: 2).logits(c.input, batch: c.batch, channels: c.channels)
        // Tiles depend on the batch, but no kernel's arithmetic depends on its tile: the same bits.
        XCTAssertEqual(passes, whole, "maxBatch 2 vs 3")
        assertClose(passes, c.io["logits"], tol: EngineVsPyTorchTests.tolerance, "maxBatch 2 vs PyTorch")
    }

    /// More threads than windows at some stages and batches below maxBatch: every tiling mode and the scratch
    /// sized for the largest of them.
    func testManyThreadsSmallBatches() throws {
        let c = try EngineCase("small3")
        let engine = try c.engine(threads: 5, maxBatch: c.batch)
        let per = c.input.count / c.batch, perOut = c.io["logits"].count / c.batch
        for b in 1...c.batch {
            let got = engine.logits(Array(c.input[0..<(b * per)]), batch: b, channels: c.channels)
            assertClose(got, Array(c.io["logits"][0..<(b * perOut)]), tol: EngineVsPyTorchTests.tolerance, "threads 5 batch \(b)")
        }
    }

    // MARK: model files

    /// f32 model file == the weights bound directly (bit for bit); f16 / bf16 files == PyTorch run with the
    /// same rounded weights (the engine widens exactly), within the fp32 tolerance.
    func testModelFileInEveryDType() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        for name in ["small3", "small1"] {
            let c = try EngineCase(name)
            let direct = try c.engine(threads: 2).logits(c.input, batch: c.batch, channels: c.channels)
            for dtype in DType.allCases {
                let engine = try SwinUNetEngine(model: c.modelFile(dtype, in: dir), threads: 2, maxBatch: c.batch)
                XCTAssertEqual(engine.config, c.config)
                let got = engine.logits(c.input, batch: c.batch, channels: c.channels)
                switch dtype {
                case .f32: XCTAssertEqual(got, direct, "\(name): f32 model file differs from the bound weights")
                case .f16: assertClose(got, c.io["logits_f16"], tol: EngineVsPyTorchTests.tolerance, "\(name) f16 vs PyTorch f16 weights")
                case .bf16: assertClose(got, c.io["logits_bf16"], tol: EngineVsPyTorchTests.tolerance, "\(name) bf16 vs PyTorch bf16 weights")
                }
            }
        }
    }

    /// Swin-T stored as f16 / bf16: argmax agreement with the fp32 PyTorch logits, at stated bounds.
    /// (Measured on the fixture: see docs/perf-engine.md.)
    func testSwinTHalfPrecisionArgmaxAgreement() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let c = try EngineCase("swint")
        for (dtype, bound) in [(DType.f16, 0.998), (DType.bf16, 0.98)] {
            let engine = try SwinUNetEngine(model: c.modelFile(dtype, in: dir), threads: 2, maxBatch: c.batch)
            let got = engine.logits(c.input, batch: c.batch, channels: c.channels)
            let agree = argmaxAgreement(got, c.io["logits"], batch: c.batch, classes: c.config.numClasses)
            let err = maxAbsDiff(got, c.io["logits"])
            print("swint \(dtype.rawValue): argmax agreement with fp32 PyTorch \(agree), max |logit diff| \(err)")
            XCTAssertGreaterThanOrEqual(agree, bound, "swint \(dtype.rawValue) argmax agreement")
        }
    }

    // MARK: errors

    func testWrongTensorSizeIsAnInvalidModel() throws {
        let cfg = SwinUNetConfig(imgSize: 32, patchSize: 4, embedDim: 8, depths: [2, 2], numHeads: [2, 2], windowSize: 4)
        XCTAssertThrowsError(try SwinUNetEngine(config: cfg, threads: 1, maxBatch: 1, source: "m.segm") { name in
            [Float](repeating: 0, count: name == "layers.1.blocks.0.mlp.fc1.bias" ? 3 : cfg.expectedTensors().first { $0.name == name }!.count)
        }) { error in
            guard let e = error as? EngineError else { return XCTFail("not an EngineError: \(error)") }
            XCTAssertEqual(e.exitCode, .invalidModel)
            XCTAssertTrue(e.description.contains("m.segm") && e.description.contains("layers.1.blocks.0.mlp.fc1.bias")
                          && e.description.contains("segment convert"), e.description)
        }
    }

    func testInvalidConfigurationAndArguments() throws {
        let bad = SwinUNetConfig(imgSize: 30, patchSize: 4)
        XCTAssertThrowsError(try SwinUNetEngine(config: bad, threads: 1, maxBatch: 1, source: "bad.segm") { _ in [] }) {
            XCTAssertEqual(($0 as? EngineError)?.exitCode, .invalidModel)
        }
        let one = SwinUNetConfig(imgSize: 32, depths: [2], numHeads: [2])
        XCTAssertThrowsError(try SwinUNetEngine(config: one, threads: 1, maxBatch: 1, source: "one.segm") { _ in [] }) {
            XCTAssertEqual(($0 as? EngineError)?.exitCode, .invalidModel)
        }
        let ok = SwinUNetConfig(imgSize: 32, patchSize: 4, embedDim: 8, depths: [2, 2], numHeads: [2, 2], windowSize: 4)
        let zeros: (String) -> [Float] = { name in [Float](repeating: 0, count: ok.expectedTensors().first { $0.name == name }!.count) }
        for (threads, batch) in [(0, 1), (1, 0)] {
            XCTAssertThrowsError(try SwinUNetEngine(config: ok, threads: threads, maxBatch: batch, source: "m", weights: zeros)) {
                XCTAssertEqual(($0 as? EngineError)?.exitCode, .usage)
            }
        }
    }
}
