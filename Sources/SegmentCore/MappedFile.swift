import Foundation

/// A whole regular file mapped read-only (never modified). The mapping lives as long as this object; views into
/// `bytes` must not outlive it. Shared by the model-file reader and the checkpoint reader, which turn a
/// `MappedFile.Failure` into their own typed, user-facing error.
public final class MappedFile {
    public enum Failure: Error, Equatable {
        case unreadable(reason: String)   // open/fstat/mmap failed, or not a regular file
        case empty
    }

    public let path: String
    public let bytes: UnsafeRawBufferPointer
    public var count: Int { bytes.count }

    public init(path: String) throws {
        self.path = path
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever (it is refused below).
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw Failure.unreadable(reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure.unreadable(reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw Failure.unreadable(reason: notARegularFile(path) ?? "it is not a regular file") }
        let size = Int(st.st_size)
        guard size > 0 else { throw Failure.empty }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw Failure.unreadable(reason: "cannot map it into memory: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count) }
}
