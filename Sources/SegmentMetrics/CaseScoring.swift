// Scoring one case in memory: per foreground label, overlap counts, Dice and IoU, and the surface distances,
// under the empty-mask policy of docs/SCORING.md. `segment score` and `segment run --ref` both call `scoreCase`.
import Foundation
import SegmentCore

/// How empty masks, infinite distances and units are handled. Every report records it.
public struct ScoringPolicy: Codable, Equatable, Sendable {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// evaluation.md's default: both empty -> NaN (excluded, counted); one empty -> Dice 0, distances +inf.
        case standard = "default"
        /// HuCaoFighting/Swin-Unet `calculate_metric_percase`: HD95 in voxel units (no spacing); reference empty and
        /// prediction not -> Dice 1, HD95 0; prediction empty -> Dice 0, HD95 0.
        case swinUNet = "swin-unet"
    }
    public enum WorstDistance: String, Codable, Sendable, CaseIterable {
        /// infinite distances stay +inf and are left out of the means (and counted)
        case infinite
        /// infinite distances are replaced by the image diagonal (sqrt(sum((n_a * spacing_a)^2)))
        case diagonal
    }
    public var mode: Mode
    public var worstDistance: WorstDistance

    public init(mode: Mode = .standard, worstDistance: WorstDistance = .infinite) {
        self.mode = mode
        self.worstDistance = worstDistance
    }

    enum CodingKeys: String, CodingKey { case mode, worstDistance = "worst_distance" }
}

/// What the distances of a case are measured in.
public enum DistanceUnit: String, Codable, Sendable {
    case mm          // from the image header's voxel spacing (or --spacing)
    case pixel       // PNG: no physical spacing
    case voxel       // --compat swin-unet: spacing ignored, as the reference code does
}

/// The scores of one foreground label in one case. Keys follow nnU-Net's summary.json, extended.
public struct ClassScore: Codable, Equatable, Sendable {
    public var dice: Double
    public var iou: Double
    public var tp: Int, fp: Int, fn: Int, tn: Int
    public var nPred: Int, nRef: Int
    public var hd: Double
    public var hd95: Double
    public var assd: Double
    public var emptyRef: Bool
    public var emptyPred: Bool
    /// ISIC 2018's thresholded Jaccard (`ClassScore.thresholded`). Optional so that reports written before it
    /// existed still read (and merge); `value("thresholded_Jaccard")` derives it from IoU then.
    public var thresholdedJaccard: Double?
    /// Normalized surface Dice by key (`ClassScore.nsdKey`, "nsd_1mm"), written beside the other metrics of the
    /// class; nil without --nsd.
    public var surfaceDice: [String: Double]?

    enum CodingKeys: String, CodingKey {
        case dice = "Dice", iou = "IoU", tp = "TP", fp = "FP", fn = "FN", tn = "TN", nPred = "n_pred", nRef = "n_ref"
        case hd = "HD", hd95 = "HD95", assd = "ASSD", emptyRef = "empty_ref", emptyPred = "empty_pred"
        case thresholdedJaccard = "thresholded_Jaccard"
    }

    /// Any key: the surface Dice values are keys of their own ("nsd_1mm"), not a nested object.
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// The report key of the surface Dice at tolerance t: "nsd_1mm", "nsd_1.5mm" (the tolerance in the case's
    /// distance units, which are mm for NIfTI images).
    public static func nsdKey(_ t: Double) -> String {
        t == t.rounded() && abs(t) < 1e15 ? "nsd_\(Int(t))mm" : "nsd_\(t)mm"
    }

