// Where the default model is found when --model is not given (documented in docs/RUN.md, "Model").
import Foundation

public enum ModelLocator {
    /// File name of the shipped default model.
    public static let defaultFileName = "swin-unet-lits-advmim.segm"

    /// The places searched for the default model, in order:
    ///   1. $SEGMENT_MODEL (a model file path),
    ///   2. models/ of a source checkout, relative to the executable: ../../models (.build/release/segment) and
    ///      ../../../models (.build/<triple>/release/segment, where .build/release links to), only for an executable
    ///      inside a SwiftPM build folder (a path component starting with ".build"),
    ///   3. ../share/segment/models of an installed prefix (PREFIX/bin/segment).
    /// The executable's folder is taken both as invoked (argv[0], symbolic links kept) and resolved (/proc/self/exe).
    public static func candidates(environment: [String: String], executableDirectories: [String]) -> [String] {
        var list: [String] = []
        if let env = environment["SEGMENT_MODEL"], !env.isEmpty { list.append(env) }
        for dir in executableDirectories {
            // An installed PREFIX/bin/segment must not take PREFIX/../models or /models, folders it does not own
            // (a container's /models, say), before its own share/segment/models.
            let built = dir.split(separator: "/").contains { $0.hasPrefix(".build") }
            for rel in (built ? ["../../models", "../../../models"] : []) + ["../share/segment/models"] {
                let p = ((dir as NSString).appendingPathComponent(rel + "/" + defaultFileName) as NSString).standardizingPath
                if !list.contains(p) { list.append(p) }
            }
        }
        return list
    }

    /// The model to use: `explicit` if given (its problems are reported when it is opened), else the first existing
    /// candidate. Throws RunError.modelNotFound (exit 4) listing every searched place.
    public static func resolve(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                               executableDirectories: [String] = executableDirectories()) throws -> String {
        if let explicit { return explicit }
        // A set SEGMENT_MODEL is used even when wrong (opening it then names the problem), never silently skipped.
        if let env = environment["SEGMENT_MODEL"], !env.isEmpty { return env }
        let list = candidates(environment: environment, executableDirectories: executableDirectories)
        if let found = list.first(where: { FileManager.default.fileExists(atPath: $0) }) { return found }
        throw RunError.modelNotFound(searched: list)
    }

    /// The folder of the running executable: as invoked (argv[0], found on PATH if needed) and resolved.
    public static func executableDirectories() -> [String] {
        var dirs: [String] = []
        let argv0 = CommandLine.arguments.first ?? ""
        if argv0.contains("/") {
            dirs.append((absolute(argv0) as NSString).deletingLastPathComponent)
        } else if let path = ProcessInfo.processInfo.environment["PATH"] {
            for d in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(d)/\(argv0)") {
                dirs.append(absolute(String(d))); break
            }
        }
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let d = (exe as NSString).deletingLastPathComponent
            if !dirs.contains(d) { dirs.append(d) }
        }
        return dirs
    }

    private static func absolute(_ p: String) -> String {
        p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
    }
}
