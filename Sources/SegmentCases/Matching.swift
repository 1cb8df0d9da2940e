// The cases of a scoring: predictions paired with references by case name, from two folders, two files, or a
// CSV list of pairs.
import Foundation
import SegmentCore

/// One case to score: a reference image and the prediction that should match it.
public struct ScorePair: Equatable, Sendable {
    public var name: String
    public var predictionFile: String
    public var referenceFile: String
    public init(name: String, predictionFile: String, referenceFile: String) {
        self.name = name; self.predictionFile = predictionFile; self.referenceFile = referenceFile
    }
}

/// Problems with the inputs of a scoring run as a whole (not of one case).
public enum MatchingError: SegmentError, Equatable {
    case notFound(path: String)
    case noImages(folder: String)
    case mixedArguments(problem: String)
    case duplicateCase(name: String, first: String, second: String)
    case invalidPairs(path: String, problem: String)

    public var exitCode: ExitStatus {
        switch self {
        case .mixedArguments: return .usage
        default: return .invalidInput
        }
    }
    public var description: String {
        switch self {
        case let .notFound(path):
            return "\(path) does not exist. Give an existing image file or folder."
        case let .noImages(folder):
            return "\(folder) holds no .nii, .nii.gz or .png file. Give the folder of the reference label images."
        case let .mixedArguments(problem):
            return problem
        case let .duplicateCase(name, first, second):
            return "\(first) and \(second) both give case name \(name). Keep one of them, or list the pairs with --pairs."
        case let .invalidPairs(path, problem):
            return "\(path): \(problem). A pairs file is CSV with a header naming the columns prediction and reference "
                + "(and optionally case); relative paths are relative to the file's folder."
        }
    }
}

/// The pairing of prediction and reference files by case name (CaseNames.ofMask: ISIC's `_segmentation` suffix
/// dropped, so CASE.nii.gz matches CASE.nii and ISIC_x.png matches ISIC_x_segmentation.png).
public enum CaseMatching {
    /// The images of a folder by case name.
    static func images(in folder: String) throws -> [String: String] {
        let files = try CaseDiscovery.images(in: folder, caseName: \.maskCaseName, kinds: ImageKind.labelKinds)
        return Dictionary(uniqueKeysWithValues: files.map { ($0.maskCaseName, $0.path) })
    }

    static func isDirectory(_ path: String) throws -> Bool {
        var dir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &dir) else { throw MatchingError.notFound(path: path) }
        return dir.boolValue
    }

    /// Pairs from a prediction and a reference that are both files or both folders. For folders every reference
    /// is a case (its prediction may be missing: the file named there does not exist); predictions matching no
    /// reference are returned apart.
    public static func pairs(prediction: String, reference: String) throws -> (pairs: [ScorePair], unmatched: [String]) {
        let refIsDir = try isDirectory(reference)
        if !refIsDir {
            guard (try? isDirectory(prediction)) != true else {
                throw MatchingError.mixedArguments(problem: "--pred \(prediction) is a folder but --ref \(reference) is a file. Give two files or two folders.")
            }
            return ([ScorePair(name: CaseNames.ofMask(reference), predictionFile: prediction, referenceFile: reference)], [])
        }
        guard try isDirectory(prediction) else {
            throw MatchingError.mixedArguments(problem: "--ref \(reference) is a folder but --pred \(prediction) is a file. Give two files or two folders.")
        }
        let refs = try images(in: reference)
        guard !refs.isEmpty else { throw MatchingError.noImages(folder: reference) }
        let preds = try images(in: prediction)
        let pairs = refs.keys.sorted(by: CaseNames.inOrder).map { name in
            // a missing prediction keeps the name it would have had, for the report
            ScorePair(name: name, predictionFile: preds[name] ?? (prediction as NSString).appendingPathComponent(
                (refs[name]! as NSString).lastPathComponent), referenceFile: refs[name]!)
        }
        return (pairs, preds.filter { refs[$0.key] == nil }.values.sorted())
    }

    /// Pairs listed in a CSV file with a header naming the columns `prediction` and `reference` (any order; an
    /// optional `case` column names the case, else the reference's case name). Relative paths are relative to the
    /// CSV file's folder.
    public static func pairs(csvFile path: String) throws -> [ScorePair] {
        guard FileManager.default.fileExists(atPath: path) else { throw MatchingError.notFound(path: path) }
        let data: Data
        do { data = try readWholeFile(path, maxBytes: 1 << 30) }
        catch let f as FileReadFailure { throw MatchingError.invalidPairs(path: path, problem: f.reason) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw MatchingError.invalidPairs(path: path, problem: "not readable UTF-8 text")
        }
        let rows = text.split(whereSeparator: \.isNewline).map { parseCSVLine(String($0)) }
            .filter { !($0.count == 1 && $0[0].trimmingCharacters(in: .whitespaces).isEmpty) }
        guard let header = rows.first?.map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }),
              let p = header.firstIndex(of: "prediction"), let r = header.firstIndex(of: "reference") else {
            throw MatchingError.invalidPairs(path: path, problem: "the first line must name the columns prediction and reference")
        }
        let c = header.firstIndex(of: "case")
        let folder = (path as NSString).deletingLastPathComponent
        func resolve(_ s: String) -> String {
            let t = s.trimmingCharacters(in: .whitespaces)
            return t.hasPrefix("/") ? t : (folder as NSString).appendingPathComponent(t)
        }
        var seen: [String: String] = [:]
        var pairs: [ScorePair] = []
        for (i, row) in rows.dropFirst().enumerated() {
            guard row.count > max(p, r, c ?? 0), !row[p].isEmpty, !row[r].isEmpty else {
                throw MatchingError.invalidPairs(path: path, problem: "line \(i + 2) does not have a prediction and a reference")
            }
            let pair = ScorePair(name: c.map { row[$0].trimmingCharacters(in: .whitespaces) } ?? CaseNames.ofMask(row[r]),
                                 predictionFile: resolve(row[p]), referenceFile: resolve(row[r]))
            if let other = seen[pair.name] { throw MatchingError.duplicateCase(name: pair.name, first: other, second: pair.referenceFile) }
            seen[pair.name] = pair.referenceFile
            pairs.append(pair)
        }
        guard !pairs.isEmpty else { throw MatchingError.invalidPairs(path: path, problem: "it lists no pair") }
        return pairs
    }

    /// Splits one CSV line (RFC 4180 quoting; no newlines inside fields).
    static func parseCSVLine(_ line: String) -> [String] {
        let chars = Array(line)
        var fields: [String] = [], field = "", quoted = false, i = 0
        while i < chars.count {
            let ch = chars[i]
            if quoted && ch == "\"" {
                if i + 1 < chars.count && chars[i + 1] == "\"" { field.append("\""); i += 1 }   // "" inside quotes
                else { quoted = false }
            } else if quoted { field.append(ch) }
            else if ch == "\"" { quoted = true }
            else if ch == "," { fields.append(field); field = "" }
            else if ch != "\r" { field.append(ch) }
            i += 1
        }
        fields.append(field)
        return fields
    }
}
