import Foundation

/// Writes outputs so a killed run leaves either the old state or the complete file, never a partial one:
/// the bytes go to a hidden temporary file in the destination's folder, are flushed, then renamed over it.
public enum AtomicFile {
    public struct WriteError: SegmentError {
        public let path: String
        public let reason: String
        public var exitCode: ExitStatus { .outputNotWritable }
        public var description: String { "cannot write \(path): \(reason). Check the folder exists and is writable, and there is free space." }
    }

    /// The temporary path used for `path`: same folder, hidden, unique to this process.
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        return dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Calls `body` with a temporary path to fill, then fsyncs it and renames it to `path`.
    /// On any error (thrown by `body` or by the rename) the temporary file is removed and the error rethrown.
    public static func write<T>(to path: String, _ body: (String) throws -> T) throws -> T {
        let tmp = temporaryPath(for: path)
        do {
            let result = try body(tmp)
            let fd = open(tmp, O_RDONLY)
            if fd >= 0 { fsync(fd); close(fd) }
            guard rename(tmp, path) == 0 else {
                throw WriteError(path: path, reason: String(cString: strerror(errno)))
            }
            return result
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { tmp in
            guard FileManager.default.createFile(atPath: tmp, contents: data) else {
                throw WriteError(path: path, reason: "could not create \(tmp)")
            }
        }
    }
}
