// What a fuzz target is, and the scratch files of the parsers that take a path.
import Foundation
import SegmentCore

/// One parser under test. `run` feeds it the bytes; it must return normally for any input (a thrown error is the
/// parser refusing the input, which is fine). A crash, a sanitizer report, a leak, a hang or a huge allocation
/// is a finding.
struct FuzzTarget {
    let name: String
    let summary: String
    let run: (UnsafeRawBufferPointer) -> Void

    static let all: [FuzzTarget] = [nifti, niftiGz, png, model, pickle, zip, safetensors, labels, dicom]

    static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// The memory budget every read is given: small enough that a header declaring a large image is refused by the
/// product's own check well inside libFuzzer's -rss_limit_mb / -malloc_limit_mb of 2048 (with the sanitizer's
/// overhead on top).
let fuzzBudget = MemoryBudget(bytes: 256 << 20)

/// A private folder for this process's scratch files, removed at exit.
let scratchFolder: String = {
    let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
    var template = Array("\(base)/segment-fuzz.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { fatalError("segment-fuzz: cannot make a scratch folder in \(base)") }
    let path = String(cString: made)
    atexit { _ = try? FileManager.default.removeItem(atPath: scratchFolder) }
    return path
}()

/// Writes `bytes` to a scratch file called `name`, runs `body` on its path and removes the file.
func withScratchFile(_ name: String, _ bytes: UnsafeRawBufferPointer, _ body: (String) -> Void) {
    let path = scratchFolder + "/" + name
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { fatalError("segment-fuzz: cannot write \(path): \(String(cString: strerror(errno)))") }
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        guard n > 0 else { fatalError("segment-fuzz: cannot write \(path): \(String(cString: strerror(errno)))") }
        done += n
    }
    close(fd)
    defer { unlink(path) }
    body(path)
}

/// Runs a parser step whose errors are expected answers; returns its value, or nil when it threw. The error's
/// message is rendered too: messages format numbers taken from the input, and must not crash either.
@discardableResult
func attempt<T>(_ body: () throws -> T) -> T? {
    do { return try body() } catch {
        let message = String(describing: error)
        if verbose { FileHandle.standardError.write(Data("  refused: \(message)\n".utf8)) }
        sink(message.utf8.count)
        return nil
    }
}

/// SEGMENT_FUZZ_VERBOSE=1: print every refusal (to check that seeds get as far as they should).
let verbose = ProcessInfo.processInfo.environment["SEGMENT_FUZZ_VERBOSE"] == "1"

/// Keeps a computed value alive so that the optimiser cannot drop the work that produced it.
@inline(never)
func sink<T>(_ value: T) { withExtendedLifetime(value) {} }
