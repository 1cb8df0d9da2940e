// Opening a checkpoint: recognise its container (PyTorch zip, PyTorch legacy, safetensors) by its bytes, unpickle
// it with the restricted unpickler, find the state_dict in it and bind each tensor to its bytes. Nothing here
// knows about Swin-UNet: see StateDict.swift for the keys and Converter.swift for the rest.
import Foundation
import SegmentCore

public struct Checkpoint {
    public enum Format: String, Sendable {
        case zip = "PyTorch zip"
        case legacy = "PyTorch legacy"
        case safetensors = "safetensors"
    }

    public let path: String
    public let format: Format
    /// Where the state_dict was: "" at the top level, else the key it was nested under ("model" or "state_dict").
    public let nesting: String
    /// The state_dict's tensors in file order, with their names as saved.
    public let tensors: [(name: String, tensor: SourceTensor)]
    /// SHA-256 of the whole file, hex.
    public let sha256: String
    /// Size of the file in bytes.
    public let fileSize: Int

    /// Reads and validates `path`. Throws `ConvertError` (exit code 3) for anything unreadable, corrupt or hostile.
    public static func open(_ path: String) throws -> Checkpoint {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch let f as MappedFile.Failure {
            switch f {
            case .empty: throw ConvertError.empty(path: path)
            case .unreadable(let reason): throw ConvertError.unreadable(path: path, reason: reason)
            }
        }
        let bytes = file.bytes
        let format: Format, nesting: String, tensors: [(name: String, tensor: SourceTensor)]
        if ZipArchive.isZip(bytes) {
            format = .zip
            (nesting, tensors) = try loadZip(file)
        } else if bytes[0] == 0x80 {
            format = .legacy
            (nesting, tensors) = try loadLegacy(file)
        } else if Safetensors.looksLike(bytes) {
            format = .safetensors
            nesting = ""
            tensors = try Safetensors.load(file)
        } else {
            throw ConvertError.notACheckpoint(path: path, reason: describeStart(bytes))
        }
        return Checkpoint(path: path, format: format, nesting: nesting, tensors: tensors,
                          sha256: SHA256.hex(bytes), fileSize: bytes.count)
    }

    /// What the file looks like instead, for the error message.
    static func describeStart(_ bytes: UnsafeRawBufferPointer) -> String {
        if bytes.count > 262, String(decoding: bytes[257..<262], as: UTF8.self) == "ustar" {
            return "it is a tar archive (PyTorch before 1.0 saved such files; load and re-save it with a recent PyTorch)"
        }
        if bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4B {
            return "it is an empty or unusual zip archive"
        }
        let head = bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
        return "it starts with the bytes \(head)"
    }

    // MARK: PyTorch zip (torch.save, PyTorch >= 1.6)

    /// The archive holds ARCHIVE/data.pkl (the pickle), ARCHIVE/data/KEY (one entry per storage), ARCHIVE/byteorder.
    static func loadZip(_ file: MappedFile) throws -> (String, [(name: String, tensor: SourceTensor)]) {
        let path = file.path
        let zip = try ZipArchive(file)
        let pickles = zip.entries.filter { e in
            let parts = e.name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[1] == "data.pkl"
        }
        guard pickles.count == 1, let pickleEntry = pickles.first else {
            throw ConvertError.notACheckpoint(path: path, reason: pickles.isEmpty
                ? "it is a zip archive without the ARCHIVE/data.pkl entry torch.save writes"
                : "it is a zip archive with \(pickles.count) data.pkl entries")
        }
        let archive = String(pickleEntry.name.dropLast("/data.pkl".count))
        var bigEndian = false
        if let order = zip.byName[archive + "/byteorder"] {
            let text = String(decoding: try zip.data(order), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            switch text {
            case "little": bigEndian = false
            case "big": bigEndian = true
            default: throw ConvertError.malformedArchive(path: path, reason: "entry \(order.name) says \"\(shown(text))\", not little or big")
            }
        }
        let heap = PickleHeap()
        let pickleBytes = try zip.data(pickleEntry)
        var unpickler = Unpickler(path: path, bytes: pickleBytes, heap: heap)
        let root = try unpickler.load()
        let (nesting, selected) = try selectStateDict(root, heap, path)

        var storageBytes: [Int: UnsafeRawBufferPointer] = [:]
        let tensors = try selected.map { (name, t) -> (name: String, tensor: SourceTensor) in
            let record = heap.tensors[t]
            let storage = heap.storages[record.storage]
            if storageBytes[record.storage] == nil {
                let entryName = "\(archive)/data/\(storage.key)"
                guard let entry = zip.byName[entryName] else {
                    throw ConvertError.malformedArchive(path: path, reason: "tensor \(shown(name)) needs entry \(shown(entryName)), which is missing")
                }
                let bytes = try zip.data(entry)
                // numel comes from the pickle: the product is checked, an overflowing one matches no entry.
                let (size, overflow) = storage.numel.multipliedReportingOverflow(by: storage.type.size)
                guard !overflow, bytes.count == size else {
                    throw ConvertError.badTensor(path: path, tensor: name, reason: "has a storage of \(storage.numel) \(storage.type) elements but entry \(shown(entryName)) holds \(bytes.count) bytes")
                }
                storageBytes[record.storage] = bytes
            }
            return (name, try SourceTensor(name: name, path: path, type: storage.type, shape: record.shape, strides: record.strides,
                                           offset: record.offset, storage: storageBytes[record.storage]!, bigEndian: bigEndian, owner: file))
        }
        return (nesting, tensors)
    }

    // MARK: PyTorch legacy (torch.save with _use_new_zipfile_serialization=False, or PyTorch < 1.6)

    /// Five pickles in a row: the magic number, the protocol version 1001, sys_info, the object with persistent
    /// storage ids, the list of storage keys; then per key an int64 element count and the raw bytes. PyTorch writes
    /// both little-endian whatever the machine (sys_info's little_endian records the machine, not the file).
    static let legacyMagic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]   // 0x1950a86a20f9469cfc6c, little-endian

