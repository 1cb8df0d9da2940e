// The cases of a run or of a scoring, as files: which files are images, what each case is called, the order cases
// are taken in, and where a case's reference is. One set of rules for `segment run` and `segment score`.
import Foundation
import SegmentCore

/// The image families the tool reads: NIfTI, PNG and JPEG recognised by file name; DICOM by content (the "DICM"
/// preamble), since DICOM files often have no extension.
public enum ImageKind: String, Codable, Sendable {
    case nifti, png, jpeg, dicom

    /// Image extensions, longest first; matched case-insensitively and kept as written.
    static let extensions: [(ext: String, kind: ImageKind)] = [
        (".nii.gz", .nifti), (".nii", .nifti), (".jpeg", .jpeg), (".png", .png), (".jpg", .jpeg),
    ]

    /// The kinds a mask or reference may be: JPEG is lossy, so a JPEG's values are not the labels that were written.
    public static let labelKinds: Set<ImageKind> = [.nifti, .png]

    /// A 2D picture (PNG or JPEG) rather than a volume.
    public var isPicture: Bool { self == .png || self == .jpeg }

    /// The kind of the mask written for an input of this kind: a JPEG's mask is a PNG; a DICOM series' is NIfTI
    /// unless a DICOM SEG is asked for.
    public var maskKind: ImageKind {
        switch self {
        case .jpeg: return .png
        case .dicom: return .nifti
        default: return self
        }
    }

    /// Splits a file name into (case name, extension incl. the dot, kind): "liver.nii.gz" -> ("liver", ".nii.gz", .nifti).
    /// Returns nil for any other file, and for a name that is only an extension.
    public static func split(_ fileName: String) -> (name: String, ext: String, kind: ImageKind)? {
        let lower = fileName.lowercased()
        for (ext, kind) in extensions where lower.hasSuffix(ext) {
            let cut = fileName.index(fileName.endIndex, offsetBy: -ext.count)
            let name = String(fileName[..<cut])
            return name.isEmpty ? nil : (name, String(fileName[cut...]), kind)
        }
        return nil
    }
}

/// An image file of a case.
public struct CaseFile: Equatable, Sendable, Codable {
    public let path: String
    /// The file name without its extension: the key for outputs, overlays and references.
    public let name: String
    /// The extension as written (".nii.gz", ".NII", ".png", ".JPG").
    public let ext: String
    public let kind: ImageKind

    public init?(path: String) {
        guard let s = ImageKind.split((path as NSString).lastPathComponent) else { return nil }
        self.path = path; name = s.name; ext = s.ext; kind = s.kind
    }

    /// The case this file is the mask or reference of: its name without ISIC's `_segmentation` suffix, so
    /// ISIC_x_segmentation.png belongs to case ISIC_x.
    public var maskCaseName: String { CaseNames.withoutMaskSuffix(name) }
}

public enum CaseNames {
    /// ISIC's suffix of mask files.
    public static let maskSuffix = "_segmentation"

    public static func withoutMaskSuffix(_ name: String) -> String {
        name.hasSuffix(maskSuffix) && name.count > maskSuffix.count ? String(name.dropLast(maskSuffix.count)) : name
    }

    /// The case name of a mask or reference file path: "a/ISIC_1_segmentation.png" -> "ISIC_1", "b/c.nii.gz" -> "c".
    public static func ofMask(_ path: String) -> String {
        CaseFile(path: path)?.maskCaseName ?? (path as NSString).lastPathComponent
    }

    /// The one order of cases: by the bytes of their names (Python's `sorted(os.listdir())`).
    public static func inOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// The file names a reference of case `name` may have in a reference folder, in the order they are tried.
    public static func referenceCandidates(_ name: String) -> [String] {
        [".nii.gz", ".nii", ".png", maskSuffix + ".png"].map { name + $0 }
    }
}

/// Why a folder's cases cannot be listed.
public enum CaseListError: SegmentError, Equatable {
    case missing(String)
    case unreadableFolder(String, reason: String)
    case noImages(String)
    case sameName(name: String, first: String, second: String)

    public var exitCode: ExitStatus {
        switch self {
        case .sameName: return .usage
        default: return .invalidInput
        }
    }

    public var description: String {
        switch self {
        case .missing(let p):
            return "\(p) does not exist. Check the path."
        case let .unreadableFolder(p, reason):
            return "cannot list the folder \(p): \(reason). Check its permissions."
        case .noImages(let p):
            return "folder \(p) holds no .nii, .nii.gz, .png, .jpg or .jpeg file (subfolders and hidden files are not searched)."
        case let .sameName(name, first, second):
            return "\(first) and \(second) have the same case name \(name): their outputs and scores would collide. Move one of them."
        }
    }
}

public enum CaseDiscovery {
    /// The images directly inside `folder` (not recursive; hidden files, subfolders and other files skipped), in
    /// case order. `name` gives each file's case name (its name, or its mask case name for masks); two files of
    /// one case name are refused. Files of other `kinds` are skipped (masks: ImageKind.labelKinds).
    public static func images(in folder: String, caseName name: (CaseFile) -> String = \.name,
                              kinds: Set<ImageKind> = [.nifti, .png, .jpeg]) throws -> [CaseFile] {
        let fm = FileManager.default
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: folder) }
        catch { throw CaseListError.unreadableFolder(folder, reason: error.localizedDescription) }
        var files: [CaseFile] = []
        for n in names where !n.hasPrefix(".") {
            let path = join(folder, n)
            var isDir: ObjCBool = false
            guard let f = CaseFile(path: path), kinds.contains(f.kind), fm.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else { continue }
            files.append(f)
        }
        // Case order; two files of one case name (refused below) in the order of their file names.
        files.sort { a, b in
            let (x, y) = (name(a), name(b))
            return x == y ? CaseNames.inOrder(a.name + a.ext, b.name + b.ext) : CaseNames.inOrder(x, y)
        }
        var seen: [String: String] = [:]
        for f in files {
            if let other = seen[name(f)] { throw CaseListError.sameName(name: name(f), first: other, second: f.path) }
            seen[name(f)] = f.path
        }
        return files
    }

    /// `dir/name`, with one slash.
    public static func join(_ dir: String, _ name: String) -> String {
        dir.hasSuffix("/") ? dir + name : dir + "/" + name
    }
}
