// The metric core against its references: medpy 0.5.2 (dc, hd, hd95, assd), scipy's EDT, Swin-Unet's
// calculate_metric_percase rules, and the brute-force surface distances. Fixtures: trainer/fixtures/gen_metrics.py.
import Foundation
import SegmentCore
import TestSupport
import XCTest
@testable import SegmentMetrics

/// Tolerances of evaluation.md: Dice relative to medpy, distances absolute in mm.
let diceRelativeTolerance = 1e-6
let distanceTolerance = 1e-4
/// Fast EDT vs exact references (scipy, brute force): both are exact, only rounding differs.
let edtTolerance = 1e-9

struct MetricsManifest: Decodable {
    struct Medpy: Decodable { let dc, hd, hd95, assd: Double }
    struct SwinUNet: Decodable { let dice, hd95: Double }
    struct Pair: Decodable {
        let name: String, shape: [Int], spacing: [Double], labels: [Int], prediction: String, reference: String
        let medpy: [String: Medpy?]
        let swin_unet: [String: SwinUNet]
    }
    struct EDT: Decodable { let name: String, shape: [Int], spacing: [Double], features: String, distances: String }
    let pairs: [Pair]
    let edt: [EDT]

    static func load() throws -> MetricsManifest {
        try JSONDecoder().decode(MetricsManifest.self, from: Data(contentsOf: TestSupport.fixture("metrics/manifest.json")))
    }
}

/// A raw little-endian array written by the generator.
func rawArray<T>(_ relative: String, as: T.Type) throws -> [T] {
    let data = try Data(contentsOf: TestSupport.fixture("metrics/" + relative))
    return data.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
}

func assertDice(_ got: Double, _ want: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertLessThanOrEqual(abs(got - want), diceRelativeTolerance * max(abs(want), 1e-12),
                             "\(what): Dice \(got) vs \(want)", file: file, line: line)
}

func assertDistance(_ got: Double, _ want: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertLessThanOrEqual(abs(got - want), distanceTolerance, "\(what): \(got) vs \(want)", file: file, line: line)
}

final class MetricsCoreTests: XCTestCase {
    func loadPair(_ pair: MetricsManifest.Pair) throws -> (LabelMap, LabelMap) {
        (LabelMap(shape: pair.shape, labels: try rawArray(pair.prediction, as: UInt16.self)),
         LabelMap(shape: pair.shape, labels: try rawArray(pair.reference, as: UInt16.self)))
    }

    func testAgainstMedpy() throws {
        let manifest = try MetricsManifest.load()
        XCTAssertGreaterThanOrEqual(manifest.pairs.count, 10)
        var compared = 0
        for pair in manifest.pairs {
            let (pred, ref) = try loadPair(pair)
            let score = try scoreCase(name: pair.name, prediction: pred, reference: ref, spacing: pair.spacing,
                                      unit: .mm, labels: pair.labels)
            XCTAssertEqual(score.metrics.keys.sorted(), pair.labels.map(String.init).sorted(), pair.name)
            for (label, answer) in pair.medpy {
                guard let want = answer else { continue }   // an empty mask: see testEmptyMasks
                let got = try XCTUnwrap(score.metrics[label])
                let what = "\(pair.name) label \(label)"
                assertDice(got.dice, want.dc, what)
                assertDistance(got.hd, want.hd, what + " HD")
                assertDistance(got.hd95, want.hd95, what + " HD95")
                assertDistance(got.assd, want.assd, what + " ASSD")
                XCTAssertEqual(got.tp + got.fn, got.nRef, what)
                XCTAssertEqual(got.tp + got.fp, got.nPred, what)
                XCTAssertEqual(got.tp + got.fp + got.fn + got.tn, pred.voxelCount, what)
                XCTAssertEqual(got.iou, Double(got.tp) / Double(got.tp + got.fp + got.fn), accuracy: 1e-15, what)
                compared += 1
            }
        }
        XCTAssertGreaterThanOrEqual(compared, 17)
    }

    func testSwinUNetCompatibility() throws {
        let manifest = try MetricsManifest.load()
        for pair in manifest.pairs {
            let (pred, ref) = try loadPair(pair)
            let score = try scoreCase(name: pair.name, prediction: pred, reference: ref, spacing: pair.spacing,
                                      unit: .mm, labels: pair.labels, policy: .init(mode: .swinUNet))
            XCTAssertEqual(score.unit, .voxel)
            XCTAssertEqual(score.spacing, [Double](repeating: 1, count: pair.shape.count))
            for (label, want) in pair.swin_unet {
                let got = try XCTUnwrap(score.metrics[label])
                assertDice(got.dice, want.dice, "\(pair.name) label \(label) compat")
                assertDistance(got.hd95, want.hd95, "\(pair.name) label \(label) compat HD95 (voxels)")
            }
        }
    }

