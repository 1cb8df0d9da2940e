// Aggregated score reports: nnU-Net's summary.json layout (foreground_mean, mean per label, metric_per_case with
// reference_file / prediction_file / metrics per label), extended with HD, HD95, ASSD, spacing, units, the policy,
// per-label counts of excluded and infinite values, and the failed cases. Also CSV rows and a terminal table.
//
// Non-finite numbers are JSON strings "nan" and "inf" (Python's float() and pandas read them back), so the file
// stays strict JSON.
import Foundation
import SegmentCore

/// Metric name -> value, for one label (a case's scores) or a mean.
public typealias MetricValues = [String: Double]

/// A case that could not be scored: which files, what went wrong.
public struct CaseFailure: Codable, Equatable, Sendable {
    public var name: String
    public var referenceFile: String
    public var predictionFile: String
    public var error: String
    public var exitCode: Int32

    public init(name: String, referenceFile: String, predictionFile: String, error: String, exitCode: Int32) {
        self.name = name; self.referenceFile = referenceFile; self.predictionFile = predictionFile
        self.error = error; self.exitCode = exitCode
    }

    enum CodingKeys: String, CodingKey {
        case name = "case", referenceFile = "reference_file", predictionFile = "prediction_file", error
        case exitCode = "exit_code"
    }
}

/// How many of a label's per-case values were left out of its means, and why.
public struct LabelCounts: Codable, Equatable, Sendable {
    /// Cases scored for the label.
    public var cases: Int
    public var bothEmpty: Int
    public var emptyRefOnly: Int
    public var emptyPredOnly: Int
    /// Per metric: values left out of the mean (NaN or infinite).
    public var excluded: [String: Int]
    /// Per metric: infinite values (a subset of `excluded`).
    public var infinite: [String: Int]

    enum CodingKeys: String, CodingKey {
        case cases, bothEmpty = "both_empty", emptyRefOnly = "empty_ref_only", emptyPredOnly = "empty_pred_only"
        case excluded, infinite
    }
}

/// A scoring run's report: per-case scores, their means, the policy, the failures.
public struct ScoreReport: Codable, Equatable, Sendable {
    /// The metrics of each label, in report order (nnU-Net's first, then the surface distances).
    public static let metricNames = ["Dice", "IoU", "TP", "FP", "FN", "TN", "n_pred", "n_ref", "HD", "HD95", "ASSD",
                                     "thresholded_Jaccard"]
    /// The metrics shown in the table and whose exclusions are counted.
    public static let ratioAndDistanceNames = ["Dice", "IoU", "HD", "HD95", "ASSD", "thresholded_Jaccard"]

    public var tool: String
    public var policy: ScoringPolicy
    /// Plain-language definitions the numbers follow (surface, HD95, empty masks, means).
    public var definitions: [String: String]
    /// "given" (labels chosen by --labels or a model file) or "present" (every label found in any case).
    public var labelsFrom: String
    public var labels: [Int]
    /// Unions of labels scored as one class each (keys "1+2"), after the labels; absent without --regions.
    public var regions: [String]?
    /// Voxels where the reference has this label were left out of every class (nnU-Net's ignore label).
    public var ignoreLabel: Int?
    /// Tolerances of the normalized surface Dice (keys "nsd_1mm" per class), in the distance units; absent without
    /// --nsd.
    public var nsdTolerances: [Double]?
    /// Display names by metric key (a label's "1", a region's "1+2").
    public var classNames: [String: String]
    /// Units of the distances: "mm", "pixel", "voxel", or "mixed" when cases differ (see each case's units).
    public var units: String
    public var foregroundMean: MetricValues
    public var mean: [String: MetricValues]
    public var counts: [String: LabelCounts]
    public var metricPerCase: [CaseScore]
    public var failedCases: [CaseFailure]
    /// Predictions that matched no reference (not scored).
    public var unmatchedPredictions: [String]

