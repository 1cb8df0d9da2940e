// Crash isolation: the cases of a run are segmented in a worker process, so a case that crashes the decoder or the
// engine (or that the kernel's out-of-memory killer ends) fails alone; the run records it with the signal, starts a
// new worker and goes on with the next case.
//
// The worker is this executable, `segment run --internal-worker`, started once and reused: it loads the model once
// and then takes one case at a time. Parent and worker talk over two pipes, one JSON message a line:
//   parent -> worker   WorkerSetup (options, model path, run ID), then one RunCase per case
//   worker -> parent   ready (or setupFailed), then per case: started, slices..., then finished or failed
// The worker dies with the run (it checks every 0.1 s that its parent is still the run), writes its temporary files under the run's ID (so the run's
// cleanup guard removes what a killed worker left), and writes nothing else on its stdout.
import Foundation
import SegmentCases
import SegmentCore
import SegmentEngine
import SegmentFormat
import SegmentMetrics
#if canImport(Glibc)
import Glibc
#endif

/// What the parent tells a new worker.
struct WorkerSetup: Codable {
    var options: RunOptions
    var model: String
    var runID: Int32
}

/// What a worker tells the parent.
/// Why a worker could not report a case.
enum CaseWorkerError: Error, CustomStringConvertible {
    case unencodableRecord
    var description: String { "the case's record holds a number JSON cannot carry (NaN or infinity)" }
}

enum WorkerMessage: Codable {
    case ready
    case setupFailed(error: String, exitCode: Int32)
    case started(slices: Int)
    case slices(Int)
    case finished(record: CaseRecord, score: CaseScore?)
    case failed(record: CaseRecord, error: String, exitCode: Int32)
}

/// Where the segmenter reports a case's progress: the run's progress display, or (in a worker) the parent.
protocol CaseProgress: AnyObject {
    func caseStarted(_ name: String, slices: Int)
    func slicesFinished(_ n: Int)
}

extension ProgressReporter: CaseProgress {}

/// A case's error as the worker reported it: the same text and exit code as in-process.
struct RelayedError: SegmentError {
    let message: String
    let exitCode: ExitStatus
    var description: String { message }
}

/// The worker ended while it held a case.
struct WorkerCrashed: SegmentError {
    let input: String
    let how: String
    var exitCode: ExitStatus { .internalError }
    var description: String {
        "segmenting \(input) stopped the worker process: \(how). The other cases go on; "
            + "--continue retries this one. If it happens again, please report it with the file."
    }
}

/// One JSON message a line over a file descriptor.
struct LineChannel {
    let input: Int32
    let output: Int32
    private var buffer: [UInt8] = []

    init(input: Int32, output: Int32) { self.input = input; self.output = output }

    /// The next line, or nil at end of file.
    mutating func readLine() -> Data? {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Data(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = read(input, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            buffer += chunk[..<n]
        }
    }

    func send<T: Encodable>(_ value: T) -> Bool {
        guard var data = try? JSONEncoder().encode(value) else { return false }
        data.append(0x0A)
        return data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(output, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                done += n
            }
            return true
        }
    }
}

/// The parent's side: segments each case in the current worker, starting one when there is none.
final class IsolatedCases {
    private let executable: String
    private let setup: WorkerSetup
    private let progress: CaseProgress
    private let sweep: () -> Void
    private var worker: (pid: pid_t, channel: LineChannel)?
    /// A worker that could not load the model fails every case the same way: said once, not retried.
    private var setupError: Error?

    /// `sweep` removes the temporary files a crashed worker left.
    init(executable: String, setup: WorkerSetup, progress: CaseProgress, sweep: @escaping () -> Void) {
        self.executable = executable; self.setup = setup; self.progress = progress; self.sweep = sweep
        // A worker that dies makes writes to its pipe fail with EPIPE; the default SIGPIPE would end the run.
        signal(SIGPIPE, SIG_IGN)
    }

    deinit { stop() }

    func segment(_ c: RunCase, into record: inout CaseRecord) throws -> CaseScore? {
        var channel = try start()
        guard channel.send(c) else { throw crashed(c) }
        while let line = channel.readLine() {
            guard let message = try? JSONDecoder().decode(WorkerMessage.self, from: line) else { continue }
            switch message {
            case .started(let slices): progress.caseStarted(c.name, slices: slices)
            case .slices(let n): progress.slicesFinished(n)
            case .finished(let r, let score):
                worker?.channel = channel
                record = r
                return score
            case .failed(let r, let error, let code):
                worker?.channel = channel
                record = r
                throw RelayedError(message: error, exitCode: ExitStatus(rawValue: code) ?? .internalError)
            case .ready, .setupFailed: continue
            }
        }
        throw crashed(c)
    }

