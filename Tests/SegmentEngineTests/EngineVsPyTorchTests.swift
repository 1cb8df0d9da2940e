// The engine against PyTorch (segment_torch) on the fixtures of trainer/fixtures/gen_engine.py: every named stage
// activation, so a failure names the stage, then the logits and their argmax.
import Foundation
import SegmentFormat
import TestSupport
import XCTest
@testable import SegmentEngine
import SegmentKernels

final class EngineVsPyTorchTests: XCTestCase {
    /// Tolerance on every stage and on the logits: max |diff| <= 1e-4 * max(1, max |reference|).
    static let tolerance: Float = 1e-4
    /// Fewest pixels whose argmax must agree with PyTorch's.
    static let argmaxBound = 0.9999

    static func stageNames(_ cfg: SwinUNetConfig) -> [String] {
        let L = cfg.numLayers
        return ["patch_embed"] + (0..<L).map { "encoder.\($0)" } + ["bottleneck"] + (0..<L).map { "decoder.\($0)" }
            + ["norm_up", "up", "logits"]
    }

    /// Every kernel level the CPU runs (AVX-512, AVX2, plain C), each at every thread count given.
    func compare(_ name: String, threads: [Int]) throws {
        let c = try EngineCase(name)
        defer { seg_kernel_select(-1) }
        for isa in kernelISAs() { for t in threads {
            seg_kernel_select(isa)
            let engine = try c.engine(threads: t)
            let got = engine.stages(c.input, batch: c.batch, channels: c.channels)
            var errors: [String] = []
            for stage in Self.stageNames(c.config) where c.io.tensors[stage] != nil {
                guard let g = got[stage] else { XCTFail("\(name): the engine reported no stage \(stage)"); continue }
                let e = assertClose(g, c.io[stage], tol: Self.tolerance, "\(name) kernels \(isa) threads \(t) stage \(stage)")
                errors.append("\(stage) \(String(format: "%.1e", e))")
            }
            XCTAssertEqual(got["logits"], engine.logits(c.input, batch: c.batch, channels: c.channels),
                           "\(name) kernels \(isa) threads \(t): the modules run one by one differ from the engine's forward")
            let agree = argmaxAgreement(got["logits"]!, c.io["logits"], batch: c.batch, classes: c.config.numClasses)
            XCTAssertGreaterThanOrEqual(agree, Self.argmaxBound, "\(name) kernels \(isa) threads \(t): argmax agreement \(agree)")
            print("\(name) kernels \(isa) threads \(t): relative max error per stage: \(errors.joined(separator: ", ")); argmax agreement \(agree)")
        } }
    }

    /// Swin-T (224, 96, [2,2,2,2], [3,6,12,24], window 7, 9 classes), a grayscale batch of 2.
    func testSwinTMatchesPyTorch() throws { try compare("swint", threads: [2]) }

    /// 4 small stages covering every window case, RGB input, 5 classes, 1 to 3 threads.
    func testSmallRGBMatchesPyTorch() throws { try compare("small3", threads: [1, 2, 3]) }

    /// 3 stages at window 7, a 1-channel model, 2 classes, mlp_ratio 3.
    func testSmallGrayMatchesPyTorch() throws { try compare("small1", threads: [1, 2]) }
}