    /// Every empty-mask combination under both policies and both worst-distance rules (evaluation.md's table).
    func testEmptyMasks() throws {
        let manifest = try MetricsManifest.load()
        let pair = try XCTUnwrap(manifest.pairs.first { $0.name == "empties3d" })
        let (pred, ref) = try loadPair(pair)
        // label 1: reference empty; 2: prediction empty; 3: both empty
        let diagonal = (pow(16 * 1.0, 2) + pow(16 * 1.0, 2) + pow(6 * 2.0, 2)).squareRoot()
        let standard = try scoreCase(name: "e", prediction: pred, reference: ref, spacing: pair.spacing, unit: .mm,
                                     labels: pair.labels)
        let s1 = standard.metrics["1"]!, s2 = standard.metrics["2"]!, s3 = standard.metrics["3"]!
        XCTAssertEqual([s1.emptyRef, s1.emptyPred, s2.emptyRef, s2.emptyPred, s3.emptyRef, s3.emptyPred],
                       [true, false, false, true, true, true])
        XCTAssertEqual(s1.dice, 0); XCTAssertEqual(s2.dice, 0); XCTAssertTrue(s3.dice.isNaN)
        XCTAssertEqual(s1.iou, 0); XCTAssertEqual(s2.iou, 0); XCTAssertTrue(s3.iou.isNaN)
        for s in [s1, s2] { XCTAssertEqual([s.hd, s.hd95, s.assd], [.infinity, .infinity, .infinity]) }
        XCTAssertTrue(s3.hd.isNaN && s3.hd95.isNaN && s3.assd.isNaN)
        XCTAssertEqual(s1.fp, 18); XCTAssertEqual(s1.nPred, 18); XCTAssertEqual(s2.fn, 48); XCTAssertEqual(s3.tn, 16 * 16 * 6)

        let worst = try scoreCase(name: "e", prediction: pred, reference: ref, spacing: pair.spacing, unit: .mm,
                                  labels: pair.labels, policy: .init(worstDistance: .diagonal))
        for label in ["1", "2"] {
            let s = worst.metrics[label]!
            XCTAssertEqual(s.dice, 0)
            for d in [s.hd, s.hd95, s.assd] { XCTAssertEqual(d, diagonal, accuracy: 1e-12) }
        }
        XCTAssertTrue(worst.metrics["3"]!.hd95.isNaN, "both empty stays NaN with --worst-distance diagonal")

        let compat = try scoreCase(name: "e", prediction: pred, reference: ref, spacing: pair.spacing, unit: .mm,
                                   labels: pair.labels, policy: .init(mode: .swinUNet))
        XCTAssertEqual([compat.metrics["1"]!.dice, compat.metrics["1"]!.hd95], [1, 0])   // reference empty
        XCTAssertEqual([compat.metrics["2"]!.dice, compat.metrics["2"]!.hd95], [0, 0])   // prediction empty
        XCTAssertEqual([compat.metrics["3"]!.dice, compat.metrics["3"]!.hd95], [0, 0])   // both empty
        XCTAssertEqual(compat.metrics["1"]!.hd, .infinity, "HD and ASSD keep the default rules in compat mode")
    }

