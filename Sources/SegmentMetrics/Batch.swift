// Scoring files: reading label images (NIfTI, PNG), checking their grids, and scoring the cases (paired by
// SegmentCases) in parallel.
import Foundation
import SegmentCore
import SegmentCases
import SegmentImaging

/// A label image read from a file, with its grid.
public struct LabelImage: Sendable {
    public var labels: LabelMap
    /// Voxel spacing per axis of `labels.shape` and its unit (mm from a NIfTI header, pixel for PNG).
    public var spacing: [Double]
    public var unit: DistanceUnit
    /// nibabel's affine of a NIfTI file (nil for PNG).
    public var affine: Affine?

    /// Labels on a NIfTI header's grid: `labels` in array order (X fastest), `header.voxelCount` of them.
    /// A volume with one slice (Z = 1) is a 2D image; the spacing is pixdim, taken as mm.
    public init(labels: [UInt16], header: NIfTIHeader) {
        let rank = header.shape[2] == 1 ? 2 : 3
        self.init(labels: LabelMap(shape: Array(header.shape.prefix(rank)), labels: labels),
                  spacing: Array(header.spacing.prefix(rank)), unit: .mm, affine: header.affine)
    }

    /// Labels of a PNG-sized image: width x height, row-major (x fastest); spacing 1 pixel.
    public init(labels: [UInt16], width: Int, height: Int) {
        self.init(labels: LabelMap(shape: [width, height], labels: labels), spacing: [1, 1], unit: .pixel, affine: nil)
    }

    init(labels: LabelMap, spacing: [Double], unit: DistanceUnit, affine: Affine?) {
        self.labels = labels; self.spacing = spacing; self.unit = unit; self.affine = affine
    }

    /// Reads a NIfTI (.nii, .nii.gz) or PNG label image.
    ///
    /// NIfTI: labels must be non-negative integers (after scl_slope/scl_inter); a volume with one slice
    /// (Z = 1) is a 2D image. Spacing: pixdim, taken as mm. PNG: one gray channel; `.binary` reads 0 as background
    /// and the largest value (255, or 65535 for 16-bit) as label 1 and refuses any other value, `.label` reads raw
    /// values as labels. Spacing 1 pixel.
    ///
    /// Memory: the stored image, its labels (2 bytes a voxel) and what scoring it takes (distance maps, about 16
    /// bytes a voxel) must fit `budget`, checked from the header before the voxels are read.
    public static func read(_ path: String, pngValues: PNGValues, budget: MemoryBudget = .machineDefault) throws -> LabelImage {
        if CaseFile(path: path)?.kind == .jpeg {
            throw ImagingError.notALabelImage(path: path, problem: "it is a JPEG, whose lossy compression changes the "
                + "values written; give masks as PNG or NIfTI")
        }
        guard path.lowercased().hasSuffix(".png") else {
            let header = try NIfTIHeader.read(path)
            let n = header.voxelCount
            try budget.check(checkedProduct([n, header.datatype.size + 2 + scoringBytesPerVoxel]), path: path,
                             what: "scoring its \(header.shape.map(String.init).joined(separator: " x ")) voxels")
            let volume = try NIfTIVolume.read(path, budget: budget)
            return LabelImage(labels: try volume.labels(as: UInt16.self), header: volume.header)
        }
        let image = try PNGImage.read(path, budget: budget)
        try budget.check(checkedProduct([image.width, image.height, 2 + scoringBytesPerVoxel]), path: path,
                         what: "scoring its \(image.width) x \(image.height) pixels")
        var labels = try image.labels()                // (height, width): x fastest
        if pngValues == .binary {
            let top: UInt16 = image.bitDepth == 16 ? 65535 : 255
            for (i, v) in labels.enumerated() where v != 0 {
                guard v == top else {
                    throw ImagingError.notALabelImage(path: path, problem: "pixel (\(i % image.width), \(i / image.width)) is "
                        + "\(v), not 0 or \(top) as a binary mask; use --png-values label for masks of raw labels")
                }
                labels[i] = 1
            }
        }
        return LabelImage(labels: labels, width: image.width, height: image.height)
    }
}

