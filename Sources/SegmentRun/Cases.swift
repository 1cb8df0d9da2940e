// Which cases a run processes and where each one's outputs go: discover the inputs (SegmentCases' rules), take the
// shard, name the outputs, check that no output lands on an input. Pure planning: nothing here creates or writes a
// file.
import Foundation
import SegmentCases
import SegmentDICOM

/// Where a case's reference segmentation is (only with --ref).
public enum ReferenceLookup: Equatable, Sendable, Codable {
    case notRequested
    case found(String)
    case missing(folder: String)
}

/// What a case reads: an image file, or a DICOM series (one file or many).
public enum CaseSource: Equatable, Sendable, Codable {
    case image(CaseFile)
    case series(DICOMSeries)

    /// The case name: the file name without its extension, or the SeriesInstanceUID.
    public var name: String {
        switch self {
        case .image(let f): return f.name
        case .series(let s): return s.seriesInstanceUID
        }
    }

    public var kind: ImageKind {
        switch self {
        case .image(let f): return f.kind
        case .series: return .dicom
        }
    }

    /// The path messages and reports name: the file, or a series' one file or the folder holding its files.
    public var path: String {
        switch self {
        case .image(let f): return f.path
        case .series(let s): return s.files.count == 1 ? s.files[0] : s.folder
        }
    }

    /// Every file the case reads.
    var files: [String] {
        switch self {
        case .image(let f): return [f.path]
        case .series(let s): return s.files
        }
    }
}

/// What a DICOM series' mask is written as (--output-format): NIfTI, or a DICOM Segmentation. A file output's
/// extension decides when the format is not given.
public enum OutputFormat: String, Codable, Sendable, CaseIterable {
    case nifti
    case dicomSeg = "dicom-seg"
}

/// One case to segment and every path it writes.
public struct RunCase: Equatable, Sendable, Codable {
    public let name: String              // the key for outputs, overlays, references
    public let source: CaseSource
    public let output: String            // the mask
    public let probabilities: String?    // --probabilities
    public let reference: ReferenceLookup

    /// The path the case is read from (for messages and reports).
    public var input: String { source.path }
    public var kind: ImageKind { source.kind }
    /// True when the mask is written as a DICOM Segmentation.
    public var writesSEG: Bool { kind == .dicom && output.lowercased().hasSuffix(".dcm") }
}

/// What the planner needs from the options.
public struct PlanRequest: Sendable {
    public var input: String
    public var output: String
    public var probabilities: String?
    public var overlayFolder: String?
    public var reference: String?
    public var report: String?
    /// The HTML page (--html): an output like the report.
    public var html: String?
    public var model: String?
    public var isicNames = false
    public var shard: Shard?
    /// Only this series of a DICOM folder (--series).
    public var series: String?
    /// --output-format; nil: by the output's extension (a folder output: NIfTI).
    public var outputFormat: OutputFormat?

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
    /// Plans a run: discover -> shard -> name -> check. Throws RunError (exit 2 for contradictory paths, 3 for a
    /// missing or unusable input) or CaseListError.
    public static func plan(_ r: PlanRequest, fileManager fm: FileManager = .default) throws -> CasePlan {
        let (inputs, folder) = try discover(r, fm)
        let selected = try shard(inputs, r, folder: folder)
        let (cases, outputIsFolder) = try name(selected, r, folder: folder, fm)
        try check(cases, inputs: inputs, r, folder: folder, outputIsFolder: outputIsFolder)

        var folders: [String] = []
        func addFolder(_ f: String) { if !folders.contains(f) { folders.append(f) } }
        addFolder(outputIsFolder ? r.output : parent(r.output))
        if let p = r.probabilities { addFolder(folder || isDirectory(p, fm) ? p : parent(p)) }
        if let o = r.overlayFolder { addFolder(o) }
        if let rep = r.report { addFolder(parent(rep)) }
        if let page = r.html { addFolder(parent(page)) }
        return CasePlan(cases: cases, discovered: inputs.count, isFolder: folder, outputFolders: folders)
    }

