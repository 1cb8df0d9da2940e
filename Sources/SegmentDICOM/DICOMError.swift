// Why a DICOM file or series cannot be segmented: every message names the file (or the series and its folder) and
// the check that failed, and says what to do.
import SegmentCore

public enum DICOMError: SegmentError, Equatable {
    case unreadable(path: String, reason: String)
    case pixels(path: String, reason: String)
    case missingAttribute(path: String, attribute: String)
    case unsupported(path: String, what: String)
    /// A series that fails one of the assembly checks (`check` names it: orientation, spacing, gap, tilt, size...).
    case inconsistentSeries(series: String, check: String, detail: String)
    case noSeries(folder: String)
    case seriesNotFound(uid: String, folder: String, available: [String])

    public var exitCode: ExitStatus {
        switch self {
        case .seriesNotFound: return .usage
        default: return .invalidInput
        }
    }

    public var description: String {
        switch self {
        case let .unreadable(p, reason):
            return "\(p) is not a readable DICOM file: \(reason)."
        case let .pixels(p, reason):
            return "cannot decode the pixel data of \(p): \(reason)."
        case let .missingAttribute(p, a):
            return "\(p) lacks \(a), which segment needs to place its pixels in space."
        case let .unsupported(p, what):
            return "\(p): \(what)."
        case let .inconsistentSeries(s, check, detail):
            return "series \(s) fails the \(check) check: \(detail). Nothing was written for it."
        case .noSeries(let folder):
            return "\(folder) holds no DICOM image series (no DICOM Part 10 file with pixel data was found in it or its subfolders)."
        case let .seriesNotFound(uid, folder, available):
            return "--series \(uid) is not among the series of \(folder): \(available.joined(separator: ", "))."
        }
    }
}
