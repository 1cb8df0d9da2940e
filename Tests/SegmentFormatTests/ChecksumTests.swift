// XXH64 against the published test vectors and against the xxHash C library (python `xxhash`).
import Foundation
import TestSupport
import XCTest
@testable import SegmentFormat

final class ChecksumTests: XCTestCase {
    func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 { bytes.withUnsafeBytes { XXH64.hash($0, seed: seed) } }

    /// The vectors of xxHash's own sanity check (xsum_sanity_check.c / bench.c): a 101-byte buffer made by
    /// squaring a 32-bit generator, hashed at lengths 0, 1, 14, 101 with seeds 0 and PRIME32 = 2654435761.
    func testPublishedSanityVectors() {
        let prime: UInt64 = 2_654_435_761
        var gen = UInt32(prime)
        let buffer: [UInt8] = (0..<101).map { _ in defer { gen = gen &* gen }; return UInt8(gen >> 24) }
        let vectors: [(Int, UInt64, UInt64)] = [
            (0, 0, 0xEF46_DB37_51D8_E999), (0, prime, 0xAC75_FDA2_929B_17EF),
            (1, 0, 0x4FCE_394C_C889_52D8), (1, prime, 0x7398_40CB_819F_A723),
            (14, 0, 0xCFFA_8DB8_81BC_3A3D), (14, prime, 0x5B96_1158_5EFC_C9CB),
            (101, 0, 0x0EAB_5433_84F8_78AD), (101, prime, 0xCAA6_5939_306F_1E21),
        ]
        for (n, seed, want) in vectors {
            XCTAssertEqual(hash(Array(buffer[..<n]), seed: seed), want, "length \(n) seed \(seed)")
        }
        XCTAssertEqual(hash(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(XXH64.hex(0x0EAB_5433_84F8_78AD), "0eab543384f878ad")
    }

    /// Every length 0...300 (all tail paths, 0-9 stripes) and a 1 MB buffer, against the C library.
    func testMatchesTheCLibrary() throws {
        let data = Tiny.values(262_144, seed: 7).withUnsafeBytes { Array($0) }   // 1 MiB
        let dir = try TestSupport.temporaryDirectory(self)
        let file = dir.appendingPathComponent("data.bin")
        try Data(data).write(to: file)
        let lengths = Array(0...300) + [1 << 20]
        let out = try TestSupport.python("""
            import sys, xxhash
            data = open(sys.argv[1], 'rb').read()
            print(' '.join(str(xxhash.xxh64_intdigest(data[:int(n)])) for n in sys.argv[2:]))
            """, [file.path] + lengths.map(String.init))
        let want = out.split(separator: " ").map { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        XCTAssertEqual(want.count, lengths.count)
        for (n, w) in zip(lengths, want) { XCTAssertEqual(hash(Array(data[..<n])), w, "length \(n)") }
    }
}
