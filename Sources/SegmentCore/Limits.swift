// The resource limits of one case (docs/RELIABILITY.md, "Limits"): every reader checks what a header declares
// against them before it allocates, so a 352-byte file declaring 2000^3 voxels is refused with the numbers instead
// of taking the machine's memory.
import Foundation

/// The memory one case may use for its decoded image and its outputs.
public struct MemoryBudget: Sendable, Equatable, Codable, CustomStringConvertible {
    public let bytes: Int

    public init(bytes: Int) { self.bytes = bytes }

    /// Half of what this process may use: the smaller of the machine's physical memory and the address-space limit
    /// (`ulimit -v`), so a run under a limit refuses a case instead of failing an allocation.
    public static let machineDefault: MemoryBudget = {
        var physical = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            physical = min(physical, Int(clamping: limit.rlim_cur))
        }
        return MemoryBudget(bytes: max(physical / 2, 64 << 20))
    }()

    /// Parses "8G", "512M", "2048K" or a byte count (binary units).
    public init?(parsing text: String) {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(text.trimmingCharacters(in: .whitespaces))
        var unit = 1
        if let last = digits.last?.uppercased().first, let u = units[last] {
            unit = u
            digits = digits.dropLast()
        }
        guard let value = Int(digits), value > 0 else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: unit)
        guard !overflow else { return nil }
        self.bytes = bytes
    }

    public var description: String { MemoryBudget.format(bytes) }

    /// Bytes in binary units, 3 significant digits: "15.6 GiB".
    public static func format(_ bytes: Int) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes), u = 0
        while value >= 1024 && u < units.count - 1 { value /= 1024; u += 1 }
        return u == 0 ? "\(bytes) bytes" : String(format: value < 10 ? "%.2f %@" : value < 100 ? "%.1f %@" : "%.0f %@", value, units[u])
    }

    /// Throws `TooLarge` when `needed` (nil: it overflows Int) is more than the budget.
    public func check(_ needed: Int?, path: String, what: String) throws {
        guard let needed, needed <= bytes else { throw TooLarge(path: path, what: what, needed: needed, budget: self) }
    }

    /// An input whose decoded size does not fit the budget: exit 3, with the numbers.
    public struct TooLarge: SegmentError {
        public let path: String
        public let what: String
        public let needed: Int?
        public let budget: MemoryBudget
        public var exitCode: ExitStatus { .invalidInput }
        public var description: String {
            let need = needed.map(MemoryBudget.format) ?? "more bytes than this machine can address"
            return "\(path) is too large: \(what) needs \(need), more than the memory budget of \(budget) per case. "
                + "Raise it with --memory-limit (the default is half of the machine's memory or of ulimit -v), or crop the image."
        }
    }
}

/// Deflate (zlib, gzip, PNG) expands at most 1032-fold (zlib's technical notes: a 258-byte match per 2 bits at best),
/// so a compressed file of n bytes cannot decode to more than 1032 n + a small constant: a header that declares more
/// describes data that is not there, and is refused before anything is allocated for it.
public let deflateMaximumRatio = 1032

/// A product of sizes, or nil when it overflows Int (or a factor is negative).
public func checkedProduct(_ factors: [Int]) -> Int? {
    var p = 1
    for f in factors {
        guard f >= 0 else { return nil }
        let (m, overflow) = p.multipliedReportingOverflow(by: f)
        if overflow { return nil }
        p = m
    }
    return p
}

/// Inputs are regular files: a FIFO would block the read forever, a device (/dev/zero) never ends, a folder has no
/// bytes. Returns the problem, or nil for a regular file (symbolic links are followed). Never opens the file.
public func notARegularFile(_ path: String) -> String? {
    var st = stat()
    guard stat(path, &st) == 0 else {
        return errno == ENOENT ? "no such file" : String(cString: strerror(errno))
    }
    switch st.st_mode & S_IFMT {
    case S_IFREG: return nil
    case S_IFDIR: return "it is a folder"
    case S_IFIFO: return "it is a FIFO (named pipe), not a regular file"
    case S_IFCHR, S_IFBLK: return "it is a device, not a regular file"
    case S_IFSOCK: return "it is a socket, not a regular file"
    default: return "it is not a regular file"
    }
}

/// Why `readWholeFile` could not read a file (callers wrap the reason in their own typed error).
public struct FileReadFailure: Error, Equatable {
    public let reason: String
}

/// The bytes of a small regular file (a report, a CSV list): refused when it is not a regular file (never opened
/// then), when it is empty (no such file is valid empty) or when it holds more than `maxBytes`.
public func readWholeFile(_ path: String, maxBytes: Int) throws -> Data {
    if let problem = notARegularFile(path) { throw FileReadFailure(reason: problem) }
    var st = stat()
    if stat(path, &st) == 0 {
        // Checked before Data(contentsOf:), which leaks a page-sized buffer when it reads an empty file.
        guard st.st_size > 0 else { throw FileReadFailure(reason: "the file is empty (0 bytes)") }
        if Int(st.st_size) > maxBytes {
            throw FileReadFailure(reason: "it has \(st.st_size) bytes, more than the \(maxBytes) such a file may have")
        }
    }
    do { return try Data(contentsOf: URL(fileURLWithPath: path)) }
    catch { throw FileReadFailure(reason: "permission denied or I/O error") }
}
