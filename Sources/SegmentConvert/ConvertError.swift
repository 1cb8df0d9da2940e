// Every way `segment convert` can refuse a checkpoint or its flags, each naming the file (and tensor or key),
// the problem, and what to do next. A hostile, corrupt or unreadable checkpoint is exit 3 (invalid input); a flag
// the checkpoint contradicts, or a value only a flag can give, is exit 2 (usage).
import SegmentCore

public enum ConvertError: SegmentError, Equatable {
    // The file as a whole.
    case unreadable(path: String, reason: String)
    case empty(path: String)
    case notACheckpoint(path: String, reason: String)
    case truncated(path: String, what: String)
    // Containers: zip archive, legacy stream, safetensors header.
    case malformedArchive(path: String, reason: String)
    case compressedEntry(path: String, entry: String, method: Int)
    case checksumMismatch(path: String, entry: String)
    // The pickle.
    case refusedGlobal(path: String, name: String)
    case refusedOpcode(path: String, opcode: String, offset: Int)
    case malformedPickle(path: String, reason: String, offset: Int)
    // Tensors and the state dict.
    case badTensor(path: String, tensor: String, reason: String)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    case nonFinite(path: String, tensor: String, index: [Int], value: String, narrowed: Bool)
    case noStateDict(path: String, reason: String)
    case notSwinUNet(path: String, reason: String)
    case duplicateKey(path: String, key: String, sources: [String])
    case unknownKeys(path: String, keys: [String], closest: [String], total: Int)
    case missingKeys(path: String, keys: [String], closest: [String], total: Int)
    case wrongShape(path: String, key: String, expected: [Int], found: [Int])
    case inconsistent(path: String, reason: String)
    case bufferMismatch(path: String, key: String, reason: String)
    // The configuration: checkpoint against flags.
    case configMismatch(path: String, flag: String, flagValue: String, checkpointValue: String, evidence: String)
    case needsFlag(path: String, flag: String, reason: String)
    case invalidConfig(path: String, problems: [String])
    // Flags against each other (class names, preprocessing).
    case badOption(flag: String, reason: String)
    // The output.
    case outputIsInput(path: String)
    case outputExists(path: String)
    case outputFolder(path: String, reason: String)

    public var exitCode: ExitStatus {
        switch self {
        case .configMismatch, .needsFlag, .badOption, .outputIsInput: return .usage   // README: an output equal to an input
        case .outputExists, .outputFolder: return .outputNotWritable
        default: return .invalidInput
        }
    }

    static let resave = "re-save it from PyTorch with torch.save(model.state_dict(), PATH)"

