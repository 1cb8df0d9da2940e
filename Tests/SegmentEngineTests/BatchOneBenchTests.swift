// Opt-in measurements of the engine at batch 1 in one process (`make batch1-bench`; skipped unless SEG_BENCH_MODEL
// names a model file): configurations alternate forward by forward, so this VM's slow spells hit them alike, which
// separate processes minutes apart cannot promise. Timing is printed, never asserted; what is asserted is that the
// alternatives compute the same bits.
import NaiveEngine
import Foundation
import XCTest
import SegmentFormat
@testable import SegmentEngine

private extension SwinUNetEngine {
    /// An engine whose Swin blocks split their windows over the threads from `blockSplitRows` rows per thread.
    convenience init(model: ModelFile, threads: Int, maxBatch: Int, blockSplitRows: Int) throws {
        try self.init(config: model.metadata.config, threads: threads, maxBatch: maxBatch, source: model.path,
                      blockSplitRows: blockSplitRows) { spec, out in try model.floats(spec.name, into: out) }
    }
}

final class BatchOneBenchTests: XCTestCase {
    private func model() throws -> ModelFile? {
        guard let path = ProcessInfo.processInfo.environment["SEG_BENCH_MODEL"] else { return nil }
        return try ModelFile.open(path)
    }

    private func summary(_ t: [Double]) -> String {
        let s = t.sorted()
        return String(format: "min %.2f p25 %.2f median %.2f ms", s[0], s[s.count / 4], s[s.count / 2])
    }

    /// Swin blocks split by windows from 64 rows per thread (the engine) against 128 (at batch 1 on 2 threads the
    /// 14x14 stage then splits every GEMM's columns). 58 timed forwards each, alternating.
    func testWindowSplitAgainstColumnSplit() throws {
        guard let file = try model() else { throw XCTSkip("set SEG_BENCH_MODEL to a model file") }
        let limits = [64, 128]
        let engines = try limits.map { try SwinUNetEngine(model: file, threads: 2, maxBatch: 1, blockSplitRows: $0) }
        let cfg = engines[0].config, plane = cfg.imgSize * cfg.imgSize
        let input = (0..<(cfg.inChans * plane)).map { Float(($0 * 7919) % 1000) / 1000 }
        var outputs = limits.map { _ in [Float](repeating: 0, count: cfg.numClasses * plane) }
        var times: [[Double]] = limits.map { _ in [] }
        for round in 0..<60 {
            for o in 0..<2 {
                let v = round % 2 == 0 ? o : 1 - o
                let t0 = DispatchTime.now().uptimeNanoseconds
                input.withUnsafeBufferPointer { inp in outputs[v].withUnsafeMutableBufferPointer {
                    engines[v].logits(inp, batch: 1, channels: cfg.inChans, into: $0)
                } }
                if round >= 2 { times[v].append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6) }
                usleep(20_000)
            }
        }
        XCTAssertEqual(outputs[0], outputs[1], "the window split and the column split must give the same bits")
        for (v, limit) in limits.enumerated() { print("window split from \(limit) rows per thread: \(summary(times[v]))") }
    }

    /// Per-stage wall time at 1 and 2 threads, alternating, and the speed-up by minimum: the modules run one by one
    /// (StageForward, stage names as segment_torch's), each into a buffer of its own; the head also writes its
    /// features there, so "up" is slower than in the engine's forward.
    func testStageScaling() throws {
        guard let file = try model() else { throw XCTSkip("set SEG_BENCH_MODEL to a model file") }
        let engines = try [1, 2].map { try SwinUNetEngine(model: file, threads: $0, maxBatch: 1) }
        let forwards = engines.map { StageForward($0) }
        let cfg = engines[0].config, plane = cfg.imgSize * cfg.imgSize
        let input = (0..<(cfg.inChans * plane)).map { Float(($0 * 7919) % 1000) / 1000 }
        var stages: [String] = [], times: [[String: [Double]]] = [[:], [:]]
        for round in 0..<40 {
            for (e, forward) in forwards.enumerated() {
                var last = DispatchTime.now().uptimeNanoseconds
                input.withUnsafeBufferPointer { inp in
                    forward(inp.baseAddress!, batch: 1, channels: cfg.inChans) { name, _ in
                        let now = DispatchTime.now().uptimeNanoseconds
                        if round >= 2 { times[e][name, default: []].append(Double(now - last) / 1e6) }
                        if round == 2 && e == 0 { stages.append(name) }
                        last = DispatchTime.now().uptimeNanoseconds
                    }
                }
                usleep(100_000)
            }
        }
        var total = [0.0, 0.0]
        for name in stages {
            let one = times[0][name]!.min()!, two = times[1][name]!.min()!
            total[0] += one; total[1] += two
            print(String(format: "%-12@ 1 thread %@ | 2 threads %@ | speed-up by minimum %.2f", name as NSString,
                         summary(times[0][name]!) as NSString, summary(times[1][name]!) as NSString, one / two))
        }
        print(String(format: "sum of minima: 1 thread %.1f ms, 2 threads %.1f ms, speed-up %.2f", total[0], total[1], total[0] / total[1]))
    }
}