    public init(dice: Double, iou: Double, tp: Int, fp: Int, fn: Int, tn: Int, nPred: Int, nRef: Int, hd: Double,
                hd95: Double, assd: Double, emptyRef: Bool, emptyPred: Bool, thresholdedJaccard: Double?,
                surfaceDice: [String: Double]? = nil) {
        self.dice = dice; self.iou = iou; self.tp = tp; self.fp = fp; self.fn = fn; self.tn = tn
        self.nPred = nPred; self.nRef = nRef; self.hd = hd; self.hd95 = hd95; self.assd = assd
        self.emptyRef = emptyRef; self.emptyPred = emptyPred; self.thresholdedJaccard = thresholdedJaccard
        self.surfaceDice = surfaceDice
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(dice: try c.decode(Double.self, forKey: .dice), iou: try c.decode(Double.self, forKey: .iou),
                  tp: try c.decode(Int.self, forKey: .tp), fp: try c.decode(Int.self, forKey: .fp),
                  fn: try c.decode(Int.self, forKey: .fn), tn: try c.decode(Int.self, forKey: .tn),
                  nPred: try c.decode(Int.self, forKey: .nPred), nRef: try c.decode(Int.self, forKey: .nRef),
                  hd: try c.decode(Double.self, forKey: .hd), hd95: try c.decode(Double.self, forKey: .hd95),
                  assd: try c.decode(Double.self, forKey: .assd), emptyRef: try c.decode(Bool.self, forKey: .emptyRef),
                  emptyPred: try c.decode(Bool.self, forKey: .emptyPred),
                  thresholdedJaccard: try c.decodeIfPresent(Double.self, forKey: .thresholdedJaccard))
        let any = try decoder.container(keyedBy: AnyKey.self)
        var nsd: [String: Double] = [:]
        for key in any.allKeys where key.stringValue.hasPrefix("nsd_") {
            nsd[key.stringValue] = try any.decode(Double.self, forKey: key)
        }
        surfaceDice = nsd.isEmpty ? nil : nsd
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dice, forKey: .dice); try c.encode(iou, forKey: .iou)
        try c.encode(tp, forKey: .tp); try c.encode(fp, forKey: .fp); try c.encode(fn, forKey: .fn)
        try c.encode(tn, forKey: .tn); try c.encode(nPred, forKey: .nPred); try c.encode(nRef, forKey: .nRef)
        try c.encode(hd, forKey: .hd); try c.encode(hd95, forKey: .hd95); try c.encode(assd, forKey: .assd)
        try c.encode(emptyRef, forKey: .emptyRef); try c.encode(emptyPred, forKey: .emptyPred)
        try c.encodeIfPresent(thresholdedJaccard, forKey: .thresholdedJaccard)
        var any = encoder.container(keyedBy: AnyKey.self)
        for (key, value) in surfaceDice ?? [:] { try any.encode(value, forKey: AnyKey(stringValue: key)) }
    }

    /// ISIC 2018 (task 1)'s threshold: a per-image Jaccard below it counts as 0.
    public static let jaccardThreshold = 0.65

    /// The thresholded Jaccard of an IoU: 0 below the threshold, the IoU itself from it on; NaN stays NaN.
    public static func thresholded(_ iou: Double) -> Double {
        iou.isNaN ? .nan : iou < jaccardThreshold ? 0 : iou
    }

    /// The label absent from both images: nothing to compare.
    /// The surface Dice of both masks empty (0 / 0) is NaN in every mode, as the surface-distance package gives.
    static func bothEmpty(voxelCount: Int, policy: ScoringPolicy, nsdTolerances: [Double] = []) -> ClassScore {
        let compat = policy.mode == .swinUNet
        return ClassScore(dice: compat ? 0 : .nan, iou: .nan, tp: 0, fp: 0, fn: 0, tn: voxelCount, nPred: 0, nRef: 0,
                          hd: .nan, hd95: compat ? 0 : .nan, assd: .nan, emptyRef: true, emptyPred: true,
                          thresholdedJaccard: .nan,
                          surfaceDice: nsdTolerances.isEmpty ? nil
                              : Dictionary(uniqueKeysWithValues: nsdTolerances.map { (nsdKey($0), Double.nan) }))
    }
}

