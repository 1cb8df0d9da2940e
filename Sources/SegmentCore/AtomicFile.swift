import Foundation

/// Writes outputs so a killed run leaves either the old state or the complete file, never a partial one:
/// the bytes go to a hidden temporary file in the destination's folder, are flushed, then renamed over it.
///
/// What an output path may be (docs/RELIABILITY.md, "Outputs"):
/// - missing or a regular file: written atomically as above;
/// - an existing character device or FIFO (`/dev/null`, `/dev/stdout`, a named pipe): written directly, never
///   replaced (renaming over `/dev/null` as root would replace the device with a regular file);
/// - a symbolic link: followed to the file it names, which is then treated by these rules (the link stays a link);
///   a link to nothing is refused, as is any other kind of file (a folder, a socket, a block device).
public enum AtomicFile {
    public struct WriteError: SegmentError {
        public let path: String
        public let reason: String
        public init(path: String, reason: String) { self.path = path; self.reason = reason }
        public var exitCode: ExitStatus { .outputNotWritable }
        public var description: String { "cannot write \(path): \(reason). Check the folder exists and is writable, and there is free space." }
    }

    /// Identifies the run in temporary names: this process's PID, or, in a worker process of a run, the run's PID
    /// (so the run's cleanup guard finds what a killed worker left).
    nonisolated(unsafe) public static var runID: Int32 = getpid()

    /// Longest part of the destination's name kept in the temporary name: with the dot and the 24-byte suffix the
    /// temporary name stays below NAME_MAX (255 bytes) for any legal destination name.
    static let keptNameBytes = 200

    /// The temporary path used for `path`: same folder, hidden, unique to this process.
    public static func temporaryPath(for path: String) -> String {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var kept = String.UnicodeScalarView(), bytes = 0
        for scalar in name.unicodeScalars {   // whole characters only: never cut a UTF-8 sequence in two
            bytes += String(scalar).utf8.count
            if bytes > keptNameBytes { break }
            kept.append(scalar)
        }
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return dir + "." + String(kept) + ".tmp-\(runID)-" + random
    }

    /// Where `path` is written, by the rules above.
    enum Destination: Equatable {
        case replace(String)   // atomically, through a temporary file beside this path
        case direct(String)    // an existing character device or FIFO, opened and written in place
    }

    static func destination(_ path: String) throws -> Destination {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return .replace(path) }
            throw WriteError(path: path, reason: String(cString: strerror(errno)))
        }
        var target = path
        if st.st_mode & S_IFMT == S_IFLNK {
            guard stat(path, &st) == 0 else {
                throw WriteError(path: path, reason: "it is a symbolic link to a missing file (\(String(cString: strerror(errno))))")
            }
            // A regular file is replaced where it is; a device or pipe (/dev/stdout -> /proc/self/fd/1 -> pipe:[N],
            // which has no path) is opened through the link.
            if st.st_mode & S_IFMT == S_IFREG, let resolved = realpath(path, nil) {
                target = String(cString: resolved)
                free(resolved)
            }
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .replace(target)
        case S_IFCHR, S_IFIFO: return .direct(target)
        case S_IFDIR: throw WriteError(path: path, reason: "it is a folder")
        default: throw WriteError(path: path, reason: "it is not a regular file, a character device or a FIFO")
        }
    }

    /// Calls `body` with a path to fill, then makes that the content of `path`: a temporary file that is fsynced
    /// and renamed to `path`, or (for a device or FIFO) `path` itself. On any error the temporary file is removed
    /// and the error rethrown.
    public static func write<T>(to path: String, _ body: (String) throws -> T) throws -> T {
        let target: String
        switch try destination(path) {
        case .direct(let device): return try body(device)
        case .replace(let file): target = file
        }
        let tmp = temporaryPath(for: target)
        do {
            let result = try body(tmp)
            // fsync before rename: otherwise a crash of the machine can leave the new name with no data.
            let fd = open(tmp, O_RDONLY)
            guard fd >= 0 else { throw WriteError(path: path, reason: String(cString: strerror(errno))) }
            let synced = fsync(fd) == 0 ? nil : String(cString: strerror(errno))
            close(fd)
            if let synced { throw WriteError(path: path, reason: synced) }
            guard rename(tmp, target) == 0 else {
                throw WriteError(path: path, reason: String(cString: strerror(errno)))
            }
            return result
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// Writes `data` to `path` atomically (directly for a device or FIFO).
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { file in
            // O_TRUNC is harmless on a device; O_CREAT only matters for the temporary file, created here.
            let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw WriteError(path: path, reason: String(cString: strerror(errno))) }
            defer { close(fd) }
            try data.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw WriteError(path: path, reason: String(cString: strerror(n < 0 ? errno : EIO))) }
                    done += n
                }
            }
        }
    }
}
