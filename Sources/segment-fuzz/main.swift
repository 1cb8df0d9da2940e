// segment-fuzz: one libFuzzer target per input parser of segment (fuzz/README.md).
//
// Built with the fuzzing flags of fuzz/run.sh (SEGMENT_FUZZ defined, address sanitizer, coverage, libFuzzer's
// no-main runtime linked) it is a libFuzzer driver:   segment-fuzz TARGET [libFuzzer flags] [CORPUS DIRS]
// Built normally it replays inputs once each:         segment-fuzz replay TARGET FILES-OR-DIRS...
// so the committed corpora and crash regressions run in `make test` without a sanitizer build.
// The target may also come from SEGMENT_FUZZ_TARGET instead of the first argument.
import Foundation

func usage() -> Never {
    let names = FuzzTarget.all.map(\.name).joined(separator: ", ")
    FileHandle.standardError.write(Data("""
        usage: segment-fuzz TARGET [libFuzzer options] [corpus dirs]   (a fuzzing build)
               segment-fuzz replay TARGET FILES-OR-DIRS...              (any build)
               segment-fuzz list
        targets: \(names)

        """.utf8))
    exit(2)
}

func target(named name: String) -> FuzzTarget {
    guard let t = FuzzTarget.named(name) else {
        FileHandle.standardError.write(Data("segment-fuzz: no target \"\(name)\"\n".utf8))
        usage()
    }
    return t
}

/// Files given directly, and every regular file inside given folders (recursively, sorted, README files skipped).
func inputs(_ paths: [String]) -> [String] {
    var out: [String] = []
    for p in paths {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
            FileHandle.standardError.write(Data("segment-fuzz: \(p) does not exist\n".utf8))
            exit(2)
        }
        if !isDir.boolValue { out.append(p); continue }
        let found = (FileManager.default.enumerator(atPath: p)?.allObjects as? [String] ?? []).sorted()
        for rel in found where !rel.hasSuffix("README.md") {
            let full = (p as NSString).appendingPathComponent(rel)
            var sub: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &sub), !sub.boolValue { out.append(full) }
        }
    }
    return out
}

/// Runs each file through the target once. A crash ends the process (that is the failure a test sees); thrown
/// errors are the parsers' normal answer to bad input.
func replay(_ t: FuzzTarget, _ paths: [String]) -> Int32 {
    let files = inputs(paths)
    for f in files {
        guard let data = FileManager.default.contents(atPath: f) else {
            FileHandle.standardError.write(Data("segment-fuzz: cannot read \(f)\n".utf8))
            return 1
        }
        if verbose { FileHandle.standardError.write(Data("\(f)\n".utf8)) }
        data.withUnsafeBytes { t.run($0) }
    }
    print("segment-fuzz replay \(t.name): \(files.count) inputs, no crash")
    return 0
}

var args = Array(CommandLine.arguments.dropFirst())
if args.first == "list" {
    for t in FuzzTarget.all { print("\(t.name)\t\(t.summary)") }
    exit(0)
}
if args.first == "replay" {
    args.removeFirst()
    let t: FuzzTarget
    if let first = args.first, let named = FuzzTarget.named(first) {
        t = named
        args.removeFirst()
    } else if let env = ProcessInfo.processInfo.environment["SEGMENT_FUZZ_TARGET"] {
        t = target(named: env)
    } else {
        usage()
    }
    guard !args.isEmpty else { usage() }
    exit(replay(t, args))
}

#if SEGMENT_FUZZ
let chosen: FuzzTarget
if let first = args.first, let t = FuzzTarget.named(first) {
    chosen = t
    args.removeFirst()
} else if let env = ProcessInfo.processInfo.environment["SEGMENT_FUZZ_TARGET"] {
    chosen = target(named: env)
} else {
    usage()
}
runLibFuzzer(chosen, arguments: args)
#else
FileHandle.standardError.write(Data("segment-fuzz: this build has no fuzzing engine (build it with fuzz/run.sh); only `replay` works\n".utf8))
usage()
#endif