/// Largest pairs list or report read (1 GiB: millions of cases).
let maxListBytes = 1 << 30

/// Bytes a voxel that scoring a label image takes beyond its labels (masks and distance maps of one class).
let scoringBytesPerVoxel = 16

/// The options of a scoring run (`segment score` flags).
public struct ScoreOptions: Sendable {
    /// Labels to score; nil = every label present in any case.
    public var labels: [Int]?
    /// Unions of labels scored as one class each, after the labels.
    public var regions: [Region] = []
    /// Voxels where the reference has this label count for nothing (nnU-Net's ignore label).
    public var ignoreLabel: Int?
    /// Tolerances (in the distance units, mm for NIfTI) of the normalized surface Dice to report; none when empty.
    public var nsdTolerances: [Double] = []
    /// Display names by metric key (a label's "1", a region's "1+2").
    public var classNames: [String: String]
    public var policy: ScoringPolicy
    /// Overrides the reference header's spacing (one value per image axis), in mm.
    public var spacing: [Double]?
    /// Score a missing prediction file as an all-background image instead of failing the case.
    public var missingAsEmpty: Bool
    public var pngValues: PNGValues
    /// Skip the affine comparison (shapes must still match).
    public var ignoreAffine: Bool
    /// Cases scored concurrently.
    public var threads: Int
    /// The memory one image may take (checked before reading it).
    public var budget: MemoryBudget = .machineDefault

    public init(labels: [Int]? = nil, classNames: [String: String] = [:], policy: ScoringPolicy = .init(),
                spacing: [Double]? = nil, missingAsEmpty: Bool = false, pngValues: PNGValues = .binary,
                ignoreAffine: Bool = false, threads: Int = 1) {
        self.labels = labels; self.classNames = classNames; self.policy = policy; self.spacing = spacing
        self.missingAsEmpty = missingAsEmpty; self.pngValues = pngValues; self.ignoreAffine = ignoreAffine
        self.threads = threads
    }
}

/// Largest difference of the prediction's and the reference's affine entries (mm) accepted as the same grid.
public let affineTolerance = 1e-3

/// A per-case problem that is not an image error.
struct CaseError: SegmentError {
    let message: String
    var exitCode: ExitStatus { .invalidInput }
    var description: String { message }
}

/// What became of one case of a batch.
public enum CaseOutcome: Sendable {
    case scored(CaseScore)
    case failed(CaseFailure)
}

/// Scores the pairs, `options.threads` cases at a time. `progress` is called (serially, from worker threads) after
/// each case with the number done, the case's score or failure, and its time in seconds.
public func scoreBatch(_ pairs: [ScorePair], options: ScoreOptions,
                       progress: (_ done: Int, _ outcome: CaseOutcome, _ seconds: Double) -> Void = { _, _, _ in })
    -> (scores: [CaseScore], failures: [CaseFailure]) {
    let workers = max(1, min(options.threads, pairs.count))
    let lock = NSLock()
    var next = 0, done = 0
    var scores: [CaseScore] = [], failures: [CaseFailure] = []
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
        while true {
            lock.lock(); let k = next; next += 1; lock.unlock()
            if k >= pairs.count { return }
            let start = Date()
            let outcome: CaseOutcome
            do {
                // a single case gets the spare threads for its labels
                outcome = .scored(try scorePair(pairs[k], options: options, threads: pairs.count == 1 ? options.threads : 1))
            } catch {
                let e = error as? SegmentError
                outcome = .failed(CaseFailure(name: pairs[k].name, referenceFile: pairs[k].referenceFile,
                                               predictionFile: pairs[k].predictionFile, error: e?.description ?? "\(error)",
                                               exitCode: (e?.exitCode ?? .internalError).rawValue))
            }
            lock.lock()
            done += 1
            switch outcome {
            case .scored(let s): scores.append(s)
            case .failed(let f): failures.append(f)
            }
            progress(done, outcome, Date().timeIntervalSince(start))
            lock.unlock()
        }
    }
    return (scores, failures)
}