    func testLabelsDefaultToThosePresent() throws {
        let pred = LabelMap(shape: [4, 3], labels: [0, 0, 5, 5, 0, 0, 0, 0, 0, 0, 0, 2])
        let ref = LabelMap(shape: [4, 3], labels: [0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        let score = try scoreCase(name: "x", prediction: pred, reference: ref, spacing: [1, 1], unit: .pixel)
        XCTAssertEqual(score.metrics.keys.sorted(), ["2", "5"])
        XCTAssertEqual(score.metrics["5"]!.dice, 2.0 / 3.0, accuracy: 1e-15)
        // a requested label beyond every label present is both-empty, not a crash
        let more = try scoreCase(name: "x", prediction: pred, reference: ref, spacing: [1, 1], unit: .pixel, labels: [9])
        XCTAssertTrue(more.metrics["9"]!.dice.isNaN)
    }

    func testShapeMismatchIsATypedError() {
        let a = LabelMap.empty(shape: [4, 3]), b = LabelMap.empty(shape: [3, 4])
        XCTAssertThrowsError(try scoreCase(name: "x", prediction: a, reference: b, spacing: [1, 1], unit: .pixel,
                                           predictionFile: "p.png", referenceFile: "r.png")) { error in
            let e = error as? GridMismatchError
            XCTAssertEqual(e?.exitCode, .invalidInput)
            XCTAssertTrue(e?.description.contains("p.png") == true && e?.description.contains("r.png") == true)
        }
    }

    func testEDTAgainstScipy() throws {
        for c in try MetricsManifest.load().edt {
            let features = try rawArray(c.features, as: UInt8.self)
            let want = try rawArray(c.distances, as: Double.self)
            let d2 = squaredDistanceTransform(features: features, grid: Grid3(shape: c.shape), spacing: spacing3(c.spacing))
            XCTAssertEqual(d2.count, want.count)
            let worst = zip(d2, want).map { abs($0.squareRoot() - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, edtTolerance, c.name)
        }
    }

    /// The fast EDT and the brute-force minimum over all pairs, on random grids of every rank and odd spacings.
    func testFastEDTAgainstNaive() {
        var rng = SplitMix64(seed: 7)
        for trial in 0..<40 {
            let shape = [Int.random(in: 1...13, using: &rng), Int.random(in: 1...11, using: &rng), Int.random(in: 1...9, using: &rng)]
            let grid = Grid3(shape: shape)
            let spacing = (Double.random(in: 0.2...3, using: &rng), Double.random(in: 0.2...3, using: &rng),
                           Double.random(in: 0.2...3, using: &rng))
            let density = [0.0, 0.02, 0.1, 0.5][trial % 4]
            var features = (0..<grid.count).map { _ in Double.random(in: 0..<1, using: &rng) < density ? UInt8(1) : 0 }
            if trial % 8 == 0 { features = [UInt8](repeating: 0, count: grid.count) }   // no feature at all
            let fast = squaredDistanceTransform(features: features, grid: grid, spacing: spacing)
            let naive = naiveSquaredDistances(features: features, queries: Array(0..<grid.count), grid: grid, spacing: spacing)
            for (f, n) in zip(fast, naive) {
                if n.isInfinite { XCTAssertEqual(f, .infinity, "trial \(trial)") }
                else { XCTAssertEqual(f.squareRoot(), n.squareRoot(), accuracy: edtTolerance, "trial \(trial) shape \(shape)") }
            }
        }
    }

    /// Whole pipeline (surfaces + EDT gather) against all-pairs surface distances, 2D and 3D, random masks.
    func testSurfaceDistancesAgainstNaive() {
        var rng = SplitMix64(seed: 11)
        for trial in 0..<30 {
            let rank = trial % 2 == 0 ? 2 : 3
            let shape = rank == 2 ? [Int.random(in: 3...30, using: &rng), Int.random(in: 3...30, using: &rng)]
                                  : [Int.random(in: 2...14, using: &rng), Int.random(in: 2...14, using: &rng), Int.random(in: 2...9, using: &rng)]
            let grid = Grid3(shape: shape)
            let spacing = (Double.random(in: 0.3...2, using: &rng), Double.random(in: 0.3...2, using: &rng),
                           Double.random(in: 0.3...4, using: &rng))
            let pa = Double.random(in: 0.05...0.9, using: &rng), pb = Double.random(in: 0.05...0.9, using: &rng)
            var a = (0..<grid.count).map { _ in Double.random(in: 0..<1, using: &rng) < pa ? UInt8(1) : 0 }
            var b = (0..<grid.count).map { _ in Double.random(in: 0..<1, using: &rng) < pb ? UInt8(1) : 0 }
            a[0] = 1; b[grid.count - 1] = 1
            let fast = pooledSurfaceDistances(a: a, b: b, grid: grid, rank: rank, spacing: spacing)
            let naive = naivePooledSurfaceDistances(a: a, b: b, grid: grid, rank: rank, spacing: spacing)
            XCTAssertEqual(fast.count, naive.count)
            for (f, n) in zip(fast, naive) { XCTAssertEqual(f, n, accuracy: edtTolerance, "trial \(trial)") }
        }
    }

    func testSurfaceIsMaskMinusErosion() {
        // 5x4 2D block of ones inside a 7x6 image: the surface is the ring, the interior 3x2 is not
        var mask = [UInt8](repeating: 0, count: 7 * 6)
        for y in 1...4 { for x in 1...5 { mask[x + 7 * y] = 1 } }
        let s2 = surface(of: mask, grid: Grid3(7, 6, 1), rank: 2)
        XCTAssertEqual(s2.reduce(0) { $0 + Int($1) }, 20 - 6)
        // the same array as a one-slice 3D volume: every voxel has an outside neighbour along axis 2
        let s3 = surface(of: mask, grid: Grid3(7, 6, 1), rank: 3)
        XCTAssertEqual(s3, mask)
        // touching the image border counts as surface (outside = background)
        let full = [UInt8](repeating: 1, count: 9)
        XCTAssertEqual(surface(of: full, grid: Grid3(3, 3, 1), rank: 2).reduce(0) { $0 + Int($1) }, 8)
    }

    func testPercentileMatchesNumpyLinear() {
        var rng = SplitMix64(seed: 3)
        for n in [1, 2, 3, 7, 20, 101, 1000] {
            let values = (0..<n).map { _ in Double(Int.random(in: 0...30, using: &rng)) / 7 }   // with ties
            let sorted = values.sorted()
            let virtual = 0.95 * Double(n - 1)
            let lo = Int(virtual), t = virtual - Double(lo)
            let want = lo + 1 < n ? sorted[lo] + (sorted[lo + 1] - sorted[lo]) * t : sorted[lo]
            var work = values
            XCTAssertEqual(percentile(&work, 95), want, accuracy: 1e-12, "n \(n)")
            for k in [0, n / 2, n - 1] {
                var w = values
                XCTAssertEqual(select(&w, k), sorted[k], "select \(k) of \(n)")
            }
        }
    }
}
