// `segment run --merge-reports a.json b.json ... --report all.json`: one report from the reports of the shards of a
// folder (`--shard i/n`), as if the folder had been run at once.
import Foundation
import SegmentCore
import SegmentMetrics

extension RunReport {
    /// Combines shard reports: the cases of all (sorted by case name as a folder run orders them), the summary and
    /// exit code recomputed from them, the scores merged by SegmentMetrics (means recomputed from the per-case values).
    /// The shards must come from the same model and folder (same discovered count); a case may appear once.
    /// `started` is the earliest start, `wall_time_s` the sum of the shards' wall times.
    public static func merge(_ reports: [(path: String, report: RunReport)], toolVersion: String,
                             commandLine: [String]) throws -> RunReport {
        guard let first = reports.first?.report else { throw RunError.usage("--merge-reports needs at least one report.") }
        var seen: [String: String] = [:]
        for (path, r) in reports {
            guard r.model.checksum == first.model.checksum else {
                throw RunError.usage("cannot merge \(path): it was made with model \(r.model.path) (checksum \(r.model.checksum)), "
                                     + "\(reports[0].path) with \(first.model.path) (checksum \(first.model.checksum)).")
            }
            guard r.summary.discovered == first.summary.discovered else {
                throw RunError.usage("cannot merge \(path): it comes from a folder of \(r.summary.discovered) images, "
                                     + "\(reports[0].path) from one of \(first.summary.discovered).")
            }
            guard (r.scores == nil) == (first.scores == nil) else {
                throw RunError.usage("cannot merge \(path): only some of the reports have --ref scores.")
            }
            for c in r.cases {
                if let other = seen[c.name] { throw RunError.usage("cannot merge \(path): case \(c.name) is also in \(other).") }
                seen[c.name] = path
            }
        }
        let cases = reports.flatMap(\.report.cases).sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var options = first.options
        options.shard = nil
        var merged = RunReport(
            tool: first.tool, toolVersion: toolVersion, commandLine: commandLine,
            workingDirectory: FileManager.default.currentDirectoryPath,
            started: reports.map(\.report.started).min()!, wallTimeSeconds: reports.map(\.report.wallTimeSeconds).reduce(0, +),
            exitCode: Int((cases.contains { $0.status == .failed } ? ExitStatus.partialFailure : .success).rawValue),
            model: first.model, options: options,
            summary: RunSummary(discovered: first.summary.discovered, records: cases, shard: nil), cases: cases)
        if first.scores != nil {
            do {
                merged.scores = try ScoreReport.merge(reports.map { $0.report.scores! }, sources: reports.map(\.path),
                                                      tool: "segment \(toolVersion)")
            } catch let e as SegmentError {
                throw RunError.usage(e.description)
            }
        }
        return merged
    }

    /// Reads the reports at `paths` and merges them (RunError, exit 3, for a file that is not a run report).
    public static func merge(paths: [String], toolVersion: String, commandLine: [String]) throws -> RunReport {
        let reports = try paths.map { path -> (path: String, report: RunReport) in
            let data: Data
            do { data = try readWholeFile(path, maxBytes: 1 << 30) }
            catch let f as FileReadFailure { throw RunError.notARunReport(path, reason: f.reason) }
            do { return (path, try RunReport.decode(data)) }
            catch { throw RunError.notARunReport(path, reason: "\(error)") }
        }
        return try merge(reports, toolVersion: toolVersion, commandLine: commandLine)
    }
}
