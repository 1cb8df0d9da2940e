// The normalized surface Dice: the generated surfel table code by code against the surface-distance package's own
// table builder (PyPI surface-distance 0.1), the fast path against the brute-force twin (NaiveSurfaceDice.swift),
// and the edge cases through scoreCase. The end-to-end comparison with the package on real masks is
// trainer/tests/test_nsd.py.
import Foundation
import SegmentCore
import TestSupport
import XCTest
@testable import SegmentMetrics

/// Per-code areas: ours and the package's are sums of the same few triangle areas, so they agree to rounding.
let surfelTolerance = 1e-12
/// Fast vs brute force: the same distances (same formula) and the same areas, summed in another order.
let nsdNaiveTolerance = 1e-12

final class SurfaceDiceTests: XCTestCase {
    /// The package's table for a spacing, from its own builder (3D: 256 areas; 2D: 16 lengths).
    func packageTable(_ spacing: [Double]) throws -> [Double] {
        let builder = spacing.count == 3 ? "create_table_neighbour_code_to_surface_area"
                                         : "create_table_neighbour_code_to_contour_length"
        let out = try TestSupport.python("""
            import json, sys
            from surface_distance import lookup_tables
            print(json.dumps(lookup_tables.\(builder)(json.loads(sys.argv[1])).tolist()))
            """, ["\(spacing)"])
        return try JSONDecoder().decode([Double].self, from: Data(out.utf8))
    }

    func testSurfelAreasMatchThePackageCodeByCode() throws {
        for spacing in [[1.0, 1, 1], [0.7, 1.3, 2.9], [0.78, 0.78, 5.0], [2.5, 0.5, 1.0]] {
            let theirs = try packageTable(spacing)
            let ours = SurfelAreas.areas3D(spacing: (spacing[0], spacing[1], spacing[2]))
            XCTAssertEqual(theirs.count, 256)
            let matching = (0..<256).filter { abs(ours[$0] - theirs[$0]) <= surfelTolerance * max(1, theirs[$0]) }
            let differing = (0..<256).filter { !matching.contains($0) }
            XCTAssertEqual(matching.count, 256, "spacing \(spacing): codes differing (base case): "
                + differing.map { "\($0) (\(SurfelAreas.baseCaseOfCode[$0])) ours \(ours[$0]) theirs \(theirs[$0])" }
                    .joined(separator: "; "))
            print("surfel areas, spacing \(spacing): \(matching.count) of 256 codes match surface-distance")
        }
        for spacing in [[1.0, 1], [0.7, 2.9]] {
            let theirs = try packageTable(spacing)
            let ours = SurfelAreas.lengths2D(spacing: (spacing[0], spacing[1]))
            XCTAssertEqual(theirs.count, 16)
            for code in 0..<16 { XCTAssertEqual(ours[code], theirs[code], accuracy: surfelTolerance, "2D code \(code)") }
        }
    }

