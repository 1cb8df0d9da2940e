// A whole run: plan the cases, load the model, segment each case (a failing case does not stop the others, and with
// worker processes neither does a crashing one: CaseWorker.swift), write the report, and end with the documented
// exit code:
//   0  every case ok, or skipped by --continue because its mask exists
//   2  usage: contradictory options, an output equal to an input, an empty shard
//   3  the input is missing / not an image / a folder without images; for one file, the image cannot be read
//   4  the model cannot be found or is invalid
//   5  an output cannot be written (for one file; or an existing output without --continue/--overwrite)
//   6  a folder run where some cases failed (the report and the status lines name them); when every case of a
//      folder failed with the same code, that code instead
import Foundation
import SegmentCases
import SegmentCore
import SegmentEngine
import SegmentFormat
import SegmentImaging
import SegmentMetrics

/// How a run ended when it did not fully succeed (thrown after the report is written).
public struct RunFailure: SegmentError {
    public let exitCode: ExitStatus
    public let failed: [CaseRecord]
    public let total: Int
    public var description: String {
        let names = failed.prefix(5).map(\.name).joined(separator: ", ") + (failed.count > 5 ? ", ..." : "")
        return "\(failed.count) of \(total) cases failed (\(names)); the status lines above and the report say why."
    }
}

public enum Runner {
    /// Runs `o`. Throws a SegmentError on failure (for a single case, that case's own error). `executable` is this
    /// program, started as the cleanup guard and as the worker process that segments the cases (unless
    /// `o.inProcess`); nil segments them in this process, without a guard (for in-process callers).
    public static func run(_ o: RunOptions, executable: String?) throws {
        let started = Date()
        try o.validate()
        let plan = try CasePlanner.plan(o.planRequest)
        let modelPath = try ModelLocator.resolve(explicit: o.model)
        // The model: validated and checked against the options here, whether the cases run in this process or in
        // a worker (which opens it again).
        let model = try ModelFile.open(modelPath)
        let metadata = model.metadata, modelRecord = ModelRecord(model)
        do {
            let classes = model.metadata.config.numClasses
            if o.pngValues == .binary && classes > 2 && plan.cases.contains(where: { $0.kind.isPicture }) {
                throw RunError.usage("--png-values binary writes 0/255 masks for a two-class model, but \(modelPath) has "
                                     + "\(classes) classes. Use --png-values label.")
            }
        }

        for folder in plan.outputFolders {
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            catch { throw RunError.cannotCreateFolder(folder, reason: error.localizedDescription) }
        }
        let cleanup = try executable.map { try CleanupGuard(folders: plan.outputFolders, executable: $0) }
        defer { cleanup?.finish() }

        let progress = ProgressReporter(mode: ProgressReporter.mode(quiet: o.quiet), totalCases: plan.cases.count)
        let segment: (RunCase, inout CaseRecord) throws -> CaseScore?
        var workers: IsolatedCases? = nil
        if let executable, !o.inProcess {
            let folders = plan.outputFolders.map(CasePlanner.canonical)
            workers = IsolatedCases(executable: executable,
                                    setup: WorkerSetup(options: o, model: modelPath, runID: AtomicFile.runID),
                                    progress: progress,
                                    sweep: { CleanupGuard.sweep(CleanupGuard.Spec(pid: AtomicFile.runID, folders: folders)) })
            segment = workers!.segment
        } else {
            let engine = try SwinUNetEngine(model: model, threads: o.threads, maxBatch: o.batch, precision: o.precision)
            segment = Segmenter(metadata: metadata, engine: engine, options: o, progress: progress,
                                model: ((modelPath as NSString).lastPathComponent, model.checksum)).segment
        }
        defer { workers?.stop() }

        var records: [CaseRecord] = []
        var errors: [SegmentError] = []
        var scores: [CaseScore] = []
        for c in plan.cases {
            let t0 = Date()
            var record = CaseRecord(name: c.name, input: c.input, output: c.output, status: .ok)
            if case .found(let ref) = c.reference { record.reference = ref }
            do {
                if FileManager.default.fileExists(atPath: c.output) && !o.overwrite {
                    guard o.continueRun else { throw RunError.outputExists(c.output) }
                    record.status = .skipped
                } else {
                    if case .missing(let folder) = c.reference { throw RunError.referenceMissing(caseName: c.name, folder: folder) }
                    if let s = try segment(c, &record) { scores.append(s) }
                }
            } catch {
                let e = error as? SegmentError ?? InternalError(error: error)
                record.status = .failed
                record.error = e.description
                record.exitCode = Int(e.exitCode.rawValue)
                errors.append(e)
            }
            record.timeSeconds = Date().timeIntervalSince(t0)
            for w in record.warnings ?? [] {
                FileHandle.standardError.write(Data("segment: warning: \(record.input): \(w)\n".utf8))
            }
            progress.caseFinished(record.statusLine)
            records.append(record)
        }

        let failed = records.filter { $0.status == .failed }
        let exit: ExitStatus
        if failed.isEmpty {
            exit = .success
        } else if !plan.isFolder || (failed.count == records.count && Set(errors.map(\.exitCode)).count == 1) {
            exit = errors[0].exitCode
        } else {
            exit = .partialFailure
        }

        let summary = RunSummary(discovered: plan.discovered, records: records, shard: o.shard)
        let seconds = Date().timeIntervalSince(started)
        var report = RunReport(tool: "segment", toolVersion: o.toolVersion, commandLine: o.commandLine,
                               workingDirectory: FileManager.default.currentDirectoryPath,
                               started: ISO8601DateFormatter().string(from: started), wallTimeSeconds: seconds,
                               exitCode: Int(exit.rawValue), model: modelRecord, options: o.record,
                               summary: summary, cases: records)
        if o.reference != nil {
            let names = metadata.classNames
            report.scores = ScoreReport(cases: scores, labels: Array(1..<names.count),
                                        classNames: Dictionary(uniqueKeysWithValues: names.enumerated().map { (String($0.offset), $0.element) }),
                                        policy: ScoringPolicy(), tool: "segment \(o.toolVersion)")
        }
        progress.finish("cases=\(summary.cases) ok=\(summary.ok) skipped=\(summary.skipped) failed=\(summary.failed)", seconds: seconds)
        if let path = o.report { try AtomicFile.write(try report.json(), to: path) }
        if let path = o.html {
            try AtomicFile.write(Data(RunHTML.page(report, cases: plan.cases, metadata: metadata, options: o).utf8), to: path)
        }
        if o.json { FileHandle.standardOutput.write(try report.json()) }

        guard exit != .success else { return }
        if !plan.isFolder { throw errors[0] }
        throw RunFailure(exitCode: exit, failed: failed, total: records.count)
    }

