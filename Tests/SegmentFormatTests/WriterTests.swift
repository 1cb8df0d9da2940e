// ModelFileWriter refuses what would not make a valid model file, naming the tensor, before writing anything.
import Foundation
import SegmentCore
import TestSupport
import XCTest
@testable import SegmentFormat

final class WriterTests: XCTestCase {
    func refusal(_ tensor: String, _ reason: String) -> ModelWriterError { ModelWriterError(path: "", tensor: tensor, reason: reason) }

    func testAddRefusesWhatTheSpecDoesNotHold() {
        var w = ModelFileWriter(metadata: Tiny.metadata)
        XCTAssertThrows(refusal("mask_token", "a Swin-UNet of this configuration has no tensor of this name"),
                        try w.add("mask_token", shape: [1, 64, 8], values: .init(repeating: 0, count: 512), dtype: .f32))
        XCTAssertThrows(refusal("norm.weight", "shape [8] differs from the expected [16]"),
                        try w.add("norm.weight", shape: [8], values: .init(repeating: 1, count: 8), dtype: .f32))
        XCTAssertThrows(refusal("norm.weight", "15 values for shape [16]"),
                        try w.add("norm.weight", shape: [16], values: .init(repeating: 1, count: 15), dtype: .f32))
        XCTAssertThrows(refusal("norm.weight", "value 3 is nan: the checkpoint holds NaN/inf weights (training diverged or the file is damaged)"),
                        try w.add("norm.weight", shape: [16], values: [1, 1, 1, .nan] + .init(repeating: 1, count: 12), dtype: .f32))
        XCTAssertThrows(refusal("norm.weight", "value 0 (70000.0) overflows f16 (largest 65504): store this model as f32"),
                        try w.add("norm.weight", shape: [16], values: [70000] + .init(repeating: 1, count: 15), dtype: .f16))
        XCTAssertNoThrow(try w.add("norm.weight", shape: [16], values: [65504] + .init(repeating: 1, count: 15), dtype: .f16))
        XCTAssertThrows(refusal("norm.weight", "added twice"),
                        try w.add("norm.weight", shape: [16], values: .init(repeating: 1, count: 16), dtype: .f32))
    }

    func testWriteRefusesAnIncompleteSetAndWritesNothing() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let path = dir.appendingPathComponent("m.segm").path
        var w = ModelFileWriter(metadata: Tiny.metadata)
        for (spec, v) in Tiny.weights().dropLast() { try w.add(spec.name, shape: spec.shape, values: v, dtype: .bf16) }
        let error = ModelWriterError(path: path, tensor: "output.weight",
                                     reason: "not added (expected shape [3, 8, 1, 1]); all \(Tiny.config.expectedTensors().count) tensors of the configuration are required")
        XCTAssertThrows(error, try w.write(to: path))
        XCTAssertEqual(error.exitCode, .invalidInput)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testInvalidMetadataIsRefused() {
        var m = Tiny.metadata
        m.config.windowSize = 3
        var w = ModelFileWriter(metadata: m)
        XCTAssertThrows(refusal("", "the Swin-UNet configuration cannot run: stage 0: resolution 8 is not a multiple of window 3; stage 1: resolution 4 is not a multiple of window 3"),
                        try w.add("norm.weight", shape: [16], values: .init(repeating: 1, count: 16), dtype: .f32))
        m = Tiny.metadata
        m.classNames = ["background"]
        w = ModelFileWriter(metadata: m)
        XCTAssertThrows(refusal("general.class_names", "has 1 names but num_classes is 3"),
                        try w.add("norm.weight", shape: [16], values: .init(repeating: 1, count: 16), dtype: .f32))
    }

    func testUnwritableDestination() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        do {
            try Tiny.write(to: dir.appendingPathComponent("no/such/folder/m.segm").path)
            XCTFail("written")
        } catch let e as SegmentError {
            XCTAssertEqual(e.exitCode, .outputNotWritable)
        }
    }
}
