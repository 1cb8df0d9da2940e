// Which cases a run processes and where each one's outputs go: input discovery (a file or a folder), output naming,
// sharding, and the checks that no output lands on an input. Pure planning: nothing here creates or writes a file.
import Foundation

/// The two image families the tool reads, recognised by file name.
public enum ImageKind: String, Codable, Sendable {
    case nifti, png

    /// Splits a file name into (case name, extension incl. the dot, kind): "liver.nii.gz" -> ("liver", ".nii.gz", .nifti).
    /// Extensions are matched case-insensitively and kept as written. Returns nil for any other file.
    public static func split(_ fileName: String) -> (name: String, ext: String, kind: ImageKind)? {
        let lower = fileName.lowercased()
        for (ext, kind) in [(".nii.gz", ImageKind.nifti), (".nii", .nifti), (".png", .png)] where lower.hasSuffix(ext) {
            let cut = fileName.index(fileName.endIndex, offsetBy: -ext.count)
            let name = String(fileName[..<cut])
            return name.isEmpty ? nil : (name, String(fileName[cut...]), kind)
        }
        return nil
    }
}

/// `--shard i/n`: part i (0-based, as nnU-Net's -part_id) of n of a folder's sorted cases: cases i, i+n, i+2n, ...
public struct Shard: Equatable, Codable, Sendable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 0, index < count else {
            throw RunError.usage("--shard \(index)/\(count) is not a shard: use i/n with n >= 1 and 0 <= i < n (e.g. 0/4 ... 3/4).")
        }
        self.index = index; self.count = count
    }

    /// Parses "i/n".
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw RunError.usage("--shard \(text) is not of the form i/n (e.g. 0/4 ... 3/4: shards are numbered from 0).")
        }
        try self.init(index: i, count: n)
    }

    /// The items of this shard, in their order: items[index], items[index + count], ...
    public func select<T>(_ items: [T]) -> [T] {
        stride(from: index, to: items.count, by: count).map { items[$0] }
    }

    public var description: String { "\(index)/\(count)" }
}

/// Where a case's reference segmentation is (only with --ref).
public enum ReferenceLookup: Equatable, Sendable, Codable {
    case notRequested
    case found(String)
    case missing(folder: String)
}

/// One image to segment and every path it writes.
public struct RunCase: Equatable, Sendable, Codable {
    public let name: String              // file name without its extension: the key for outputs, overlays, references
    public let kind: ImageKind
    public let input: String
    public let output: String            // the mask
    public let probabilities: String?    // --probabilities
    public let reference: ReferenceLookup
}

/// What the planner needs from the options.
public struct PlanRequest: Sendable {
    public var input: String
    public var output: String
    public var probabilities: String?
    public var overlayFolder: String?
    public var reference: String?
    public var report: String?
    public var model: String?
    public var isicNames = false
    public var shard: Shard?

    public init(input: String, output: String) { self.input = input; self.output = output }
}

/// The cases of a run, after sharding.
public struct CasePlan: Equatable, Sendable {
    public let cases: [RunCase]
    /// Cases found before sharding.
    public let discovered: Int
    /// True when the input is a folder.
    public let isFolder: Bool
    /// Folders that receive outputs (masks, probabilities, overlays, report): created by the run, watched for
    /// temporary files by the cleanup guard.
    public let outputFolders: [String]
}

public enum CasePlanner {
    /// Plans a run. Throws RunError (exit 2 for contradictory paths, 3 for a missing or unusable input).
    public static func plan(_ r: PlanRequest, fileManager fm: FileManager = .default) throws -> CasePlan {
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: r.input, isDirectory: &isDir) else { throw RunError.inputMissing(r.input) }
        let folder = isDir.boolValue

        // The inputs, sorted by the bytes of their names (the order of Python's sorted(os.listdir())).
        var inputs: [(path: String, name: String, ext: String, kind: ImageKind)] = []
        if folder {
            let names = try fm.contentsOfDirectory(atPath: r.input)
                .filter { !$0.hasPrefix(".") }
                .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for n in names {
                let path = join(r.input, n)
                var sub: ObjCBool = false
                guard let s = ImageKind.split(n), fm.fileExists(atPath: path, isDirectory: &sub), !sub.boolValue else { continue }
                inputs.append((path, s.name, s.ext, s.kind))
            }
            guard !inputs.isEmpty else { throw RunError.emptyFolder(r.input) }
            var seen: [String: String] = [:]
            for i in inputs {
                if let other = seen[i.name] {
                    throw RunError.usage("\(other) and \(i.path) have the same case name \(i.name): outputs would collide. Move one of them.")
                }
                seen[i.name] = i.path
            }
        } else {
            guard let s = ImageKind.split((r.input as NSString).lastPathComponent) else { throw RunError.unsupportedInput(r.input) }
            inputs = [(r.input, s.name, s.ext, s.kind)]
        }

        if let shard = r.shard, !folder, shard.count > 1 {
            throw RunError.usage("--shard \(shard) splits a folder's cases; \(r.input) is a single file.")
        }
        let selected = (r.shard ?? (try! Shard(index: 0, count: 1))).select(inputs)
        if selected.isEmpty, let shard = r.shard {
            throw RunError.usage("shard \(shard) of \(r.input) is empty: the folder has only \(inputs.count) case(s). Use fewer shards.")
        }