    enum CodingKeys: String, CodingKey {
        case tool, policy, definitions, labelsFrom = "labels_from", labels, regions, ignoreLabel = "ignore_label"
        case nsdTolerances = "nsd_tolerances"
        case classNames = "class_names", units
        case foregroundMean = "foreground_mean", mean, counts, metricPerCase = "metric_per_case"
        case failedCases = "failed_cases", unmatchedPredictions = "unmatched_predictions"
    }

    /// Aggregates scored cases. `labels` nil: the union of the labels each case was scored for; a case lacking one
    /// of them gets the both-empty scores. Means are over cases of the finite values (NaN and infinite values are
    /// left out and counted); the foreground mean is the mean over labels of the finite label means.
    public init(cases: [CaseScore], failures: [CaseFailure] = [], labels: [Int]?, regions: [Region] = [],
                ignoreLabel: Int? = nil, nsdTolerances: [Double] = [], classNames: [String: String] = [:],
                policy: ScoringPolicy, tool: String, unmatchedPredictions: [String] = []) {
        let chosen = labels ?? Set(cases.flatMap { $0.metrics.keys.compactMap { Int($0) } }).sorted()
        self.tool = tool
        self.policy = policy
        self.definitions = ScoreReport.definitions(policy, regions: !regions.isEmpty, ignoreLabel: ignoreLabel,
                                                   nsd: !nsdTolerances.isEmpty)
        self.nsdTolerances = nsdTolerances.isEmpty ? nil : nsdTolerances
        self.labelsFrom = labels == nil ? "present" : "given"
        self.labels = chosen
        self.regions = regions.isEmpty ? nil : regions.map(\.key)
        self.ignoreLabel = ignoreLabel
        self.classNames = classNames
        let units = Set(cases.map { $0.unit.rawValue })
        self.units = units.count == 1 ? units.first! : units.isEmpty ? (policy.mode == .swinUNet ? "voxel" : "mm") : "mixed"
        let keys = chosen.map(String.init) + regions.map(\.key)
        self.metricPerCase = cases.map { c in var c = c; c.complete(keys: keys, policy: policy, nsdTolerances: nsdTolerances); return c }
            .sorted { $0.name < $1.name }
        self.failedCases = failures.sorted { $0.name < $1.name }
        self.unmatchedPredictions = unmatchedPredictions.sorted()
        self.mean = [:]
        self.counts = [:]
        self.foregroundMean = [:]
        for key in keys {
            let scores = metricPerCase.compactMap { $0.metrics[key] }
            var means = MetricValues(), excluded = [String: Int](), infinite = [String: Int]()
            for name in metricNames {
                let values = scores.map { $0.value(name) }
                let finite = values.filter { $0.isFinite }
                means[name] = finite.isEmpty ? .nan : finite.reduce(0, +) / Double(finite.count)
                if ScoreReport.ratioAndDistanceNames.contains(name) || name.hasPrefix("nsd_") {
                    excluded[name] = values.count - finite.count
                    infinite[name] = values.filter { $0.isInfinite }.count
                }
            }
            mean[key] = means
            counts[key] = LabelCounts(cases: scores.count,
                                      bothEmpty: scores.filter { $0.emptyRef && $0.emptyPred }.count,
                                      emptyRefOnly: scores.filter { $0.emptyRef && !$0.emptyPred }.count,
                                      emptyPredOnly: scores.filter { !$0.emptyRef && $0.emptyPred }.count,
                                      excluded: excluded, infinite: infinite)
        }
        for name in metricNames {
            let finite = keys.compactMap { mean[$0]?[name] }.filter { $0.isFinite }
            foregroundMean[name] = finite.isEmpty ? .nan : finite.reduce(0, +) / Double(finite.count)
        }
    }

    /// The metrics of each class in this report: `metricNames`, then the surface Dice keys by tolerance.
    public var metricNames: [String] {
        ScoreReport.metricNames + (nsdTolerances ?? []).map(ClassScore.nsdKey)
    }