    /// `--merge-reports`: merges shard reports into `report` and/or stdout (`json`).
    public static func mergeReports(_ paths: [String], report: String?, json: Bool, toolVersion: String, commandLine: [String]) throws {
        guard report != nil || json else { throw RunError.usage("--merge-reports writes the merged report: give --report FILE or --json.") }
        let merged = try RunReport.merge(paths: paths, toolVersion: toolVersion, commandLine: commandLine)
        if let report {
            if paths.contains(where: { CasePlanner.canonical($0) == CasePlanner.canonical(report) }) {
                throw RunError.outputIsInput(output: report, input: report)
            }
            try AtomicFile.write(try merged.json(), to: report)
        }
        if json { FileHandle.standardOutput.write(try merged.json()) }
    }

    /// An unexpected error (a bug): exit 1.
    struct InternalError: SegmentError {
        let error: Error
        var exitCode: ExitStatus { .internalError }
        var description: String { "internal error: \(error). Please report it with the command line." }
    }
}

extension ModelRecord {
    init(_ m: ModelFile) {
        let md = m.metadata
        self.init(path: m.path, checksum: m.checksum, fileSize: m.fileSize, config: ConfigRecord(md.config),
                  preprocessing: PreprocessingRecord(md.preprocessing), classNames: md.classNames,
                  sourceSHA256: md.sourceSHA256, converterVersion: md.converterVersion, provenance: md.provenance)
    }
}
