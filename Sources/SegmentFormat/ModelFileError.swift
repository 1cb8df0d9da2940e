import SegmentCore

/// Why a model file cannot be used. Every case names the file (and the tensor or key) and says what to do.
/// Exit code 4 (invalid model), except `noSuchTensor`, which is a caller's bug.
public enum ModelFileError: SegmentError, Equatable {
    case unreadable(path: String, reason: String)
    case empty(path: String)
    case badMagic(path: String)
    case unsupportedVersion(path: String, version: UInt32)
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    case trailingBytes(path: String, expectedBytes: Int, actualBytes: Int)
    case checksumMismatch(path: String, stored: String, computed: String)
    case corruptHeader(path: String, reason: String)
    case missingMetadata(path: String, key: String)
    case unknownMetadata(path: String, key: String)
    case badMetadata(path: String, key: String, reason: String)
    case invalidConfig(path: String, problems: [String])
    case unknownDType(path: String, tensor: String, code: UInt32)
    case badByteCount(path: String, tensor: String, shape: [Int], dtype: DType, byteCount: Int)
    case misaligned(path: String, tensor: String, offset: Int)
    case outOfBounds(path: String, tensor: String, offset: Int, byteCount: Int, fileSize: Int)
    case overlapping(path: String, tensor: String, other: String)
    case duplicateTensor(path: String, tensor: String)
    case missingTensor(path: String, tensor: String, expectedShape: [Int])
    case unknownTensor(path: String, tensor: String, shape: [Int])
    case wrongShape(path: String, tensor: String, expected: [Int], found: [Int])
    case nonFinite(path: String, tensor: String, index: Int, value: String)
    case noSuchTensor(path: String, tensor: String)

    public var exitCode: ExitStatus {
        if case .noSuchTensor = self { return .internalError }
        return .invalidModel
    }

    private static let reconvert = "re-convert the checkpoint with `segment convert`"

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read model file \(path): \(reason). Check the path (use --model) and the file's permissions."
        case let .empty(path):
            return "model file \(path) is empty (0 bytes): the copy or the conversion did not finish. Copy it again or \(Self.reconvert)."
        case let .badMagic(path):
            return "\(path) is not a segment model file (it does not start with the bytes \"SEGM\"). If it is a PyTorch checkpoint, convert it first: `segment convert \(path) -o MODEL.segm`."
        case let .unsupportedVersion(path, version):
            return "model file \(path) has format version \(version), but this segment reads version \(ModelFileLayout.version) only. Use a segment release that reads version \(version), or \(Self.reconvert) with this release."
        case let .truncated(path, expected, actual):
            return "model file \(path) is truncated: it has \(actual) bytes but its header says \(expected). Copy it again (the copy or download was cut short) or \(Self.reconvert)."
        case let .trailingBytes(path, expected, actual):
            return "model file \(path) has \(actual) bytes but its header says \(expected): something was appended to it. Copy it again or \(Self.reconvert)."
        case let .checksumMismatch(path, stored, computed):
            return "model file \(path) is corrupt: its checksum is \(computed) but the file records \(stored) (XXH64). Copy it again from its source or \(Self.reconvert)."
        case let .corruptHeader(path, reason):
            return "model file \(path) has a corrupt header: \(reason). \(Self.reconvert.capitalizedFirst)."
        case let .missingMetadata(path, key):
            return "model file \(path) lacks the metadata key \"\(key)\": it was not written by `segment convert`. \(Self.reconvert.capitalizedFirst)."
        case let .unknownMetadata(path, key):
            return "model file \(path) has the metadata key \"\(key)\", which this segment does not know: it was written by a newer release. Upgrade segment, or \(Self.reconvert) with this release."
        case let .badMetadata(path, key, reason):
            return "model file \(path): metadata \"\(key)\" \(reason). \(Self.reconvert.capitalizedFirst)."
        case let .invalidConfig(path, problems):
            return "model file \(path) describes a Swin-UNet that cannot run: \(problems.joined(separator: "; ")). \(Self.reconvert.capitalizedFirst) with the right --img-size/--depths/--heads/--window."
        case let .unknownDType(path, tensor, code):
            return "model file \(path): tensor \(tensor) has the unknown dtype code \(code) (known: 0 f32, 1 f16, 2 bf16). \(Self.reconvert.capitalizedFirst)."
        case let .badByteCount(path, tensor, shape, dtype, byteCount):
            let needed = checkedProduct(shape + [dtype.bytesPerElement]).map { "\($0) bytes" } ?? "more bytes than can be addressed"
            return "model file \(path): tensor \(tensor) of shape \(shape) in \(dtype.rawValue) needs \(needed) but the table says \(byteCount). \(Self.reconvert.capitalizedFirst)."
        case let .misaligned(path, tensor, offset):
            return "model file \(path): tensor \(tensor) starts at byte \(offset), which is not a multiple of \(ModelFileLayout.alignment). \(Self.reconvert.capitalizedFirst)."
        case let .outOfBounds(path, tensor, offset, byteCount, fileSize):
            return "model file \(path): tensor \(tensor) (bytes \(offset)..<\(offset &+ byteCount)) lies outside the tensor data, which ends at byte \(fileSize). Copy the file again or \(Self.reconvert)."
        case let .overlapping(path, tensor, other):
            return "model file \(path): tensors \(other) and \(tensor) overlap in the file. \(Self.reconvert.capitalizedFirst)."
        case let .duplicateTensor(path, tensor):
            return "model file \(path) holds tensor \(tensor) twice. \(Self.reconvert.capitalizedFirst)."
        case let .missingTensor(path, tensor, expected):
            return "model file \(path) lacks tensor \(tensor) (expected shape \(expected)) that its configuration requires. \(Self.reconvert.capitalizedFirst)."
        case let .unknownTensor(path, tensor, shape):
            return "model file \(path) holds tensor \(tensor) (shape \(shape)), which a Swin-UNet of its configuration does not have. \(Self.reconvert.capitalizedFirst)."
        case let .wrongShape(path, tensor, expected, found):
            return "model file \(path): tensor \(tensor) has shape \(found) but its configuration expects \(expected). \(Self.reconvert.capitalizedFirst) (check --embed-dim/--depths/--heads/--window)."
        case let .nonFinite(path, tensor, index, value):
            return "model file \(path): tensor \(tensor) holds \(value) at element \(index); a usable network has finite weights (the training diverged, or the file was altered). Re-train or pick another checkpoint, then \(Self.reconvert)."
        case let .noSuchTensor(path, tensor):
            return "internal error: tensor \(tensor) was requested from model file \(path), which does not hold it. Please report this."
        }
    }
}

/// Why `ModelFileWriter` refuses to write: the tensors or metadata do not make a valid model file.
/// Exit code 3: the checkpoint (or the options) given to the converter do not match the architecture.
public struct ModelWriterError: SegmentError, Equatable {
    public let path: String        // the model file being written ("" before write(to:))
    public let tensor: String      // the tensor or metadata key at fault ("" when none)
    public let reason: String
    public var exitCode: ExitStatus { .invalidInput }
    public var description: String {
        let target = path.isEmpty ? "the model file" : "model file \(path)"
        let subject = tensor.isEmpty ? "" : " (\(tensor))"
        return "cannot write \(target)\(subject): \(reason)."
    }
}

extension String {
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