    /// The metric keys in report order: the labels, then the regions.
    public var classKeys: [String] { labels.map(String.init) + (regions ?? []) }

    /// The texts of `definitions`, for a policy.
    static func definitions(_ policy: ScoringPolicy, regions: Bool = false, ignoreLabel: Int? = nil,
                            nsd: Bool = false) -> [String: String] {
        let worst = policy.worstDistance == .diagonal
            ? "replaced by the image diagonal sqrt(sum((n_axis * spacing_axis)^2)) in the case's units"
            : "+inf, left out of the means and counted"
        var d = [
            "surface": "mask XOR its binary erosion with the face-connected cross (4-connected in 2D, 6 in 3D), "
                + "voxels outside the image counted as background (medpy 0.5.2)",
            "distances": "for each surface voxel of one mask, the Euclidean distance to the nearest surface voxel of "
                + "the other, from an exact distance transform using the spacing; HD = max, HD95 = 95th percentile "
                + "(linear interpolation, numpy) and ASSD = mean of the pooled distances in both directions",
            "dice": "2 TP / (n_pred + n_ref); IoU = TP / (TP + FP + FN)",
            "thresholded_jaccard": "ISIC 2018 task 1's score: per case the IoU (Jaccard) of the label, counted as 0 "
                + "when below \(ClassScore.jaccardThreshold); its mean is the leaderboard number (TJ in the table)",
            "means": "per label: mean over cases of the finite values (NaN and infinite values left out and counted); "
                + "foreground_mean: mean over labels (and regions) of the finite label means",
        ]
        if regions {
            d["regions"] = "a region \"1+2\" is scored as one class: a voxel is in it when its label is any of the listed "
                + "labels (nnU-Net's regions)"
        }
        if nsd {
            d["nsd"] = "normalized surface Dice at tolerance t (nsd_<t>mm, t in the case's distance units), as DeepMind's "
                + "surface-distance package: border elements are the 2x2x2 cubes (2x2 in 2D) with some but not all "
                + "voxels in the mask, each weighted by its marching-cubes surface area (contour length in 2D) under the "
                + "spacing; (area of each mask's border within t of the other's border) / (both borders' areas). "
                + "Both masks empty: NaN; one empty: 0"
        }
        if let ignoreLabel {
            d["ignore_label"] = "voxels where the reference has label \(ignoreLabel) are background in both images for "
                + "every class and are not counted in TN (nnU-Net's ignore label); surfaces are those of the masks so "
                + "cut"
        }
        switch policy.mode {
        case .standard:
            d["empty_masks"] = "both empty: Dice, IoU and distances NaN (left out of the means, counted); "
                + "one empty: Dice 0, IoU 0, distances \(worst)"
        case .swinUNet:
            d["empty_masks"] = "Swin-Unet calculate_metric_percase: distances in voxels (spacing ignored); "
                + "reference empty and prediction not: Dice 1, HD95 0; prediction empty: Dice 0, HD95 0. "
                + "IoU, HD and ASSD keep the default rules (both empty NaN; one empty: IoU 0, HD and ASSD \(worst))"
        }
        return d
    }

