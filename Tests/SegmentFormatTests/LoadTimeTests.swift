// A full-size Swin-T model file (27 M parameters, ~109 MB in f32): writing it, and the time to open it
// (mmap + complete validation, checksum included), which every `segment` run pays.
import Foundation
import TestSupport
import XCTest
@testable import SegmentFormat

final class LoadTimeTests: XCTestCase {
    func testSwinTOpensQuickly() throws {
        let config = SwinUNetConfig(numClasses: 4)
        let metadata = ModelMetadata(config: config, classNames: ["background", "RV", "MYO", "LV"])
        let dir = try TestSupport.temporaryDirectory(self)
        let path = dir.appendingPathComponent("swin-t.segm").path
        do {   // a scope, so the writer's buffers are freed before timing
            var w = ModelFileWriter(metadata: metadata)
            for (i, spec) in config.expectedTensors().enumerated() {
                try w.add(spec.name, shape: spec.shape, values: Tiny.values(spec.count, seed: UInt64(i)), dtype: .f32)
            }
            try w.write(to: path)
        }
        var times: [Double] = []
        var model: ModelFile?
        for _ in 0..<3 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            model = try ModelFile.open(path)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        let params = model!.tensors.reduce(0) { $0 + $1.count }
        XCTAssertEqual(model!.tensors.count, 218)
        XCTAssertEqual(params, 27_463_044)   // as segment_torch.engine_tensors(SwinUNet(num_classes=4))
        print("Swin-T model file: \(params) parameters, \(model!.fileSize) bytes, open (mmap + validation) ms: \(times.map { String(format: "%.1f", $0) })")
        // Generous bound (cold pages, a busy machine): measured ~50 ms; the point is catching a pathological regression.
        XCTAssertLessThan(times.min()!, 1000)
        let f = try model!.floats("layers.3.blocks.1.mlp.fc2.weight")
        XCTAssertEqual(f.count, 768 * 3072)
    }
}
