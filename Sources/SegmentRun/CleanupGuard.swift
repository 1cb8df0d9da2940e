// Removes the temporary files of a run that was killed (even by SIGKILL) in the middle of writing an output.
//
// Outputs are written through SegmentCore.AtomicFile: a hidden temporary file `.NAME.tmp-PID-RANDOM...` in the output's
// folder, renamed over NAME once complete. A run killed mid-write cannot delete that file itself, so the run starts a
// small guard process (this executable, `segment run --internal-cleanup-guard SPEC`) holding the read end of a pipe
// whose write end only the run holds. When the run ends, normally or killed, the kernel closes the write end; the
// guard reads end-of-file, deletes every `.*.tmp-PID-*` file of the run's PID in the output folders, and exits.
// The guard runs in its own process group and ignores SIGINT/SIGTERM/SIGHUP, so Ctrl-C on the run reaches only the run.
import Foundation
import SegmentCore
#if canImport(Glibc)
import Glibc
#endif

public final class CleanupGuard {
    /// What the guard watches: the run's PID and its output folders. Passed on the guard's command line as JSON.
    public struct Spec: Codable, Equatable {
        public let pid: Int32
        public let folders: [String]
    }

    /// The hidden flag of `segment run` that makes the process a guard.
    public static let flag = "--internal-cleanup-guard"

    private let pid: pid_t
    private var writeEnd: Int32

    /// Starts a guard for this process over `folders` (they should exist). `executable` is this program.
    public init(folders: [String], executable: String = "/proc/self/exe") throws {
        let spec = Spec(pid: getpid(), folders: folders.map { CasePlanner.canonical($0) })
        let json = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)

        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw GuardError(reason: "pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)           // stdin = read end (dup2 clears close-on-exec)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attr, 0)                               // its own process group

        let args = ["segment", "run", Self.flag, json]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attr, &argv, environ)
        close(fds[0])
        guard rc == 0 else {
            close(fds[1])
            throw GuardError(reason: "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        pid = child
        writeEnd = fds[1]
    }

    /// Ends the guard after a run that cleaned up after itself: closes the pipe and waits for the guard to exit.
    public func finish() {
        guard writeEnd >= 0 else { return }
        close(writeEnd)
        writeEnd = -1
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    deinit { finish() }

    /// The guard's side: waits for end-of-file on stdin, then removes the run's temporary files. Returns the exit code.
    public static func serve(spec json: String) -> Int32 {
        for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE] { signal(s, SIG_IGN) }
        guard let spec = try? JSONDecoder().decode(Spec.self, from: Data(json.utf8)) else { return 2 }
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = read(0, &buffer, buffer.count)
            if n > 0 || (n < 0 && errno == EINTR) { continue }
            break
        }
        // The run's worker process notices the run is gone within 0.1 s (CaseWorker.serve) and stops; wait for it, so
        // that a file it was writing is swept too.
        usleep(300_000)
        sweep(spec)
        return 0
    }

    /// Deletes the hidden temporary files of process `spec.pid` in `spec.folders` (AtomicFile's naming).
    static func sweep(_ spec: Spec) {
        let marker = ".tmp-\(spec.pid)-"
        for folder in spec.folders {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { continue }
            for name in names where name.hasPrefix(".") && name.contains(marker) {
                unlink(CasePlanner.join(folder, name))
            }
        }
    }

    struct GuardError: SegmentError {
        let reason: String
        var exitCode: ExitStatus { .internalError }
        var description: String { "cannot start the cleanup guard (\(reason)). Please report this with the command line." }
    }
}
