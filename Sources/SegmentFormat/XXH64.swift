// XXH64 (xxHash, 64-bit, by Yann Collet): the model file's checksum. Chosen because it runs at memory speed
// on one core (a ~100 MB model file hashes in tens of milliseconds), is fully specified, and has a C library
// and published test vectors to check this implementation against (Tests/SegmentFormatTests/ChecksumTests).
// docs/FORMAT.md (Checksum) says which bytes it covers and where the algorithm is specified.

enum XXH64 {
    static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    @inline(__always) static func round(_ acc: UInt64, _ lane: UInt64) -> UInt64 {
        rotl(acc &+ lane &* prime2, 31) &* prime1
    }

    @inline(__always) static func merge(_ acc: UInt64, _ v: UInt64) -> UInt64 {
        (acc ^ round(0, v)) &* prime1 &+ prime4
    }

    /// The XXH64 digest of `bytes` with `seed`.
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let n = bytes.count
        guard let base = bytes.baseAddress else { return finish(seed &+ prime5 &+ 0, base: nil, tail: 0) }
        var p = 0
        var h: UInt64
        if n >= 32 {
            // Four accumulators, one 8-byte lane each, over 32-byte stripes.
            var v1 = seed &+ prime1 &+ prime2, v2 = seed &+ prime2, v3 = seed, v4 = seed &- prime1
            while p + 32 <= n {
                v1 = round(v1, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p, as: UInt64.self)))
                v2 = round(v2, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p + 8, as: UInt64.self)))
                v3 = round(v3, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p + 16, as: UInt64.self)))
                v4 = round(v4, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p + 24, as: UInt64.self)))
                p += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            h = merge(h, v1); h = merge(h, v2); h = merge(h, v3); h = merge(h, v4)
        } else {
            h = seed &+ prime5
        }
        h = h &+ UInt64(n)
        return finish(h, base: base + p, tail: n - p)
    }

    /// Consumes the last `tail` (< 32) bytes at `base`, then avalanches.
    @inline(__always) private static func finish(_ start: UInt64, base: UnsafeRawPointer?, tail: Int) -> UInt64 {
        var h = start
        var p = 0
        if let base {
            while p + 8 <= tail {
                h ^= round(0, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p, as: UInt64.self)))
                h = rotl(h, 27) &* prime1 &+ prime4
                p += 8
            }
            if p + 4 <= tail {
                h ^= UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: p, as: UInt32.self))) &* prime1
                h = rotl(h, 23) &* prime2 &+ prime3
                p += 4
            }
            while p < tail {
                h ^= UInt64(base.load(fromByteOffset: p, as: UInt8.self)) &* prime5
                h = rotl(h, 11) &* prime1
                p += 1
            }
        }
        h ^= h >> 33; h = h &* prime2
        h ^= h >> 29; h = h &* prime3
        h ^= h >> 32
        return h
    }

    /// 16 lowercase hex digits, most significant first (as `xxhsum` prints it).
    static func hex(_ h: UInt64) -> String {
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
