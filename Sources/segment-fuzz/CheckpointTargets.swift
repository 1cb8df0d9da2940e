// PyTorch checkpoints as `segment convert` reads them: Checkpoint.open recognises the container by its bytes, so
// each target keeps only inputs of its own container (the others are another target's job), then runs what
// convert does short of writing: every tensor's values, the state_dict's Swin-UNet config and tensor checks.
import SegmentConvert

extension FuzzTarget {
    /// PyTorch's legacy format: a sequence of pickles (magic, protocol, sys_info, the object, storage keys) and raw
    /// storages. Inputs must start with a pickle's PROTO opcode (0x80), as Checkpoint.open requires.
    static let pickle = FuzzTarget(name: "pickle", summary: "legacy PyTorch checkpoint (pickles + storages)") { bytes in
        guard bytes.first == 0x80 else { return }
        withScratchFile("legacy.pth", bytes) { openCheckpoint($0) }
    }

    /// torch.save's zip archive (ARCHIVE/data.pkl, ARCHIVE/data/KEY, zip64 too).
    static let zip = FuzzTarget(name: "zip", summary: "PyTorch zip checkpoint (torch.save)") { bytes in
        guard bytes.count >= 4, bytes[0] == 0x50, bytes[1] == 0x4B, bytes[2] == 3, bytes[3] == 4 else { return }
        withScratchFile("archive.pth", bytes) { openCheckpoint($0) }
    }

    /// safetensors: a u64 header length, a JSON header, the data.
    static let safetensors = FuzzTarget(name: "safetensors", summary: "safetensors checkpoint") { bytes in
        guard bytes.count >= 9, bytes[8] == UInt8(ascii: "{"), !(bytes[0] == 0x50 && bytes[1] == 0x4B), bytes[0] != 0x80 else { return }
        withScratchFile("weights.safetensors", bytes) { openCheckpoint($0) }
    }
}

func openCheckpoint(_ path: String) {
    guard let checkpoint = attempt({ try Checkpoint.open(path) }) else { return }
    for (_, tensor) in checkpoint.tensors where tensor.count <= 1 << 20 {
        sink(tensor.floats())
        sink(tensor.int64s())
    }
    guard let converted = attempt({ try Converter.prepare(checkpoint, flags: ConfigFlags()) }) else { return }
    attempt { try converted.forEachTensor { spec, values in sink((spec, values)) } }
}