    /// Combines shard reports into one: the cases, failures and unmatched predictions of all, the means recomputed
    /// from the per-case values. The shards must share the policy and, if chosen, the labels; a case may appear once.
    public static func merge(_ reports: [ScoreReport], sources: [String], tool: String) throws -> ScoreReport {
        precondition(!reports.isEmpty && reports.count == sources.count)
        let first = reports[0]
        var seen: [String: String] = [:]
        for (report, source) in zip(reports, sources) {
            guard report.policy == first.policy else {
                throw ReportError.mergeConflict(path: source, problem: "its policy (\(report.policy.mode.rawValue), worst distance "
                    + "\(report.policy.worstDistance.rawValue)) differs from \(sources[0])'s (\(first.policy.mode.rawValue), "
                    + "\(first.policy.worstDistance.rawValue))")
            }
            guard report.nsdTolerances == first.nsdTolerances else {
                throw ReportError.mergeConflict(path: source, problem: "its --nsd tolerances (\(report.nsdTolerances ?? [])) "
                    + "differ from \(sources[0])'s (\(first.nsdTolerances ?? []))")
            }
            guard report.regions == first.regions && report.ignoreLabel == first.ignoreLabel else {
                throw ReportError.mergeConflict(path: source, problem: "its regions (\(report.regions ?? [])) or ignore label "
                    + "(\(report.ignoreLabel.map(String.init) ?? "none")) differ from \(sources[0])'s (\(first.regions ?? []), "
                    + "\(first.ignoreLabel.map(String.init) ?? "none"))")
            }
            guard report.labelsFrom == first.labelsFrom && (first.labelsFrom == "present" || report.labels == first.labels) else {
                throw ReportError.mergeConflict(path: source, problem: "its labels (\(report.labelsFrom) \(report.labels)) differ from "
                    + "\(sources[0])'s (\(first.labelsFrom) \(first.labels))")
            }
            for name in report.metricPerCase.map(\.name) + report.failedCases.map(\.name) {
                if let other = seen[name] {
                    throw ReportError.mergeConflict(path: source, problem: "case \(name) is also in \(other)")
                }
                seen[name] = source
            }
        }
        var names: [String: String] = [:]
        for report in reports { for (k, v) in report.classNames { names[k] = v } }
        return ScoreReport(cases: reports.flatMap(\.metricPerCase), failures: reports.flatMap(\.failedCases),
                           labels: first.labelsFrom == "given" ? first.labels : nil,
                           regions: (first.regions ?? []).compactMap { Region(parsing: $0) }, ignoreLabel: first.ignoreLabel,
                           nsdTolerances: first.nsdTolerances ?? [],
                           classNames: names,
                           policy: first.policy, tool: tool,
                           unmatchedPredictions: reports.flatMap(\.unmatchedPredictions))
    }

    // MARK: files

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    /// The report as JSON (sorted keys, as nnU-Net writes summary.json).
    public func json() throws -> Data {
        try ScoreReport.encoder().encode(self)
    }

