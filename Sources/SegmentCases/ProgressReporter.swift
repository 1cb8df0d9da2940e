// Progress on stderr, for `segment run` and `segment score` alike. A terminal gets a bar (cases done, slices/s,
// ETA); anything else (a log, a PACS script) gets one parseable status line per case:
//   segment: case=NAME status=ok time=1.23s slices=64 out=PATH
//   segment: case=NAME status=skipped time=0.00s out=PATH reason=exists
//   segment: case=NAME status=failed time=0.01s exit=3 error="..."
//   segment: score case=NAME status=ok time=0.05s
// Values holding a space, a quote, '=' or a control character are written as JSON strings. --quiet keeps only the
// lines of failed cases. Nothing here goes to stdout (stdout is for --json).
import Foundation

public final class ProgressReporter {
    public enum Mode: Equatable, Sendable { case bar, lines, quiet }

    /// The mode for these options: a bar only when stderr is a terminal.
    public static func mode(quiet: Bool, isTerminal: Bool = isatty(2) == 1) -> Mode {
        quiet ? .quiet : (isTerminal ? .bar : .lines)
    }

    private let mode: Mode
    private let prefix: String
    private let totalCases: Int
    private let write: (String) -> Void
    private let clock: () -> Double
    private let started: Double
    private var casesDone = 0
    private var processedCaseSeconds = 0.0
    private var processedCases = 0
    private var slicesDone = 0
    private var sliceSeconds = 0.0
    private var current: (name: String, slices: Int, done: Int, started: Double)?
    private var lastDraw = -1.0

    /// `prefix` starts every line ("segment: " for runs, "segment: score " for scoring).
    public init(mode: Mode, totalCases: Int, prefix: String = "segment: ",
                write: @escaping (String) -> Void = { fputs($0, stderr); fflush(stderr) },
                clock: @escaping () -> Double = { Date().timeIntervalSince1970 }) {
        self.mode = mode; self.totalCases = totalCases; self.prefix = prefix; self.write = write; self.clock = clock
        started = clock()
    }

    /// A case starts; `slices` is its number of engine slices (1 for a 2D image).
    public func caseStarted(_ name: String, slices: Int) {
        current = (name, slices, 0, clock())
        draw(force: true)
    }

    /// `n` more slices of the current case went through the engine.
    public func slicesFinished(_ n: Int) {
        guard var c = current else { return }
        c.done += n
        current = c
        draw(force: false)
    }

    /// A case ended (ok, skipped or failed).
    public func caseFinished(_ line: StatusLine) {
        casesDone += 1
        if let c = current, c.name == line.name, line.status == .ok {
            processedCases += 1
            processedCaseSeconds += line.seconds
            slicesDone += c.done
            sliceSeconds += clock() - c.started
        }
        current = nil
        switch mode {
        case .lines: write(line.text + "\n")
        case .quiet: if line.status == .failed { write(line.text + "\n") }
        case .bar:
            if line.status == .failed { write("\r\u{1B}[2K" + line.text + "\n") }
            draw(force: true)
        }
    }

    /// The run ended: clears the bar and prints the summary line (not with --quiet): "PREFIXdone COUNTS time=...".
    public func finish(_ counts: String, seconds: Double) {
        if mode == .bar { write("\r\u{1B}[2K") }
        guard mode != .quiet else { return }
        write("\(prefix)done \(counts) time=\(String(format: "%.2f", seconds))s\n")
    }

    /// A value as is, or as a JSON string when it holds a space, a quote, '=' or a control character.
    public static func quoted(_ v: String) -> String {
        let plain = !v.isEmpty && v.unicodeScalars.allSatisfy { $0.value > 0x20 && $0 != "\"" && $0 != "=" && $0.value != 0x7f }
        if plain { return v }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let data = try! encoder.encode([v])
        let s = String(decoding: data, as: UTF8.self)
        return String(s.dropFirst().dropLast())    // ["..."] -> "..."
    }

    private func draw(force: Bool) {
        guard mode == .bar else { return }
        let now = clock()
        if !force && now - lastDraw < 0.1 { return }
        lastDraw = now
        let width = 24
        var fraction = Double(casesDone)
        if let c = current, c.slices > 0 { fraction += Double(c.done) / Double(c.slices) }
        fraction /= Double(max(totalCases, 1))
        let filled = min(width, Int(fraction * Double(width)))
        var line = "\r\u{1B}[2K" + prefix.replacingOccurrences(of: ": ", with: " ") + "[" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            + "] \(casesDone)/\(totalCases) cases"
        let (slices, seconds) = (slicesDone + (current?.done ?? 0), sliceSeconds + (current.map { now - $0.started } ?? 0))
        if slices > 0 && seconds > 0 { line += String(format: " | %.1f slices/s", Double(slices) / seconds) }
        if let eta = eta(now: now) { line += " | ETA " + Self.clockTime(eta) }
        if let c = current { line += " | " + c.name }
        write(line)
    }

    /// Seconds left: the current case's remaining slices at the run's slice rate, plus the cases not started at the
    /// mean time of the cases processed so far. Nil until there is something to measure.
    private func eta(now: Double) -> Double? {
        let slices = slicesDone + (current?.done ?? 0)
        let seconds = sliceSeconds + (current.map { now - $0.started } ?? 0)
        var left = 0.0
        if let c = current {
            guard slices > 0 else { return nil }
            left += Double(c.slices - c.done) * seconds / Double(slices)
        }
        let notStarted = totalCases - casesDone - (current == nil ? 0 : 1)
        if notStarted > 0 {
            guard processedCases > 0 else { return nil }
            left += Double(notStarted) * processedCaseSeconds / Double(processedCases)
        }
        return left
    }

    static func clockTime(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}

/// How a case ended.
public enum CaseStatus: String, Codable, Sendable {
    case ok, skipped, failed
}

/// The status line of one case: "PREFIXcase=NAME status=ok time=1.23s key=value ...".
public struct StatusLine: Equatable, Sendable {
    public let name: String
    public let status: CaseStatus
    public let seconds: Double
    public let text: String

    /// `fields` follow case, status and time, in order; values are quoted as needed.
    public init(prefix: String = "segment: ", name: String, status: CaseStatus, seconds: Double, fields: [(String, String)]) {
        self.name = name; self.status = status; self.seconds = seconds
        let all = [("case", name), ("status", status.rawValue), ("time", String(format: "%.2fs", seconds))] + fields
        text = prefix + all.map { "\($0.0)=\(ProgressReporter.quoted($0.1))" }.joined(separator: " ")
    }
}
