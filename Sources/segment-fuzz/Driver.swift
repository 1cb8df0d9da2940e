// The libFuzzer side: only in a fuzzing build, where libFuzzer's no-main runtime provides LLVMFuzzerRunDriver.
#if SEGMENT_FUZZ
import Foundation

typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: FuzzCallback) -> Int32

/// The target libFuzzer's callback runs (a C callback cannot capture it).
nonisolated(unsafe) var activeTarget: FuzzTarget?

func runLibFuzzer(_ t: FuzzTarget, arguments: [String]) -> Never {
    activeTarget = t
    // libFuzzer parses argv itself; argv[0] is kept so that it can re-run itself (-fork, -merge).
    let argv0 = CommandLine.arguments[0]
    var cStrings: [UnsafeMutablePointer<CChar>?] = ([argv0] + arguments).map { strdup($0) } + [nil]
    var argc = Int32(arguments.count + 1)
    let status = cStrings.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var argv = buffer.baseAddress!
        return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            activeTarget!.run(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }
    }
    exit(status)
}
#endif