    /// Reads a report written by `json()`.
    public static func read(_ path: String) throws -> ScoreReport {
        let data: Data
        do { data = try readWholeFile(path, maxBytes: maxListBytes) }
        catch let f as FileReadFailure { throw ReportError.unreadable(path: path, problem: f.reason) }
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try d.decode(ScoreReport.self, from: data) }
        catch { throw ReportError.unreadable(path: path, problem: "not a report of `segment score --json` (\(error))") }
    }

    /// One row per case and label (plus one per failed case), comma-separated with a header.
    public func csv() -> String {
        let header = ["case", "label", "class_name", "status"] + metricNames
            + ["empty_ref", "empty_pred", "prediction_missing", "units", "spacing", "reference_file", "prediction_file", "error"]
        var rows = [header.joined(separator: ",")]
        for c in metricPerCase {
            for key in classKeys {
                guard let s = c.metrics[key] else { continue }
                let values = metricNames.map { name -> String in
                    let v = s.value(name)
                    return ["TP", "FP", "FN", "TN", "n_pred", "n_ref"].contains(name) ? String(Int(v)) : csvNumber(v)
                }
                rows.append(([c.name, key, classNames[key] ?? "", "ok"] + values
                    + [String(s.emptyRef), String(s.emptyPred), String(c.predictionMissing), c.unit.rawValue,
                       c.spacing.map { csvNumber($0) }.joined(separator: "x"), c.referenceFile, c.predictionFile, ""])
                    .map(csvField).joined(separator: ","))
            }
        }
        for f in failedCases {
            rows.append(([f.name, "", "", "failed"] + metricNames.map { _ in "" }
                + ["", "", "", "", "", f.referenceFile, f.predictionFile, f.error]).map(csvField).joined(separator: ","))
        }
        return rows.joined(separator: "\n") + "\n"
    }

    /// The per-label means and the foreground mean as a fixed-width table, with the counts that qualify them.
    public func table() -> String {
        let unitText = ["mm": "mm", "pixel": "pixels", "voxel": "voxels"][units] ?? "mixed units (see each case)"
        var lines = ["segment score: \(metricPerCase.count) case(s) scored, \(failedCases.count) failed"
            + (unmatchedPredictions.isEmpty ? "" : ", \(unmatchedPredictions.count) prediction(s) without a reference"),
            "policy: \(policy.mode.rawValue), worst distance \(policy.worstDistance.rawValue); distances in \(unitText)",
            "empty masks: \(definitions["empty_masks"] ?? "")", ""]
        let nsdKeys = (nsdTolerances ?? []).map(ClassScore.nsdKey)
        let shown = ["Dice", "IoU", "HD95", "HD", "ASSD", "thresholded_Jaccard"] + nsdKeys
        let columns = ["label", "class", "cases", "Dice", "IoU", "HD95", "HD", "ASSD", "TJ"]
            + nsdKeys.map { "NSD " + $0.dropFirst(4) } + ["excluded Dice/HD95", "inf HD95"]
        var rows: [[String]] = [columns]
        for key in classKeys {
            let m = mean[key] ?? [:], n = counts[key]
            rows.append([key, classNames[key] ?? "", String(n?.cases ?? 0)]
                + shown.map { tableNumber(m[$0] ?? .nan) }
                + ["\(n?.excluded["Dice"] ?? 0)/\(n?.excluded["HD95"] ?? 0)", String(n?.infinite["HD95"] ?? 0)])
        }
        rows.append(["foreground", "mean", ""] + shown.map { tableNumber(foregroundMean[$0] ?? .nan) }
            + ["", ""])
        let widths = (0..<columns.count).map { col in rows.map { $0[col].count }.max()! }
        for row in rows {
            lines.append(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        for f in failedCases { lines.append("failed: \(f.name): \(f.error)") }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A report file cannot be read or merged.
public enum ReportError: SegmentError {
    case unreadable(path: String, problem: String)
    case mergeConflict(path: String, problem: String)

    public var exitCode: ExitStatus { .invalidInput }
    public var description: String {
        switch self {
        case let .unreadable(path, problem):
            return "cannot read the report \(path): \(problem). Give JSON files written by `segment score --json`."
        case let .mergeConflict(path, problem):
            return "cannot merge \(path): \(problem). Merge only shards scored with the same options, each case once."
        }
    }
}

extension ClassScore {
    /// The value of a metric by its report name (counts as Double).
    public func value(_ name: String) -> Double {
        switch name {
        case "Dice": return dice
        case "IoU": return iou
        case "TP": return Double(tp)
        case "FP": return Double(fp)
        case "FN": return Double(fn)
        case "TN": return Double(tn)
        case "n_pred": return Double(nPred)
        case "n_ref": return Double(nRef)
        case "HD": return hd
        case "HD95": return hd95
        case "ASSD": return assd
        case "thresholded_Jaccard": return thresholdedJaccard ?? ClassScore.thresholded(iou)
        default:
            precondition(name.hasPrefix("nsd_"), "unknown metric \(name)")
            return surfaceDice?[name] ?? .nan
        }
    }
}

/// Shortest round-trip decimal; "nan", "inf", "-inf" for the non-finite values.
func csvNumber(_ v: Double) -> String {
    v.isNaN ? "nan" : v.isInfinite ? (v > 0 ? "inf" : "-inf") : "\(v)"
}

func csvField(_ s: String) -> String {
    s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

func tableNumber(_ v: Double) -> String {
    v.isNaN ? "-" : v.isInfinite ? "inf" : String(format: "%.4f", v)
}
