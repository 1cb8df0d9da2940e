// A training checkpoint through the whole chain: `segment convert` -> ModelFile.open -> engine == PyTorch.
import Foundation
import SegmentFormat
import TestSupport
import XCTest
@testable import SegmentEngine

final class EndToEndTests: XCTestCase {
    /// small3: a plain Swin-UNet state_dict (zip); small1: the AdvMIM wrapper layout in the legacy format.
    /// f32 must give exactly the logits of the engine bound to segment_torch.engine_tensors (the converter's
    /// contract), hence PyTorch's within the fp32 tolerance; f16 must match PyTorch with f16-rounded weights.
    func testCheckpointConvertedThenRunMatchesPyTorch() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        for name in ["small3", "small1"] {
            let c = try EngineCase(name)
            let direct = try c.engine(threads: 2).logits(c.input, batch: c.batch, channels: c.channels)
            for dtype in [DType.f32, .f16] {
                let model = dir.appendingPathComponent("\(name)-\(dtype.rawValue).segm").path
                let r = try TestSupport.run(TestSupport.segmentExecutable.path,
                                            ["convert", TestSupport.fixture("engine/\(name)/checkpoint.pth").path,
                                             "-o", model, "--dtype", dtype.rawValue, "--quiet"])
                XCTAssertEqual(r.status, 0, "segment convert \(name): \(r.stderr)")
                let engine = try SwinUNetEngine(model: ModelFile.open(model), threads: 2, maxBatch: c.batch)
                let got = engine.logits(c.input, batch: c.batch, channels: c.channels)
                if dtype == .f32 {
                    XCTAssertEqual(got, direct, "\(name): converted f32 model differs from the engine_tensors weights")
                    assertClose(got, c.io["logits"], tol: EngineVsPyTorchTests.tolerance, "\(name) converted f32 vs PyTorch")
                    let agree = argmaxAgreement(got, c.io["logits"], batch: c.batch, classes: c.config.numClasses)
                    XCTAssertGreaterThanOrEqual(agree, EngineVsPyTorchTests.argmaxBound, "\(name) converted: argmax agreement")
                } else {
                    assertClose(got, c.io["logits_f16"], tol: EngineVsPyTorchTests.tolerance, "\(name) converted f16 vs PyTorch f16 weights")
                }
            }
        }
    }
}