    /// The input's cases in case order: a folder's images (SegmentCases.CaseDiscovery) or, when it holds none, its
    /// DICOM series (SegmentDICOM, subfolders searched); or the one file (an image, or a DICOM file's series).
    /// `folder` is true when the input is a folder of images or of more than one series: outputs then go into folders.
    static func discover(_ r: PlanRequest, _ fm: FileManager) throws -> (inputs: [CaseSource], folder: Bool) {
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: r.input, isDirectory: &isDir) else { throw RunError.inputMissing(r.input) }
        var series: [DICOMSeries]
        if isDir.boolValue {
            let images = try CaseDiscovery.images(in: r.input)
            if !images.isEmpty {
                if r.series != nil { throw RunError.usage("--series picks a DICOM series, but \(r.input) is a folder of NIfTI, PNG or JPEG images.") }
                if r.outputFormat == .dicomSeg { throw RunError.usage("--output-format dicom-seg needs DICOM series as input; \(r.input) holds NIfTI, PNG or JPEG images.") }
                return (images.map(CaseSource.image), true)
            }
            series = try SeriesDiscovery.series(in: r.input)
            guard !series.isEmpty else { throw RunError.emptyFolder(r.input) }
        } else if let file = CaseFile(path: r.input) {
            if r.series != nil { throw RunError.usage("--series picks a DICOM series, but \(r.input) is a \(file.kind.rawValue) file.") }
            if r.outputFormat == .dicomSeg { throw RunError.usage("--output-format dicom-seg needs a DICOM series as input, not \(r.input).") }
            return ([.image(file)], false)
        } else if DICOMFile.isPart10(r.input) {
            series = try SeriesDiscovery.series(ofFile: r.input)
            guard !series.isEmpty else { throw RunError.unsupportedInput(r.input) }
        } else {
            throw RunError.unsupportedInput(r.input)
        }
        if let uid = r.series {
            let all = series.map(\.seriesInstanceUID)
            series = series.filter { $0.seriesInstanceUID == uid }
            if series.isEmpty { throw DICOMError.seriesNotFound(uid: uid, folder: r.input, available: all) }
        }
        return (series.map(CaseSource.series), series.count > 1)
    }

    /// This run's part of the inputs (--shard).
    static func shard(_ inputs: [CaseSource], _ r: PlanRequest, folder: Bool) throws -> [CaseSource] {
        guard let shard = r.shard else { return inputs }
        if !folder && shard.count > 1 {
            throw RunError.usage("--shard \(shard) splits a folder's cases; \(r.input) is a single file.")
        }
        let selected = shard.select(inputs)
        if selected.isEmpty {
            throw RunError.usage("shard \(shard) of \(r.input) is empty: the folder has only \(inputs.count) case(s). Use fewer shards.")
        }
        return selected
    }

    /// Every path each case reads (its reference) and writes (mask, probabilities). A folder run writes into
    /// folders; a file run writes the named file, or into -o if it is a folder.
    static func name(_ selected: [CaseSource], _ r: PlanRequest, folder: Bool, _ fm: FileManager) throws -> (cases: [RunCase], outputIsFolder: Bool) {
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

        let cases = try selected.map { i -> RunCase in
            let output: String
            if outputIsFolder {
                output = join(r.output, maskFileName(i, isicNames: r.isicNames, format: r.outputFormat))
            } else {
                output = r.output
                if i.kind == .dicom {
                    try checkSeriesOutput(output, format: r.outputFormat, input: i.path)
                } else {
                    try checkExtension(output, for: i.kind.maskKind, input: i.path, flag: "-o")
                }
            }
            var probabilities: String?
            if let p = r.probabilities {
                if probIsFolder {
                    probabilities = join(p, i.name + (i.kind.isPicture ? ".npy" : ".nii.gz"))
                } else {
                    let lower = p.lowercased()
                    let ok = lower.hasSuffix(".npy") || (!i.kind.isPicture && (lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz")))
                    guard ok else {
                        throw RunError.usage("--probabilities \(p) must end in .npy" + (i.kind.isPicture ? " for a PNG or JPEG input." : ", .nii or .nii.gz."))
                    }
                    probabilities = p
                }
            }
            var reference = ReferenceLookup.notRequested
            if let ref = r.reference {
                if refIsFolder {
                    let candidates = CaseNames.referenceCandidates(i.name).map { join(ref, $0) }
                    reference = candidates.first(where: { fm.fileExists(atPath: $0) }).map(ReferenceLookup.found) ?? .missing(folder: ref)
                } else {
                    reference = .found(ref)
                }
            }
            return RunCase(name: i.name, source: i, output: output, probabilities: probabilities, reference: reference)
        }
        return (cases, outputIsFolder)
    }

    /// No output may be an input (images, references, the model), and no two outputs may be the same file.
    static func check(_ cases: [RunCase], inputs: [CaseSource], _ r: PlanRequest, folder: Bool, outputIsFolder: Bool) throws {
        var readPaths: [String: String] = [:]
        for i in inputs { for f in i.files { readPaths[canonical(f)] = f } }
        for c in cases { if case .found(let p) = c.reference { readPaths[canonical(p)] = p } }
        if let m = r.model { readPaths[canonical(m)] = m }
        var written: [String: String] = [:]
        var outputs = cases.flatMap { [$0.output] + ($0.probabilities.map { [$0] } ?? []) }
        if let rep = r.report { outputs.append(rep) }
        if let page = r.html { outputs.append(page) }
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
    }

    /// The mask's file name in an output folder: the input's name and extension, except that a JPEG's mask is a PNG
    /// (JPEG is lossy) and --isic-names names a picture's mask NAME_segmentation.png.
    static func maskFileName(_ source: CaseSource, isicNames: Bool, format: OutputFormat?) -> String {
        guard case .image(let i) = source else { return source.name + (format == .dicomSeg ? ".dcm" : ".nii.gz") }
        guard i.kind.isPicture else { return i.name + i.ext }
        if isicNames { return i.name + CaseNames.maskSuffix + ".png" }
        return i.kind == .jpeg ? i.name + ".png" : i.name + i.ext
    }

    /// A series' mask file: .dcm for a DICOM SEG, .nii or .nii.gz for NIfTI, agreeing with --output-format if given.
    static func checkSeriesOutput(_ path: String, format: OutputFormat?, input: String) throws {
        let lower = path.lowercased()
        let byName: OutputFormat? = lower.hasSuffix(".dcm") ? .dicomSeg
            : (lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz")) ? .nifti : nil
        guard let byName else {
            throw RunError.usage("-o \(path) must end in .dcm (a DICOM SEG), .nii or .nii.gz for the DICOM series \(input) (or be an existing folder).")
        }
        if let format, format != byName {
            throw RunError.usage("--output-format \(format.rawValue) contradicts -o \(path); give a \(format == .dicomSeg ? ".dcm" : ".nii.gz") name or drop --output-format.")
        }
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

    static func join(_ dir: String, _ name: String) -> String { CaseDiscovery.join(dir, name) }

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