    static func loadLegacy(_ file: MappedFile) throws -> (String, [(name: String, tensor: SourceTensor)]) {
        let path = file.path, bytes = file.bytes
        let heap = PickleHeap()
        var position = 0
        func next() throws -> PickleValue {
            var u = Unpickler(path: path, bytes: bytes, from: position, heap: heap)
            let v = try u.load()
            position = u.reader.position
            return v
        }
        guard case .bigInt(let magic) = try next(), magic == legacyMagic else {
            throw ConvertError.notACheckpoint(path: path, reason: "it is a pickle without PyTorch's magic number")
        }
        guard case .int(1001) = try next() else {
            throw ConvertError.notACheckpoint(path: path, reason: "its legacy protocol version is not 1001")
        }
        guard case .dict = try next() else {
            throw ConvertError.malformedPickle(path: path, reason: "sys_info is not a dict", offset: position)
        }
        let root = try next()
        guard case .list(let keyList) = try next() else {
            throw ConvertError.malformedPickle(path: path, reason: "the storage key list is not a list", offset: position)
        }
        // Storages follow in the order of the key list.
        var storageBytes: [Int: UnsafeRawBufferPointer] = [:]
        var reader = ByteReader(bytes, from: position) { what in ConvertError.truncated(path: path, what: "the file ends inside \(what)") }
        for item in heap.lists[keyList] {
            guard case .string(let key) = item, let s = heap.storageByKey[key] else {
                throw ConvertError.malformedPickle(path: path, reason: "the storage key list names \(item.kind) that no tensor uses", offset: position)
            }
            let record = heap.storages[s]
            let stored = try reader.uintLE(8, "the size of storage \(shown(key))")
            guard stored == UInt64(record.numel) else {
                throw ConvertError.malformedArchive(path: path, reason: "storage \(shown(key)) has \(stored) elements but its tensors say \(record.numel)")
            }
            let numel = record.numel
            let (n, overflow) = numel.multipliedReportingOverflow(by: record.type.size)
            guard !overflow else { throw ConvertError.malformedArchive(path: path, reason: "storage \(shown(key)) is impossibly large") }
            storageBytes[s] = try reader.take(n, "storage \(shown(key)) (\(numel) \(record.type) elements)")
        }
        let (nesting, selected) = try selectStateDict(root, heap, path)
        let tensors = try selected.map { (name, t) -> (name: String, tensor: SourceTensor) in
            let record = heap.tensors[t]
            guard let storage = storageBytes[record.storage] else {
                throw ConvertError.malformedArchive(path: path, reason: "tensor \(shown(name))'s storage \(shown(heap.storages[record.storage].key)) is not in the storage list")
            }
            return (name, try SourceTensor(name: name, path: path, type: heap.storages[record.storage].type, shape: record.shape,
                                           strides: record.strides, offset: record.offset, storage: storage, bigEndian: false, owner: file))
        }
        return (nesting, tensors)
    }

    // MARK: the state_dict inside the pickle

    /// A bare state_dict (a dict of tensors), or one nested under "model" or "state_dict" (training checkpoints
    /// that also hold an optimizer, an epoch ...). Returns the nesting key and (name, tensor index) pairs.
    static func selectStateDict(_ root: PickleValue, _ heap: PickleHeap, _ path: String) throws -> (String, [(String, Int)]) {
        guard case .dict(let top) = root else {
            throw ConvertError.noStateDict(path: path, reason: "the pickled object is \(root.kind), not a dict")
        }
        func tensors(_ d: PickleDict, _ prefix: String) throws -> [(String, Int)] {
            try zip(d.keys, d.values).map { k, v in
                guard case .string(let name) = k else { throw ConvertError.noStateDict(path: path, reason: "\(prefix)a key is \(k.kind), not a string") }
                guard case .tensor(let t) = v else {
                    throw ConvertError.noStateDict(path: path, reason: "\(prefix)\(shown(name)) holds \(v.kind), not a tensor")
                }
                return (name, t)
            }
        }
        func isStateDict(_ d: PickleDict) -> Bool {
            d.values.allSatisfy { if case .tensor = $0 { return true } else { return false } }
        }
        let d = heap.dicts[top]
        let nested: [(key: String, dict: Int)] = ["model", "state_dict"].compactMap { key in
            if case .dict(let i)? = d[key] { return (key, i) } else { return nil }
        }
        if nested.isEmpty {
            let entries = try tensors(d, "")
            guard !entries.isEmpty else { throw ConvertError.noStateDict(path: path, reason: "the dict is empty") }
            return ("", entries)
        }
        let usable = nested.filter { isStateDict(heap.dicts[$0.dict]) }
        guard usable.count <= 1 else {
            throw ConvertError.noStateDict(path: path, reason: "both \"model\" and \"state_dict\" hold tensors, so which one to convert is ambiguous")
        }
        let (key, i) = usable.first ?? nested[0]
        let entries = try tensors(heap.dicts[i], "\(key).")
        guard !entries.isEmpty else { throw ConvertError.noStateDict(path: path, reason: "\"\(key)\" is empty") }
        return (key, entries)
    }
}