/// Reads, checks and scores one pair.
func scorePair(_ pair: ScorePair, options: ScoreOptions, threads: Int) throws -> CaseScore {
    let ref = try LabelImage.read(pair.referenceFile, pngValues: options.pngValues, budget: options.budget)
    if !FileManager.default.fileExists(atPath: pair.predictionFile) {
        guard options.missingAsEmpty else {
            throw CaseError(message: "the prediction \(pair.predictionFile) for reference \(pair.referenceFile) is missing. "
                + "Produce it, or score it as an empty mask with --missing-as-empty.")
        }
        let empty = LabelImage(labels: .empty(shape: ref.labels.shape), spacing: ref.spacing, unit: ref.unit, affine: ref.affine)
        return try scorePrediction(empty, against: ref, name: pair.name, predictionFile: pair.predictionFile,
                                   referenceFile: pair.referenceFile, options: options, missing: true, threads: threads)
    }
    return try scorePrediction(try LabelImage.read(pair.predictionFile, pngValues: options.pngValues, budget: options.budget), against: ref,
                               name: pair.name, predictionFile: pair.predictionFile, referenceFile: pair.referenceFile,
                               options: options, threads: threads)
}

/// Throws `GridMismatchError` unless a prediction of `shape` (as `LabelImage` orders it: first axis fastest, a single
/// slice dropped) and `affine` (nil for PNG) lies on the reference's grid: same shape, and affines whose entries
/// differ by at most `affineTolerance` unless `ignoreAffine`. The run pipeline can call it before predicting.
public func checkSameGrid(shape: [Int], affine: Affine?, reference ref: LabelImage, predictionFile: String,
                          referenceFile: String, ignoreAffine: Bool = false) throws {
    guard shape == ref.labels.shape else {
        throw GridMismatchError(predictionFile: predictionFile, referenceFile: referenceFile,
                                problem: "shape \(shape) vs \(ref.labels.shape)")
    }
    if !ignoreAffine, let a = affine, let b = ref.affine, a.maxDifference(b) > affineTolerance {
        throw GridMismatchError(predictionFile: predictionFile, referenceFile: referenceFile,
                                problem: "their affines differ by up to \(a.maxDifference(b)) (tolerance \(affineTolerance); "
                                    + "prediction \(a.m.prefix(3)), reference \(b.m.prefix(3))); --ignore-affine compares the voxels anyway")
    }
}

/// Scores a prediction against a reference image, both already read (`segment run --ref` holds its prediction in
/// memory): the same grid checks (shape; affine within `affineTolerance` unless `options.ignoreAffine`), spacing
/// (the reference's, or `options.spacing`), labels and policy as `segment score`. Throws `GridMismatchError` and
/// other `SegmentError`s (exit 3) naming the files.
public func scorePrediction(_ pred: LabelImage, against ref: LabelImage, name: String, predictionFile: String,
                            referenceFile: String, options: ScoreOptions, missing: Bool = false,
                            threads: Int = 1) throws -> CaseScore {
    try checkSameGrid(shape: pred.labels.shape, affine: pred.affine, reference: ref, predictionFile: predictionFile,
                      referenceFile: referenceFile, ignoreAffine: options.ignoreAffine)
    var spacing = ref.spacing, unit = ref.unit
    if let s = options.spacing {
        guard s.count == ref.labels.rank else {
            throw CaseError(message: "--spacing gives \(s.count) values but \(referenceFile) has \(ref.labels.rank) axes "
                + "(shape \(ref.labels.shape)). Give one spacing per axis.")
        }
        spacing = s; unit = .mm
    }
    guard spacing.allSatisfy({ $0 > 0 && $0.isFinite }) else {
        throw CaseError(message: "\(referenceFile) has voxel spacing \(spacing), which is not positive. Fix its header's "
            + "pixdim or give --spacing.")
    }
    return try scoreCase(name: name, prediction: pred.labels, reference: ref.labels, spacing: spacing, unit: unit,
                         labels: options.labels, regions: options.regions, ignoreLabel: options.ignoreLabel,
                         policy: options.policy, nsdTolerances: options.nsdTolerances, predictionFile: predictionFile,
                         referenceFile: referenceFile, predictionMissing: missing, threads: threads)
}