    func testTableFacts() {
        let unit = SurfelAreas.areas3D(spacing: (1, 1, 1))
        XCTAssertEqual(unit[0], 0); XCTAssertEqual(unit[255], 0)
        // one corner: one triangle with area vector (1/8, 1/8, 1/8)
        XCTAssertEqual(unit[1], 3.0.squareRoot() / 8, accuracy: 1e-15)
        XCTAssertEqual(SurfelAreas.triangles[1].count, 1)
        // a face (case 8) is a unit square across the cube, whatever the spacing's other axes
        let s = (0.7, 1.3, 2.9)
        let anisotropic = SurfelAreas.areas3D(spacing: s)
        XCTAssertEqual(anisotropic[SurfelAreas.code([0, 1, 2, 3])], s.1 * s.2, accuracy: 1e-12)   // corners a = 0
        // complement: the same triangles
        for code in 0..<256 { XCTAssertEqual(anisotropic[code], anisotropic[255 - code], accuracy: 1e-12) }
        // every code comes from a base case; 14 is 11's mirror image, so the reflections reach its codes from 11
        XCTAssertEqual(Set(SurfelAreas.baseCaseOfCode), Set(0..<14))
        XCTAssertEqual(SurfelAreas.baseCaseOfCode[SurfelAreas.code(SurfelAreas.baseCases[14])], 11)
        // the 48 symmetries are distinct permutations of the 8 corners
        XCTAssertEqual(Set(SurfelAreas.symmetries).count, 48)
        for map in SurfelAreas.symmetries { XCTAssertEqual(Set(map), Set(0..<8)) }
        // 2D: one corner is half a diagonal; two corners along axis 1 are a straight segment of spacing 1
        let lengths = SurfelAreas.lengths2D(spacing: (0.7, 2.9))
        XCTAssertEqual(lengths[1], 0.5 * (0.49 + 8.41).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(lengths[0b0011], 2.9, accuracy: 1e-12)
        XCTAssertEqual(lengths[0b0101], 0.7, accuracy: 1e-12)
    }

    func testFastPathAgainstNaive() {
        var rng = SplitMix64(seed: 17)
        for trial in 0..<40 {
            let rank = trial % 2 == 0 ? 2 : 3
            let shape = rank == 2 ? [Int.random(in: 2...24, using: &rng), Int.random(in: 2...24, using: &rng)]
                                  : [Int.random(in: 2...12, using: &rng), Int.random(in: 2...12, using: &rng), Int.random(in: 2...8, using: &rng)]
            let grid = Grid3(shape: shape)
            let spacing = (Double.random(in: 0.3...2, using: &rng), Double.random(in: 0.3...2, using: &rng),
                           rank == 3 ? Double.random(in: 0.3...4, using: &rng) : 1)
            let pa = Double.random(in: 0.05...0.9, using: &rng), pb = Double.random(in: 0.05...0.9, using: &rng)
            var a = (0..<grid.count).map { _ in Double.random(in: 0..<1, using: &rng) < pa ? UInt8(1) : 0 }
            var b = (0..<grid.count).map { _ in Double.random(in: 0..<1, using: &rng) < pb ? UInt8(1) : 0 }
            a[0] = 1; b[grid.count - 1] = 1
            // 0 (only coinciding borders), tolerances on exact distances (a spacing), and one past the grid
            let tolerances = [0, spacing.0, 1, 2.5, 100]
            let naive = naiveSurfaceDice(a: a, b: b, grid: grid, rank: rank, spacing: spacing, tolerances: tolerances)
            let windowed = surfaceDice(a: a, b: b, grid: grid, rank: rank, spacing: spacing, tolerances: Array(tolerances.prefix(4)))
            let transform = surfaceDice(a: a, b: b, grid: grid, rank: rank, spacing: spacing, tolerances: tolerances,
                                        maxOffsets: 0)
            for k in 0..<tolerances.count {
                if k < 4 { XCTAssertEqual(windowed[k], naive[k], accuracy: nsdNaiveTolerance, "trial \(trial) t \(tolerances[k])") }
                XCTAssertEqual(transform[k], naive[k], accuracy: nsdNaiveTolerance, "trial \(trial) t \(tolerances[k]) (EDT)")
            }
            XCTAssertEqual(naive[4], 1, accuracy: 1e-12)    // every border is within the grid's diagonal of the other
        }
    }

    func nsd(_ pred: [UInt16], _ ref: [UInt16], shape: [Int], spacing: [Double], tolerances: [Double] = [1, 2],
             ignoreLabel: Int? = nil) throws -> [String: Double]? {
        try scoreCase(name: "c", prediction: LabelMap(shape: shape, labels: pred), reference: LabelMap(shape: shape, labels: ref),
                      spacing: spacing, unit: .mm, labels: [1], ignoreLabel: ignoreLabel, nsdTolerances: tolerances)
            .metrics["1"]?.surfaceDice
    }

    func testEdgeCases() throws {
        let shape = [5, 4, 3], n = 60
        let empty = [UInt16](repeating: 0, count: n)
        var one = empty; one[1 + 5 * (2 + 4 * 1)] = 1
        // both empty: NaN (0 / 0), one empty: 0
        let both = try XCTUnwrap(nsd(empty, empty, shape: shape, spacing: [1, 1, 1]))
        XCTAssertTrue(both["nsd_1mm"]!.isNaN && both["nsd_2mm"]!.isNaN)
        XCTAssertEqual(try nsd(one, empty, shape: shape, spacing: [1, 1, 1]), ["nsd_1mm": 0, "nsd_2mm": 0])
        XCTAssertEqual(try nsd(empty, one, shape: shape, spacing: [1, 1, 1]), ["nsd_1mm": 0, "nsd_2mm": 0])
        // one voxel against itself: 1 at any tolerance, 0 included
        XCTAssertEqual(try nsd(one, one, shape: shape, spacing: [0.7, 0.9, 2.5], tolerances: [0]), ["nsd_0mm": 1])
        // a full image (touching every border) against itself, and against the image less one face
        let full = [UInt16](repeating: 1, count: n)
        XCTAssertEqual(try nsd(full, full, shape: shape, spacing: [0.7, 0.9, 2.5]), ["nsd_1mm": 1, "nsd_2mm": 1])
        var cut = full
        for i in 0..<n where i % 5 == 4 { cut[i] = 0 }              // the face i0 = 4 removed
        let values = try XCTUnwrap(nsd(cut, full, shape: shape, spacing: [0.7, 0.9, 2.5], tolerances: [0.5, 1]))
        let a = cut.map { UInt8($0) }, b = full.map { UInt8($0) }
        let naive = naiveSurfaceDice(a: a, b: b, grid: Grid3(shape: shape), rank: 3, spacing: (0.7, 0.9, 2.5), tolerances: [0.5, 1])
        XCTAssertEqual(values["nsd_0.5mm"]!, naive[0], accuracy: nsdNaiveTolerance)
        XCTAssertEqual(values["nsd_1mm"]!, naive[1], accuracy: nsdNaiveTolerance)
        XCTAssertLessThan(naive[0], 1); XCTAssertEqual(naive[1], 1, accuracy: 1e-12)   // 0.7 mm apart
    }

    func testIgnoredVoxelsAreBackgroundForNSD() throws {
        // label 9 is ignored: where the reference has it, both masks are cut, as for HD
        let shape = [6, 5, 4], n = 120
        var rng = SplitMix64(seed: 3)
        let ref = (0..<n).map { _ in UInt16([0, 1, 1, 9].randomElement(using: &rng)!) }
        let pred = (0..<n).map { _ in UInt16([0, 1, 1].randomElement(using: &rng)!) }
        let got = try XCTUnwrap(nsd(pred, ref, shape: shape, spacing: [0.8, 1.1, 2], tolerances: [1], ignoreLabel: 9))
        let a = zip(pred, ref).map { $1 == 9 ? UInt8(0) : UInt8($0 == 1 ? 1 : 0) }
        let b = ref.map { UInt8($0 == 1 ? 1 : 0) }
        let naive = naiveSurfaceDice(a: a, b: b, grid: Grid3(shape: shape), rank: 3, spacing: (0.8, 1.1, 2), tolerances: [1])
        XCTAssertEqual(got["nsd_1mm"]!, naive[0], accuracy: nsdNaiveTolerance)
    }

    func testReportKeysAndMerge() throws {
        let shape = [4, 4], labels: [UInt16] = [0, 1, 1, 0, 0, 1, 1, 0, 0, 2, 2, 0, 0, 0, 0, 0]
        let c = try scoreCase(name: "c", prediction: LabelMap(shape: shape, labels: labels),
                              reference: LabelMap(shape: shape, labels: labels), spacing: [1, 1], unit: .mm,
                              nsdTolerances: [1, 1.5])
        let report = ScoreReport(cases: [c], labels: [1, 2, 3], nsdTolerances: [1, 1.5], policy: .init(), tool: "t")
        XCTAssertEqual(report.mean["1"]?["nsd_1.5mm"], 1)
        XCTAssertTrue(report.mean["3"]!["nsd_1mm"]!.isNaN)                      // absent from both: NaN, counted
        XCTAssertEqual(report.counts["3"]?.excluded["nsd_1mm"], 1)
        let json = String(decoding: try report.json(), as: UTF8.self)
        XCTAssertTrue(json.contains("\"nsd_1.5mm\" : 1"), json)
        XCTAssertTrue(json.contains("\"nsd_tolerances\""))
        XCTAssertTrue(report.csv().hasPrefix("case,label,class_name,status,Dice,IoU,TP,FP,FN,TN,n_pred,n_ref,HD,HD95,ASSD,"
            + "thresholded_Jaccard,nsd_1mm,nsd_1.5mm,"))
        // a written report reads back with its NSD values, and merges only with reports of the same tolerances
        let dir = try TestSupport.temporaryDirectory(self)
        let path = dir.appendingPathComponent("r.json").path
        try report.json().write(to: URL(fileURLWithPath: path))
        let back = try ScoreReport.read(path)
        XCTAssertEqual(back.metricPerCase[0].metrics["1"]?.surfaceDice, ["nsd_1mm": 1, "nsd_1.5mm": 1])
        let other = ScoreReport(cases: [], labels: [1, 2, 3], policy: .init(), tool: "t")
        XCTAssertThrowsError(try ScoreReport.merge([back, other], sources: ["a", "b"], tool: "t")) {
            XCTAssertTrue("\($0)".contains("--nsd"), "\($0)")
        }
    }
}