/// The scores of one case: per foreground label (keyed by the label's decimal string, as nnU-Net does).
public struct CaseScore: Codable, Equatable, Sendable {
    public var name: String
    public var referenceFile: String
    public var predictionFile: String
    /// The grid's extents (first axis fastest) and the spacing the distances used, in `unit`s.
    public var shape: [Int]
    public var spacing: [Double]
    public var unit: DistanceUnit
    /// True when the prediction was missing and scored as an empty image (`--missing-as-empty`).
    public var predictionMissing: Bool
    public var metrics: [String: ClassScore]
    /// Voxels left out by --ignore-label (nil without it): not in any class's TN.
    public var ignoredVoxels: Int?

    enum CodingKeys: String, CodingKey {
        case name = "case", referenceFile = "reference_file", predictionFile = "prediction_file", shape, spacing
        case unit = "units", predictionMissing = "prediction_missing", metrics, ignoredVoxels = "ignored_voxels"
    }

    /// Adds both-empty scores for the classes (metric keys) this case does not have (when the label set grew after
    /// the case was scored, e.g. labels found in other cases or shards).
    mutating func complete(keys: [String], policy: ScoringPolicy, nsdTolerances: [Double] = []) {
        for key in keys where metrics[key] == nil {
            metrics[key] = .bothEmpty(voxelCount: shape.reduce(1, *) - (ignoredVoxels ?? 0), policy: policy,
                                      nsdTolerances: nsdTolerances)
        }
    }
}

/// A union of labels scored as one class, as nnU-Net's regions (liver = liver + tumour, say): a voxel belongs to the
/// region when its label is any of `labels`. Its metric key is the labels joined by "+", e.g. "1+2".
public struct Region: Equatable, Hashable, Sendable {
    public let labels: [Int]
    public init(_ labels: [Int]) { self.labels = labels }
    public var key: String { labels.map(String.init).joined(separator: "+") }

    /// "1+2" -> [1, 2]: at least two distinct labels 1...65535, or nil.
    public init?(parsing text: String) {
        let parts = text.split(separator: "+", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count >= 2, parts.allSatisfy({ $0 != nil && (1...65535).contains($0!) }),
              Set(parts.map { $0! }).count == parts.count else { return nil }
        self.labels = parts.map { $0! }
    }
}

/// Per-label overlap counts and the bounding box of (prediction == label) or (reference == label),
/// gathered in one pass over the images.
struct LabelCensus {
    var nPred: [Int], nRef: [Int], tp: [Int]
    /// inclusive bounds per label: lo[label * 3 + axis], hi[label * 3 + axis]
    var lo: [Int], hi: [Int]

    init(prediction: LabelMap, reference: LabelMap) {
        let grid = Grid3(shape: reference.shape)
        let L = max(prediction.maxLabel, reference.maxLabel) + 1
        var nPred = [Int](repeating: 0, count: L), nRef = nPred, tp = nPred
        var lo = [Int](repeating: Int.max, count: 3 * L), hi = [Int](repeating: -1, count: 3 * L)
        prediction.labels.withUnsafeBufferPointer { p in
            reference.labels.withUnsafeBufferPointer { r in
                func extend(_ label: Int, _ i0: Int, _ i1: Int, _ i2: Int) {
                    let b = label * 3
                    if i0 < lo[b] { lo[b] = i0 }; if i0 > hi[b] { hi[b] = i0 }
                    if i1 < lo[b + 1] { lo[b + 1] = i1 }; if i1 > hi[b + 1] { hi[b + 1] = i1 }
                    if i2 < lo[b + 2] { lo[b + 2] = i2 }; if i2 > hi[b + 2] { hi[b + 2] = i2 }
                }
                var i = 0
                for i2 in 0..<grid.n2 {
                    for i1 in 0..<grid.n1 {
                        for i0 in 0..<grid.n0 {
                            let a = Int(p[i]), b = Int(r[i])
                            i += 1
                            if a | b == 0 { continue }
                            if a != 0 { nPred[a] += 1; extend(a, i0, i1, i2) }
                            if b != 0 { nRef[b] += 1; if b != a { extend(b, i0, i1, i2) } }
                            if a == b { tp[a] += 1 }
                        }
                    }
                }
            }
        }
        self.nPred = nPred; self.nRef = nRef; self.tp = tp; self.lo = lo; self.hi = hi
    }