    public var description: String {
        func shape(_ s: [Int]) -> String { "(" + s.map(String.init).joined(separator: ", ") + (s.count == 1 ? ",)" : ")") }
        func listed(_ keys: [String], _ closest: [String], _ total: Int, _ hintWord: String) -> String {
            var parts: [String] = []
            for (k, c) in zip(keys, closest) { parts.append(c.isEmpty ? shown(k) : "\(shown(k)) (\(hintWord) \(c))") }
            let more = total > keys.count ? " and \(total - keys.count) more" : ""
            return parts.joined(separator: ", ") + more
        }
        switch self {
        case let .unreadable(path, reason):
            return "cannot read checkpoint \(path): \(reason). Check the path and its permissions."
        case let .empty(path):
            return "checkpoint \(path) is empty (0 bytes). The copy or download was probably interrupted: fetch it again."
        case let .notACheckpoint(path, reason):
            return "\(path) is not a PyTorch checkpoint (.pth zip or legacy pickle) or a .safetensors file: \(reason). Pass the iter_N.pth that training wrote."
        case let .truncated(path, what):
            return "checkpoint \(path) is truncated: \(what). The copy or download was probably interrupted: fetch it again."
        case let .malformedArchive(path, reason):
            return "checkpoint \(path) is corrupt: \(reason). Fetch it again, or \(Self.resave)."
        case let .compressedEntry(path, entry, method):
            return "checkpoint \(path): zip entry \(entry) is compressed (method \(method)); PyTorch stores checkpoint entries uncompressed. Do not re-zip a .pth: \(Self.resave)."
        case let .checksumMismatch(path, entry):
            return "checkpoint \(path): zip entry \(entry) fails its CRC-32 check, so its bytes are corrupt. Fetch the file again."
        case let .refusedGlobal(path, name):
            var hint = "convert reads only state_dicts of tensors and never runs code from a checkpoint"
            if name.hasPrefix("__torch__") { hint += "; this looks like a TorchScript archive (torch.jit.save)" }
            return "checkpoint \(path) refers to the Python global \(shown(name)), which a state_dict does not need: refusing it (\(hint)). If you trust the file, \(Self.resave)."
        case let .refusedOpcode(path, opcode, offset):
            return "checkpoint \(path): the pickle uses opcode \(opcode) at byte \(offset), which a state_dict does not need: refusing it. If you trust the file, \(Self.resave)."
        case let .malformedPickle(path, reason, offset):
            return "checkpoint \(path): invalid pickle at byte \(offset): \(reason). Fetch the file again, or \(Self.resave)."
        case let .badTensor(path, tensor, reason):
            return "checkpoint \(path): tensor \(shown(tensor)) \(reason). Fetch the file again, or \(Self.resave)."
        case let .unsupportedDType(path, tensor, dtype):
            return "checkpoint \(path): tensor \(shown(tensor)) has dtype \(shown(dtype)); convert reads float32, float16, bfloat16, float64 and int64. Cast the model with model.float() and re-save it."
        case let .nonFinite(path, tensor, index, value, narrowed):
            let at = "[" + index.map(String.init).joined(separator: ", ") + "]"
            let what = narrowed ? "\(value) at \(at), beyond the range of float32 (3.4e38), so a model cannot hold it" : "\(value) at \(at); a model's weights must be finite"
            return "checkpoint \(path): tensor \(shown(tensor)) holds \(what). Training diverged or the file is damaged: convert an earlier checkpoint (an iter_N.pth saved before the loss became NaN), or fetch the file again."
        case let .noStateDict(path, reason):
            return "checkpoint \(path) holds no Swin-UNet state_dict: \(reason). Save it with torch.save(model.state_dict(), PATH) (a dict with the state_dict under \"model\" or \"state_dict\" works too)."
        case let .notSwinUNet(path, reason):
            return "checkpoint \(path) is not a Swin-UNet: \(reason)."
        case let .duplicateKey(path, key, sources):
            return "checkpoint \(path): keys \(sources.map(shown).joined(separator: " and ")) both name \(shown(key)) once the module./swin_unet. prefixes are removed. Keep one of them and re-save."
        case let .unknownKeys(path, keys, closest, total):
            return "checkpoint \(path) has \(total) key(s) a Swin-UNet of its inferred configuration does not have: \(listed(keys, closest, total, "closest expected:")). Check it is the Swin-UNet's checkpoint and that --depths/--heads/--img-size are right."
        case let .missingKeys(path, keys, closest, total):
            return "checkpoint \(path) lacks \(total) key(s) a Swin-UNet of its inferred configuration needs: \(listed(keys, closest, total, "closest present:")). Check it is the Swin-UNet's checkpoint and that --depths/--heads are right."
        case let .wrongShape(path, key, expected, found):
            return "checkpoint \(path): \(key) has shape \(shape(found)) but its configuration needs \(shape(expected)). Check --embed-dim/--depths/--heads/--window/--img-size, or the checkpoint is not a Swin-UNet of this family."
        case let .inconsistent(path, reason):
            return "checkpoint \(path) contradicts itself: \(reason). It was not saved by an unmodified Swin-UNet; re-save it from the model."
        case let .bufferMismatch(path, key, reason):
            return "checkpoint \(path): buffer \(key) \(reason); the engine recomputes this buffer from its definition, so the checkpoint was trained with a different geometry or was tampered with. Refusing it."
        case let .configMismatch(path, flag, flagValue, checkpointValue, evidence):
            return "\(flag) \(flagValue) contradicts checkpoint \(path), which has \(checkpointValue) (\(evidence)). Drop the flag, or pass the checkpoint that was trained with \(flag) \(flagValue)."
        case let .needsFlag(path, flag, reason):
            return "cannot infer the configuration of checkpoint \(path): \(reason). Pass \(flag)."
        case let .invalidConfig(path, problems):
            return "checkpoint \(path) gives a Swin-UNet configuration the engine cannot run: \(problems.joined(separator: "; "))."
        case let .badOption(flag, reason):
            return "\(flag): \(reason)."
        case let .outputIsInput(path):
            return "output \(path) is the checkpoint itself: convert never modifies its input. Choose another output path."
        case let .outputExists(path):
            return "output \(path) exists: pass --overwrite to replace it, or choose another path."
        case let .outputFolder(path, reason):
            return "cannot write output \(path): \(reason). Create the folder or choose another output path."
        }
    }
}

/// A name from the file as a message shows it: names can be any length, so long ones are cut (a Swin-UNet key is
/// about 60 bytes).
func shown(_ name: String) -> String {
    let limit = 120
    guard name.count > limit else { return name }
    return name.prefix(limit) + "... (\(name.utf8.count) bytes)"
}
