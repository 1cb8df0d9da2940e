// The model file (.segm, docs/FORMAT.md): opened and validated as `segment run` and `segment inspect` do, then
// inspected and every tensor widened to floats.
import SegmentFormat

extension FuzzTarget {
    /// Each input is tried twice: as given, and resealed (declared size and XXH64 checksum made to match), since
    /// the checksum covers every byte after it and would otherwise stop almost every mutation at the first check.
    static let model = FuzzTarget(name: "model", summary: "segment model file (.segm), as given and resealed") { bytes in
        withScratchFile("model.segm", bytes) { openModel($0) }
        if var sealed = resealed(bytes) {
            sealed.withUnsafeMutableBytes { raw in withScratchFile("sealed.segm", UnsafeRawBufferPointer(raw)) { openModel($0) } }
        }
    }
}

func openModel(_ path: String) {
    guard let model = attempt({ try ModelFile.open(path) }) else { return }
    let inspection = ModelInspection(model)
    sink(inspection.text)
    attempt { try inspection.json() }
    for t in model.tensors { attempt { try model.floats(t.name) } }
}

/// The file with bytes 16..<24 (the file size) and 8..<16 (XXH64 of bytes 16...) rewritten, or nil when it is
/// too short to have them or already matches.
func resealed(_ bytes: UnsafeRawBufferPointer) -> [UInt8]? {
    guard bytes.count >= 24 else { return nil }
    var b = Array(bytes)
    withUnsafeBytes(of: UInt64(b.count).littleEndian) { b.replaceSubrange(16..<24, with: $0) }
    let sum = b.withUnsafeBytes { XXH64Reference.hash(UnsafeRawBufferPointer(rebasing: $0[16...])) }
    withUnsafeBytes(of: sum.littleEndian) { b.replaceSubrange(8..<16, with: $0) }
    return b.elementsEqual(bytes) ? nil : b
}

/// XXH64 with seed 0, written from the algorithm's specification (kept apart from the product's implementation so
/// that a fault there cannot hide itself from the fuzzer).
enum XXH64Reference {
    static let p1: UInt64 = 0x9E37_79B1_85EB_CA87, p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F, p3: UInt64 = 0x1656_67B1_9E37_79F9
    static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63, p5: UInt64 = 0x27D4_EB2F_1656_67C5

    static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
    static func round(_ acc: UInt64, _ lane: UInt64) -> UInt64 { rotl(acc &+ lane &* p2, 31) &* p1 }
    static func u64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 { UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
    static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 { UInt64(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }

    static func hash(_ b: UnsafeRawBufferPointer) -> UInt64 {
        let n = b.count
        var at = 0, h: UInt64
        if n >= 32 {
            var v = [p1 &+ p2, p2, 0, 0 &- p1]
            while at + 32 <= n {
                for i in 0..<4 { v[i] = round(v[i], u64(b, at + 8 * i)) }
                at += 32
            }
            h = rotl(v[0], 1) &+ rotl(v[1], 7) &+ rotl(v[2], 12) &+ rotl(v[3], 18)
            for i in 0..<4 { h = (h ^ round(0, v[i])) &* p1 &+ p4 }
        } else {
            h = p5
        }
        h = h &+ UInt64(n)
        while at + 8 <= n { h = rotl(h ^ round(0, u64(b, at)), 27) &* p1 &+ p4; at += 8 }
        if at + 4 <= n { h = rotl(h ^ (u32(b, at) &* p1), 23) &* p2 &+ p3; at += 4 }
        while at < n { h = rotl(h ^ (UInt64(b[at]) &* p5), 11) &* p1; at += 1 }
        h ^= h >> 33; h = h &* p2; h ^= h >> 29; h = h &* p3; h ^= h >> 32
        return h
    }
}