        // Outputs. A folder run writes into folders; a file run writes the named file, or into -o if it is a folder.
        let outputIsFolder = folder || isDirectory(r.output, fm)
        if folder, fm.fileExists(atPath: r.output), !isDirectory(r.output, fm) {
            throw RunError.usage("the input \(r.input) is a folder, so -o must be a folder too, but \(r.output) is a file.")
        }
        let probIsFolder = r.probabilities.map { folder || isDirectory($0, fm) } ?? false
        if folder, let p = r.probabilities, fm.fileExists(atPath: p), !isDirectory(p, fm) {
            throw RunError.usage("the input \(r.input) is a folder, so --probabilities must be a folder too, but \(p) is a file.")
        }
        if let o = r.overlayFolder, fm.fileExists(atPath: o), !isDirectory(o, fm) {
            throw RunError.usage("--overlay \(o) must be a folder, but it is a file.")
        }

        let refIsFolder = r.reference.map { isDirectory($0, fm) } ?? false
        if let ref = r.reference {
            guard fm.fileExists(atPath: ref) else { throw RunError.inputMissing(ref) }
            if folder && !refIsFolder {
                throw RunError.usage("the input \(r.input) is a folder, so --ref must be a folder of references, but \(ref) is a file.")
            }
        }

        var cases: [RunCase] = []
        for i in selected {
            let output: String
            if outputIsFolder {
                output = join(r.output, r.isicNames && i.kind == .png ? i.name + "_segmentation.png" : i.name + i.ext)
            } else {
                output = r.output
                try checkExtension(output, for: i.kind, input: i.path, flag: "-o")
            }
            var probabilities: String?
            if let p = r.probabilities {
                if probIsFolder {
                    probabilities = join(p, i.name + (i.kind == .nifti ? ".nii.gz" : ".npy"))
                } else {
                    let lower = p.lowercased()
                    let ok = lower.hasSuffix(".npy") || (i.kind == .nifti && (lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz")))
                    guard ok else {
                        throw RunError.usage("--probabilities \(p) must end in .npy" + (i.kind == .nifti ? ", .nii or .nii.gz." : " for a PNG input."))
                    }
                    probabilities = p
                }
            }
            var reference = ReferenceLookup.notRequested
            if let ref = r.reference {
                if refIsFolder {
                    let candidates = [".nii.gz", ".nii", ".png", "_segmentation.png"].map { join(ref, i.name + $0) }
                    reference = candidates.first(where: { fm.fileExists(atPath: $0) }).map(ReferenceLookup.found) ?? .missing(folder: ref)
                } else {
                    reference = .found(ref)
                }
            }
            cases.append(RunCase(name: i.name, kind: i.kind, input: i.path, output: output,
                                 probabilities: probabilities, reference: reference))
        }

        // No output may be an input (images, references, the model), and no two outputs may be the same file.
        var readPaths: [String: String] = [:]
        for i in inputs { readPaths[canonical(i.path)] = i.path }
        for c in cases { if case .found(let p) = c.reference { readPaths[canonical(p)] = p } }
        if let m = r.model { readPaths[canonical(m)] = m }
        var written: [String: String] = [:]
        var outputs = cases.flatMap { [$0.output] + ($0.probabilities.map { [$0] } ?? []) }
        if let rep = r.report { outputs.append(rep) }
        for o in outputs {
            let key = canonical(o)
            if let input = readPaths[key] { throw RunError.outputIsInput(output: o, input: input) }
            if let other = written[key] {
                throw RunError.usage("\(o) would be written twice (also as \(other)): give each output its own path.")
            }
            written[key] = o
        }
        if let ov = r.overlayFolder {
            let key = canonical(ov)
            let taken = [folder ? r.input : nil, outputIsFolder ? r.output : nil].compactMap { $0 }
            if let clash = taken.first(where: { canonical($0) == key }) {
                throw RunError.usage("--overlay \(ov) is the folder \(clash): overlays need a folder of their own.")
            }
        }

        var folders: [String] = []
        func addFolder(_ f: String) { if !folders.contains(f) { folders.append(f) } }
        addFolder(outputIsFolder ? r.output : parent(r.output))
        if let p = r.probabilities { addFolder(probIsFolder ? p : parent(p)) }
        if let o = r.overlayFolder { addFolder(o) }
        if let rep = r.report { addFolder(parent(rep)) }
        return CasePlan(cases: cases, discovered: inputs.count, isFolder: folder, outputFolders: folders)
    }

    static func checkExtension(_ path: String, for kind: ImageKind, input: String, flag: String) throws {
        let s = ImageKind.split((path as NSString).lastPathComponent)
        guard let s, s.kind == kind else {
            let want = kind == .nifti ? ".nii or .nii.gz" : ".png"
            throw RunError.usage("\(flag) \(path) must end in \(want) for the input \(input) (or be an existing folder).")
        }
    }

    static func isDirectory(_ path: String, _ fm: FileManager) -> Bool {
        var d: ObjCBool = false
        return fm.fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }

    static func join(_ dir: String, _ name: String) -> String {
        dir.hasSuffix("/") ? dir + name : dir + "/" + name
    }

    static func parent(_ path: String) -> String {
        let p = (path as NSString).deletingLastPathComponent
        return p.isEmpty ? "." : p
    }

    /// An absolute path with symbolic links of its existing part resolved, for comparing paths that may not exist yet.
    static func canonical(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var head = (absolute as NSString).standardizingPath
        var tail: [String] = []
        while true {
            if let r = realpath(head, nil) {
                defer { free(r) }
                let base = String(cString: r)
                return tail.reversed().reduce(base) { $0.hasSuffix("/") ? $0 + $1 : $0 + "/" + $1 }
            }
            let last = (head as NSString).lastPathComponent
            let up = (head as NSString).deletingLastPathComponent
            if up == head || up.isEmpty { return absolute }
            tail.append(last)
            head = up
        }
    }
}
