// The run pipeline's user-facing errors. Each names the file and says what to do next; its exit code follows the
// table of SegmentCore.ExitStatus.
import SegmentCore

public enum RunError: SegmentError, Equatable {
    /// Bad or contradictory options (exit 2).
    case usage(String)
    /// An output path equals an input path (exit 2): inputs are never modified.
    case outputIsInput(output: String, input: String)
    /// The input path does not exist (exit 3).
    case inputMissing(String)
    /// The input is not a NIfTI, PNG or JPEG file by name (exit 3).
    case unsupportedInput(String)
    /// A folder holds no .nii / .nii.gz / .png / .jpg / .jpeg file (exit 3).
    case emptyFolder(String)
    /// No model given and the default model was not found in any of the searched places (exit 4).
    case modelNotFound(searched: [String])
    /// The model file is valid but asks for something this tool cannot do (exit 4).
    case unsupportedModel(path: String, reason: String)
    /// The output exists and neither --continue nor --overwrite was given (exit 5).
    case outputExists(String)
    /// An output folder cannot be created (exit 5).
    case cannotCreateFolder(String, reason: String)
    /// A file given to --merge-reports is not a run report (exit 3).
    case notARunReport(String, reason: String)
    /// A reference given with --ref is not on the input's grid (exit 3).
    case referenceGrid(input: String, reference: String, problem: String)
    /// A reference given with --ref is missing for a case (exit 3).
    case referenceMissing(caseName: String, folder: String)
    /// Something of the run's own machinery failed (exit 1): a bug or a broken system.
    case internalFailure(String)

    public var exitCode: ExitStatus {
        switch self {
        case .usage, .outputIsInput: return .usage
        case .inputMissing, .unsupportedInput, .emptyFolder, .referenceMissing, .referenceGrid, .notARunReport: return .invalidInput
        case .modelNotFound, .unsupportedModel: return .invalidModel
        case .outputExists, .cannotCreateFolder: return .outputNotWritable
        case .internalFailure: return .internalError
        }
    }

    public var description: String {
        switch self {
        case .usage(let m):
            return m
        case .outputIsInput(let output, let input):
            return "output \(output) is the input \(input): inputs are never overwritten. Choose another output path (-o)."
        case .inputMissing(let p):
            return "input \(p) does not exist. Check the path."
        case .unsupportedInput(let p):
            return "input \(p) is not a NIfTI (.nii, .nii.gz), PNG (.png), JPEG (.jpg, .jpeg) or DICOM Part 10 file. Convert it, or pass a folder of such files or a DICOM series folder."
        case .emptyFolder(let p):
            return "folder \(p) holds no .nii, .nii.gz, .png, .jpg or .jpeg file (subfolders and hidden files are not searched for these) and no DICOM image series (searched in subfolders too)."
        case .modelNotFound(let searched):
            return "no model given and the default model was not found; looked in: \(searched.joined(separator: ", ")). "
                + "Pass --model PATH, set SEGMENT_MODEL, or install the default model (see docs/RUN.md, \"Model\")."
        case .unsupportedModel(let path, let reason):
            return "model \(path) cannot be used: \(reason). Re-convert the checkpoint with supported settings (`segment convert`)."
        case .outputExists(let p):
            return "output \(p) exists. Pass --continue to skip finished cases or --overwrite to replace them."
        case .cannotCreateFolder(let p, let reason):
            return "cannot create the output folder \(p): \(reason). Check the parent folder exists and is writable."
        case .notARunReport(let p, let reason):
            return "\(p) is not a run report of `segment run --report` (\(reason)). Give the reports the shards wrote."
        case .referenceGrid(let input, let reference, let problem):
            return "reference \(reference) is not on the grid of \(input) (\(problem)): give the reference segmentation of this image."
        case .internalFailure(let m):
            return "internal error: \(m). Please report it with the command line."
        case .referenceMissing(let name, let folder):
            return "no reference for case \(name) in \(folder) (looked for \(name).nii.gz, \(name).nii, \(name).png, "
                + "\(name)_segmentation.png). Add it, or run without --ref."
        }
    }
}