    /// Labels > 0 present in the prediction or the reference.
    var presentLabels: [Int] { (1..<nPred.count).filter { nPred[$0] > 0 || nRef[$0] > 0 } }
}

/// The prediction and reference grids differ: the images cannot be compared voxel by voxel.
public struct GridMismatchError: SegmentError {
    public let predictionFile: String
    public let referenceFile: String
    public let problem: String
    public var exitCode: ExitStatus { .invalidInput }
    public var description: String {
        "prediction \(predictionFile) and reference \(referenceFile) are not on the same grid: \(problem). "
            + "Write the prediction on the reference's grid (same shape and header), or check the pair is right."
    }
}

/// Scores one case in memory: for each label of `labels` (or, when nil, every label > 0 present in either image,
/// the ignore label aside) and each region, overlap counts, Dice, IoU, and HD / HD95 / ASSD from an exact EDT.
///
/// - prediction, reference: label images of the same shape (else `GridMismatchError`).
/// - spacing: one value per axis of the shape, in `unit`s (ignored and reported as voxels in swin-unet mode).
/// - regions: unions of labels scored as one class each, keyed "1+2".
/// - ignoreLabel: voxels where the reference has this label count for nothing (nnU-Net's ignore label): they are
///   background in both images for every class, and not counted in TN.
/// - nsdTolerances: the normalized surface Dice at each tolerance (in `unit`s), keys "nsd_1mm" (SurfaceDice.swift);
///   none when empty. Ignored voxels are background for it too: the surfaces are those of the masks so cut.
/// - threads: classes scored concurrently (1 = on the calling thread).
public func scoreCase(name: String, prediction: LabelMap, reference: LabelMap, spacing: [Double], unit: DistanceUnit,
                      labels: [Int]? = nil, regions: [Region] = [], ignoreLabel: Int? = nil,
                      policy: ScoringPolicy = .init(), nsdTolerances: [Double] = [],
                      predictionFile: String = "", referenceFile: String = "", predictionMissing: Bool = false,
                      threads: Int = 1) throws -> CaseScore {
    guard prediction.shape == reference.shape else {
        throw GridMismatchError(predictionFile: predictionFile.isEmpty ? "(prediction)" : predictionFile,
                                referenceFile: referenceFile.isEmpty ? "(reference)" : referenceFile,
                                problem: "shape \(prediction.shape) vs \(reference.shape)")
    }
    var prediction = prediction, reference = reference, ignored = 0
    if let ignoreLabel {
        (prediction, reference, ignored) = withoutIgnored(prediction, reference, ignoreLabel: UInt16(ignoreLabel))
    }
    var score = try scoreLabels(name: name, prediction: prediction, reference: reference, spacing: spacing, unit: unit,
                                labels: labels, excluding: ignoreLabel, ignored: ignored, policy: policy,
                                nsdTolerances: nsdTolerances, predictionFile: predictionFile, referenceFile: referenceFile,
                                predictionMissing: predictionMissing, threads: threads)
    for region in regions {
        let inRegion = [Bool](unsafeUninitializedCapacity: 65536) { b, n in
            b.initialize(repeating: false); for l in region.labels { b[l] = true }; n = 65536
        }
        let binary = { (m: LabelMap) in LabelMap(shape: m.shape, labels: m.labels.map { inRegion[Int($0)] ? 1 : 0 }) }
        let r = try scoreLabels(name: name, prediction: binary(prediction), reference: binary(reference), spacing: spacing,
                                unit: unit, labels: [1], ignored: ignored, policy: policy,
                                nsdTolerances: nsdTolerances, threads: 1)
        score.metrics[region.key] = r.metrics["1"]
    }
    if ignoreLabel != nil { score.ignoredVoxels = ignored }
    return score
}

/// The images with every voxel where the reference has `ignoreLabel` set to background in both, and their count.
func withoutIgnored(_ prediction: LabelMap, _ reference: LabelMap, ignoreLabel: UInt16) -> (LabelMap, LabelMap, Int) {
    var p = prediction.labels, r = reference.labels, count = 0
    for i in r.indices where r[i] == ignoreLabel { p[i] = 0; r[i] = 0; count += 1 }
    return (LabelMap(shape: prediction.shape, labels: p), LabelMap(shape: reference.shape, labels: r), count)
}

/// scoreCase for single labels, on images whose ignored voxels (`ignored` of them) are already background.
private func scoreLabels(name: String, prediction: LabelMap, reference: LabelMap, spacing: [Double], unit: DistanceUnit,
                         labels: [Int]?, excluding excluded: Int? = nil, ignored: Int, policy: ScoringPolicy,
                         nsdTolerances: [Double], predictionFile: String = "", referenceFile: String = "", predictionMissing: Bool = false,
                         threads: Int) throws -> CaseScore {
    precondition(spacing.count == reference.rank && spacing.allSatisfy { $0 > 0 && $0.isFinite },
                 "spacing \(spacing) does not fit shape \(reference.shape)")
    let compat = policy.mode == .swinUNet
    let usedSpacing = compat ? [Double](repeating: 1, count: reference.rank) : spacing
    let usedUnit: DistanceUnit = compat ? .voxel : unit
    let grid = Grid3(shape: reference.shape)
    let census = LabelCensus(prediction: prediction, reference: reference)
    let chosen = (labels ?? census.presentLabels).filter { $0 != excluded }   // the ignore label is never a class
    let diagonal = zip(reference.shape, usedSpacing).map { Double($0) * $1 * Double($0) * $1 }.reduce(0, +).squareRoot()

    var results = [ClassScore?](repeating: nil, count: chosen.count)
    let lock = NSLock()
    DispatchQueue.concurrentPerform(iterations: max(1, min(threads, chosen.count))) { worker in
        for k in stride(from: worker, to: chosen.count, by: max(1, min(threads, chosen.count))) {
            var score = scoreLabel(chosen[k], prediction: prediction, reference: reference, grid: grid,
                                   census: census, spacing: usedSpacing, diagonal: diagonal, policy: policy,
                                   nsdTolerances: nsdTolerances)
            score.tn -= ignored
            lock.lock(); results[k] = score; lock.unlock()
        }
    }
    var metrics: [String: ClassScore] = [:]
    for (label, score) in zip(chosen, results) { metrics[String(label)] = score! }
    return CaseScore(name: name, referenceFile: referenceFile, predictionFile: predictionFile, shape: reference.shape,
                     spacing: usedSpacing, unit: usedUnit, predictionMissing: predictionMissing, metrics: metrics)
}

/// One label of one case, following the policy's empty-mask rules.
private func scoreLabel(_ label: Int, prediction: LabelMap, reference: LabelMap, grid: Grid3, census: LabelCensus,
                        spacing: [Double], diagonal: Double, policy: ScoringPolicy, nsdTolerances: [Double]) -> ClassScore {
    let inCensus = label > 0 && label < census.nPred.count
    let nPred = inCensus ? census.nPred[label] : 0, nRef = inCensus ? census.nRef[label] : 0
    let tp = inCensus ? census.tp[label] : 0
    if nPred == 0 && nRef == 0 {
        return .bothEmpty(voxelCount: grid.count, policy: policy, nsdTolerances: nsdTolerances)
    }
    let fp = nPred - tp, fn = nRef - tp
    var score = ClassScore(dice: 2 * Double(tp) / Double(nPred + nRef), iou: Double(tp) / Double(tp + fp + fn),
                           tp: tp, fp: fp, fn: fn, tn: grid.count - tp - fp - fn, nPred: nPred, nRef: nRef,
                           hd: .infinity, hd95: .infinity, assd: .infinity, emptyRef: nRef == 0, emptyPred: nPred == 0,
                           thresholdedJaccard: ClassScore.thresholded(Double(tp) / Double(tp + fp + fn)))
    if !nsdTolerances.isEmpty {
        // one mask empty: nothing of either surface is within any tolerance of the other (0 / its area = 0)
        var values = [Double](repeating: 0, count: nsdTolerances.count)
        if nPred > 0 && nRef > 0 {
            let (a, b, box) = labelBox(label, prediction: prediction, reference: reference, grid: grid, census: census)
            values = surfaceDice(a: a, b: b, grid: box, rank: reference.rank, spacing: spacing3(spacing),
                                 tolerances: nsdTolerances)
        }
        score.surfaceDice = Dictionary(uniqueKeysWithValues: zip(nsdTolerances.map(ClassScore.nsdKey), values))
    }
    if nPred > 0 && nRef > 0 {
        let d = DistanceSummary(pooled: labelSurfaceDistances(label, prediction: prediction, reference: reference,
                                                              grid: grid, census: census, spacing: spacing))
        score.hd = d.hd; score.hd95 = d.hd95; score.assd = d.assd
    } else if policy.worstDistance == .diagonal {
        score.hd = diagonal; score.hd95 = diagonal; score.assd = diagonal
    }
    if policy.mode == .swinUNet {
        if nPred == 0 { score.dice = 0; score.hd95 = 0 }
        else if nRef == 0 { score.dice = 1; score.hd95 = 0 }
    }
    return score
}

/// The pooled surface distances of (prediction == label) and (reference == label), computed on the bounding box
/// of both masks: every surface voxel and every nearest partner lies inside it, and voxels outside it are
/// background for both masks, so the erosion and the EDT restricted to it are exact (no margin needed).
private func labelSurfaceDistances(_ label: Int, prediction: LabelMap, reference: LabelMap, grid: Grid3,
                                   census: LabelCensus, spacing: [Double]) -> [Double] {
    let (a, b, box) = labelBox(label, prediction: prediction, reference: reference, grid: grid, census: census)
    return pooledSurfaceDistances(a: a, b: b, grid: box, rank: reference.rank, spacing: spacing3(spacing))
}

/// (prediction == label) and (reference == label) on the bounding box of both, and the box.
/// a, b: (box.n0, box.n1, box.n2) axis 0 fastest, 0 / 1.
private func labelBox(_ label: Int, prediction: LabelMap, reference: LabelMap, grid: Grid3,
                      census: LabelCensus) -> ([UInt8], [UInt8], Grid3) {
    let lo = (0..<3).map { census.lo[label * 3 + $0] }, hi = (0..<3).map { census.hi[label * 3 + $0] }
    let box = Grid3(hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1)
    var a = [UInt8](repeating: 0, count: box.count), b = a          // (box.n0, box.n1, box.n2)
    let value = UInt16(label)
    prediction.labels.withUnsafeBufferPointer { p in
        reference.labels.withUnsafeBufferPointer { r in
            var j = 0
            for i2 in lo[2]...hi[2] {
                for i1 in lo[1]...hi[1] {
                    let row = lo[0] + grid.n0 * (i1 + grid.n1 * i2)
                    for i0 in 0..<box.n0 {
                        a[j] = p[row + i0] == value ? 1 : 0
                        b[j] = r[row + i0] == value ? 1 : 0
                        j += 1
                    }
                }
            }
        }
    }
    return (a, b, box)
}