    /// The running worker's channel, or a new worker's once it has loaded the model.
    private func start() throws -> LineChannel {
        if let worker { return worker.channel }
        if let setupError { throw setupError }
        var toWorker: [Int32] = [-1, -1], fromWorker: [Int32] = [-1, -1]
        guard pipe(&toWorker) == 0, pipe(&fromWorker) == 0 else {
            throw RunError.internalFailure("cannot create the worker's pipes: \(String(cString: strerror(errno)))")
        }
        for fd in toWorker + fromWorker { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toWorker[0], 0)      // dup2 clears close-on-exec
        posix_spawn_file_actions_adddup2(&actions, fromWorker[1], 1)
        let args = ["segment", "run", CaseWorker.flag]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, nil, &argv, environ)
        close(toWorker[0]); close(fromWorker[1])
        guard rc == 0 else {
            close(toWorker[1]); close(fromWorker[0])
            throw RunError.internalFailure("cannot start the worker \(executable): \(String(cString: strerror(rc)))")
        }
        var channel = LineChannel(input: fromWorker[0], output: toWorker[1])
        worker = (child, channel)
        guard channel.send(setup) else { throw workerFailed("it closed its input") }
        while let line = channel.readLine() {
            switch try? JSONDecoder().decode(WorkerMessage.self, from: line) {
            case .ready?:
                worker = (child, channel)
                return channel
            case .setupFailed(let error, let code)?:
                stop()
                setupError = RelayedError(message: error, exitCode: ExitStatus(rawValue: code) ?? .internalError)
                throw setupError!
            default: continue
            }
        }
        throw workerFailed("it ended while loading the model")
    }

    private func workerFailed(_ what: String) -> Error {
        let how = reap()
        return RunError.internalFailure("the worker process could not start: \(what) (\(how))")
    }

    /// Reaps the worker that held case `c`, removes what it left half-written, and describes how it ended.
    private func crashed(_ c: RunCase) -> Error {
        let how = reap()
        sweep()
        return WorkerCrashed(input: c.input, how: how)
    }

    /// Waits for the current worker (closing its pipes first) and says how it ended.
    @discardableResult
    private func reap() -> String {
        guard let w = worker else { return "no worker" }
        worker = nil
        close(w.channel.output); close(w.channel.input)
        var status: Int32 = 0
        while waitpid(w.pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7F
        if signal != 0 && signal != 0x7F {
            let name = CaseWorker.signalName(signal)
            let hint = signal == SIGKILL ? ", which the kernel sends when memory runs out (or a user sent it)" : ""
            return "killed by \(name) (signal \(signal))\(hint)"
        }
        return "it exited with code \((status >> 8) & 0xFF)"
    }

    /// Ends the worker: closing its input makes it exit after its current case.
    func stop() { reap() }
}

/// The worker's side.
public enum CaseWorker {
    /// The hidden flag of `segment run` that makes the process a worker.
    public static let flag = "--internal-worker"

    /// Serves cases on stdin/stdout until stdin ends. Returns the exit code.
    public static func serve() -> Int32 {
        // Never outlive the run: a killed run's cleanup guard removes temporary files, and a worker still writing
        // would leave new ones (or finish a mask after the run was stopped).
        let parent = getppid()
        Thread.detachNewThread {
            while getppid() == parent { usleep(100_000) }
            _exit(ExitStatus.internalError.rawValue)
        }
        let channel0 = LineChannel(input: 0, output: dup(1))
        // Anything else printed on stdout would corrupt the messages: stdout goes to stderr from here on.
        dup2(2, 1)
        var channel = channel0
        guard let first = channel.readLine(), let setup = try? JSONDecoder().decode(WorkerSetup.self, from: first) else { return 2 }
        AtomicFile.runID = setup.runID
        let segmenter: Segmenter
        let relay = Relay(channel: channel)
        do {
            let model = try ModelFile.open(setup.model)
            let engine = try SwinUNetEngine(model: model, threads: setup.options.threads, maxBatch: setup.options.batch,
                                            precision: setup.options.precision)
            segmenter = Segmenter(metadata: model.metadata, engine: engine, options: setup.options, progress: relay,
                                  model: ((setup.model as NSString).lastPathComponent, model.checksum))
        } catch {
            let e = error as? SegmentError ?? Runner.InternalError(error: error)
            _ = channel.send(WorkerMessage.setupFailed(error: e.description, exitCode: e.exitCode.rawValue))
            return e.exitCode.rawValue
        }
        guard channel.send(WorkerMessage.ready) else { return 0 }
        while let line = channel.readLine() {
            guard let c = try? JSONDecoder().decode(RunCase.self, from: line) else { return 2 }
            var record = CaseRecord(name: c.name, input: c.input, output: c.output, status: .ok)
            if case .found(let ref) = c.reference { record.reference = ref }
            var reply: WorkerMessage
            do {
                let score = try segmenter.segment(c, into: &record)
                reply = .finished(record: record, score: score)
            } catch {
                let e = error as? SegmentError ?? Runner.InternalError(error: error)
                reply = .failed(record: record, error: e.description, exitCode: e.exitCode.rawValue)
            }
            // A record JSON cannot carry (a NaN or infinite number) must still come back as this case's failure, not
            // as a worker that ended without a word.
            if (try? JSONEncoder().encode(reply)) == nil {
                let bare = CaseRecord(name: c.name, input: c.input, output: c.output, status: .failed)
                reply = .failed(record: bare, error: Runner.InternalError(error: CaseWorkerError.unencodableRecord).description,
                                exitCode: ExitStatus.internalError.rawValue)
            }
            guard channel.send(reply) else { return 0 }
        }
        return 0
    }

    /// Forwards the segmenter's progress to the parent.
    final class Relay: CaseProgress {
        let channel: LineChannel
        init(channel: LineChannel) { self.channel = channel }
        func caseStarted(_ name: String, slices: Int) { _ = channel.send(WorkerMessage.started(slices: slices)) }
        func slicesFinished(_ n: Int) { _ = channel.send(WorkerMessage.slices(n)) }
    }

    static func signalName(_ s: Int32) -> String {
        let names: [Int32: String] = [SIGSEGV: "SIGSEGV", SIGBUS: "SIGBUS", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
                                      SIGABRT: "SIGABRT", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGTERM: "SIGTERM",
                                      SIGINT: "SIGINT", SIGPIPE: "SIGPIPE", SIGXCPU: "SIGXCPU", SIGSYS: "SIGSYS"]
        return names[s] ?? "signal \(s)"
    }
}
