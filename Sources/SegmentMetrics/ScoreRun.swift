// A whole scoring run, as `segment score` does it: pair the cases (SegmentCases), score them, report progress, write
// the report files and the table, and end with the documented exit code:
//   0  every case scored
//   3  nothing scored (or the inputs are invalid)
//   6  some cases failed (the report lists them)
import Foundation
import SegmentCases
import SegmentCore

/// What a scoring run is told (the command line maps its flags onto this).
public struct ScoreRequest: Sendable {
    public enum Inputs: Sendable {
        case files(prediction: String, reference: String)
        case pairsList(String)
        case merge([String])
    }
    public var inputs: Inputs
    public var options: ScoreOptions
    public var json: String?
    public var csv: String?
    /// Write the report as one self-contained HTML page (ScoreHTML.swift).
    public var html: String?
    /// A folder of the cases' images (matched by case name), drawn under the outlines of the HTML page.
    public var images: String?
    public var quiet = false
    /// "segment VERSION", for the report.
    public var tool: String

    public init(inputs: Inputs, options: ScoreOptions, tool: String) {
        self.inputs = inputs; self.options = options; self.tool = tool
    }
}

public enum ScoreRun {
    /// Runs `r`; the table goes to `table` (stdout). Throws a SegmentError for an unsuccessful outcome, after the
    /// report files are written.
    public static func run(_ r: ScoreRequest, table: (String) -> Void = { print($0, terminator: "") }) throws {
        // A folder of images that cannot be listed fails the run (exit 3) before any case is scored.
        if let images = r.images { _ = try CaseDiscovery.images(in: images) }
        let report: ScoreReport
        switch r.inputs {
        case .merge(let paths):
            report = try ScoreReport.merge(try paths.map(ScoreReport.read), sources: paths, tool: r.tool)
        case .files, .pairsList:
            let found: (pairs: [ScorePair], unmatched: [String])
            switch r.inputs {
            case .pairsList(let csv): found = (try CaseMatching.pairs(csvFile: csv), [])
            case .files(let prediction, let reference): found = try CaseMatching.pairs(prediction: prediction, reference: reference)
            case .merge: fatalError("handled above")
            }
            for p in found.unmatched {
                FileHandle.standardError.write(Data("segment: warning: prediction \(p) matches no reference; not scored\n".utf8))
            }
            let progress = ProgressReporter(mode: ProgressReporter.mode(quiet: r.quiet), totalCases: found.pairs.count, prefix: "segment: score ")
            let start = Date()
            let result = scoreBatch(found.pairs, options: r.options) { _, outcome, seconds in
                progress.caseFinished(outcome.statusLine(seconds: seconds))
            }
            progress.finish("cases=\(found.pairs.count) ok=\(result.scores.count) failed=\(result.failures.count)",
                            seconds: Date().timeIntervalSince(start))
            report = ScoreReport(cases: result.scores, failures: result.failures, labels: r.options.labels,
                                 regions: r.options.regions, ignoreLabel: r.options.ignoreLabel,
                                 nsdTolerances: r.options.nsdTolerances,
                                 classNames: r.options.classNames, policy: r.options.policy, tool: r.tool,
                                 unmatchedPredictions: found.unmatched)
        }
        try finish(report, r, table: table)
    }

    /// Writes the report files and the table, then turns failures into the exit status.
    static func finish(_ report: ScoreReport, _ r: ScoreRequest, table: (String) -> Void) throws {
        if let json = r.json { try AtomicFile.write(try report.json(), to: json) }
        if let csv = r.csv { try AtomicFile.write(Data(report.csv().utf8), to: csv) }
        if let html = r.html {
            let page = try ScoreHTML.page(report, images: r.images, pngValues: r.options.pngValues, budget: r.options.budget,
                                          threads: r.options.threads)
            try AtomicFile.write(Data(page.utf8), to: html)
        }
        table(report.table())
        if report.metricPerCase.isEmpty { throw ScoreOutcome.nothingScored(report.failedCases) }
        if !report.failedCases.isEmpty {
            throw ScoreOutcome.someFailed(report.failedCases, of: report.failedCases.count + report.metricPerCase.count)
        }
    }
}

extension CaseOutcome {
    /// "segment: score case=NAME status=ok time=0.05s", or with exit=CODE error="..." for a failed case.
    func statusLine(seconds: Double) -> StatusLine {
        switch self {
        case .scored(let s):
            return StatusLine(prefix: "segment: score ", name: s.name, status: .ok, seconds: seconds, fields: [])
        case .failed(let f):
            return StatusLine(prefix: "segment: score ", name: f.name, status: .failed, seconds: seconds,
                              fields: [("exit", String(f.exitCode)), ("error", f.error)])
        }
    }
}

/// A batch that did not score every case.
public enum ScoreOutcome: SegmentError {
    case nothingScored([CaseFailure])
    case someFailed([CaseFailure], of: Int)

    public var exitCode: ExitStatus {
        switch self {
        case .nothingScored: return .invalidInput
        case .someFailed: return .partialFailure
        }
    }
    public var description: String {
        switch self {
        case let .nothingScored(failures):
            return failures.isEmpty ? "no case was scored." : "no case was scored: \(failures.count) failed; the first: \(failures[0].error)"
        case let .someFailed(failures, total):
            return "\(failures.count) of \(total) case(s) failed (listed above and in the report): "
                + failures.map(\.name).joined(separator: ", ") + "."
        }
    }
}
