// From a checkpoint's state_dict to the Swin-UNet's tensors under model-file names: strip the `module.`
// (DataParallel) and `swin_unet.` prefixes, drop what only training uses (AdvMIM's masked-modelling wrapper), and
// recognise files that are not a Swin-UNet at all.

struct SwinStateDict {
    /// Tensors by stripped name, and the names in checkpoint order.
    var tensors: [String: SourceTensor] = [:]
    var order: [String] = []
    /// The name as saved (with its module./swin_unet. prefixes) of each stripped name, for messages.
    var saved: [String: String] = [:]
    /// Names (as saved) of the training-only tensors dropped.
    var dropped: [String] = []
    /// AdvMIM's mask token (1, L, E), dropped but kept for inferring img_size.
    var maskToken: SourceTensor?

    /// Stripped names of AdvMIM's masked-modelling wrapper that inference never uses (swin-unet.md, "Checkpoints").
    static func isTrainingOnly(_ name: String) -> Bool {
        name == "mask_token" || name == "decoder.weight" || name == "decoder.bias"
            || name.hasPrefix("projection_head.") || name.hasPrefix("prediction_head.")
            || name.hasPrefix("contrastive_class_selector_")
    }

    init(_ checkpoint: Checkpoint) throws {
        let path = checkpoint.path
        for (saved, tensor) in checkpoint.tensors {
            var name = Substring(saved)
            if name.hasPrefix("module.") { name = name.dropFirst("module.".count) }
            if name.hasPrefix("swin_unet.") { name = name.dropFirst("swin_unet.".count) }
            let key = String(name)
            if Self.isTrainingOnly(key) {
                dropped.append(saved)
                if key == "mask_token" { maskToken = tensor }
                continue
            }
            if let other = self.saved[key] { throw ConvertError.duplicateKey(path: path, key: key, sources: [other, saved]) }
            self.saved[key] = saved
            tensors[key] = tensor
            order.append(key)
        }
        guard tensors["patch_embed.proj.weight"] != nil else {
            if order.contains(where: { $0.hasPrefix("encoder.in_conv.") }) {
                throw ConvertError.notSwinUNet(path: path, reason: "its keys (encoder.in_conv..., decoder.up1...) are AdvMIM's CNN branch, which training saves as model2_iter_N.pth and inference does not use. Convert the Swin-UNet's iter_N.pth")
            }
            let first = order.prefix(3).joined(separator: ", ")
            throw ConvertError.notSwinUNet(path: path, reason: "it has no patch_embed.proj.weight (its first keys: \(first.isEmpty ? "none besides training-only ones" : first)). Pass the Swin-UNet's iter_N.pth")
        }
    }
}

/// Edit distance between two names, for "closest expected key" hints.
func levenshtein(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var previous = Array(0...b.count), current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

/// The candidate closest to `name` ("" when there is none). Names come from the file and may be any length, so
/// only names up to `hintLength` bytes are compared: the work stays linear in the number of candidates.
func closest(to name: String, in candidates: [String]) -> String {
    guard name.utf8.count <= hintLength else { return "" }
    return candidates.lazy.filter { $0.utf8.count <= hintLength }.map { ($0, levenshtein(name, $0)) }.min { $0.1 < $1.1 }?.0 ?? ""
}

/// Longer than any Swin-UNet key (the longest are about 60 bytes).
let hintLength = 200
