// The user-facing errors of image I/O (NIfTI, PNG, .npy) and of orientation.
import SegmentCore

/// Everything that can go wrong reading or writing an image. Each case names the file and the problem;
/// `description` adds what to do next. Reading problems exit with 3 (invalid input), writing problems with 5.
public enum ImagingError: SegmentError, Equatable {
    /// The file cannot be opened or read at all (missing, permissions, I/O error).
    case unreadable(path: String, reason: String)
    /// The file is not a NIfTI-1/NIfTI-2 single file (.nii / .nii.gz), or its header is invalid.
    case invalidNIfTI(path: String, problem: String)
    /// The file holds fewer data bytes than its header announces.
    case truncated(path: String, problem: String)
    /// A NIfTI datatype this tool does not read (complex, RGB, float128, binary).
    case unsupportedDatatype(path: String, datatype: String)
    /// A true 4D volume (dim[4] > 1) was given without choosing one of its volumes.
    case needsVolumeIndex(path: String, volumes: Int)
    /// The chosen volume index is not in 0..<volumes.
    case volumeIndexOutOfRange(path: String, index: Int, volumes: Int)
    /// A label image holds a value that is not a non-negative integer in range.
    case notALabelImage(path: String, problem: String)
    /// The file is not a PNG libpng can decode.
    case invalidPNG(path: String, problem: String)
    /// The file is not a JPEG this tool decodes (corrupt, truncated, CMYK, too large for its bytes).
    case invalidJPEG(path: String, problem: String)
    /// The volume's affine does not define an orientation (degenerate axes), or an orientation code is invalid.
    case invalidOrientation(path: String, problem: String)
    /// An output cannot be written (nothing half-written is left behind).
    case notWritable(path: String, reason: String)

    public var exitCode: ExitStatus {
        switch self {
        case .notWritable: return .outputNotWritable
        default: return .invalidInput
        }
    }

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason). Check the path exists and is readable."
        case let .invalidNIfTI(path, problem):
            return "\(path) is not a valid NIfTI file: \(problem). Give a NIfTI-1 or NIfTI-2 single file (.nii or .nii.gz)."
        case let .truncated(path, problem):
            return "\(path) is truncated: \(problem). Copy or export the file again."
        case let .unsupportedDatatype(path, datatype):
            return "\(path) stores \(datatype) voxels, which this tool does not read. Convert it to a scalar type (e.g. int16 or float32) first."
        case let .needsVolumeIndex(path, volumes):
            return "\(path) is a 4D image with \(volumes) volumes. Segment one of them with `segment run --volume K` (0-based), or split it into 3D files first."
        case let .volumeIndexOutOfRange(path, index, volumes):
            return "\(path) has \(volumes) volume(s); volume \(index) does not exist. Choose --volume between 0 and \(volumes - 1)."
        case let .notALabelImage(path, problem):
            return "\(path) is not a label image: \(problem). Give an integer mask (labels 0, 1, 2, ...)."
        case let .invalidPNG(path, problem):
            return "\(path) is not a readable PNG: \(problem). Export the image again as PNG."
        case let .invalidJPEG(path, problem):
            return "\(path) is not a readable JPEG: \(problem). Export the image again as JPEG or PNG."
        case let .invalidOrientation(path, problem):
            return "\(path): cannot determine the orientation: \(problem). Fix the header's qform/sform (e.g. with nibabel) first."
        case let .notWritable(path, reason):
            return "cannot write \(path): \(reason). Check the folder exists and is writable, and there is free space."
        }
    }
}
