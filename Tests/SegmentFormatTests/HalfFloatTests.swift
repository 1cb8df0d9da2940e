// f16 / bf16 conversions against numpy's float16 and ml_dtypes' bfloat16 (JAX's numpy bfloat16, whose rounding
// gen_format.py checks against PyTorch's): edge values, random bit patterns,
// and every one of the 65536 f16 values widened.
import Foundation
import TestSupport
import XCTest
@testable import SegmentFormat

final class HalfFloatTests: XCTestCase {
    /// Edge values: zeros, f16 subnormal boundaries and ties, the normal boundary, the overflow threshold,
    /// ties to even in the normal range, f32 subnormals, infinities and NaNs of both signs.
    static let edges: [UInt32] = {
        let f: [Float] = [
            0, -0, 1, -1, 0.1, 1.0 / 3,
            0x1p-24, 0x1p-25, 0x1.000002p-25, 0x1.fffffep-26, 0x1.8p-24, 0x1.4p-23, 0x1.8p-23,   // subnormal rounding and ties
            0x1p-14, 0x1.ffcp-15, 0x1.ffep-15, 0x1.fffp-15, 0x1.ff8p-15,                          // around the smallest normal
            65504, 65519, 65519.996, 65520, 65536, 1e10, -65520,                                  // around the overflow
            1 + 0x1p-11, 1 + 0x1.8p-10, 1 + 0x1p-10 + 0x1p-11, 2049, 2051, 2053,                  // f16 ties to even
            1 + 0x1p-8, 1 + 0x1.8p-7, 1 + 0x1p-7 + 0x1p-8, 257, 259, 261,                         // bf16 ties to even
            .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            0x1.fffffep127, 0x1.fefffep127, 0x1.ff0000p127,                                       // bf16 overflow region
            .infinity, -.infinity,
        ]
        return f.map(\.bitPattern) + [0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0x7FA0_0000, 0xFF80_2000]   // NaNs
    }()

    /// Edges plus 200,000 random bit patterns (all exponents, NaN payloads included), deterministic.
    static let samples: [UInt32] = {
        var s: UInt64 = 42
        return edges + (0..<200_000).map { _ in s = s &* 6364136223846793005 &+ 1442695040888963407; return UInt32(truncatingIfNeeded: s >> 29) }
    }()

    /// Runs `code` with the samples in argv[1] (u32 little-endian) and reads back u16 results from argv[2].
    func reference(_ code: String, _ input: [UInt32]) throws -> [UInt16] {
        let dir = try TestSupport.temporaryDirectory(self)
        let inURL = dir.appendingPathComponent("in.u32"), outURL = dir.appendingPathComponent("out.u16")
        try input.withUnsafeBytes { Data($0) }.write(to: inURL)
        try TestSupport.python("import sys, numpy as np, ml_dtypes\nx = np.fromfile(sys.argv[1], dtype='<u4').view(np.float32)\n" + code,
                               [inURL.path, outURL.path])
        let data = try Data(contentsOf: outURL)
        XCTAssertEqual(data.count, input.count * 2)
        return data.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
    }

    func isNaN16(_ h: UInt16, exponentMask: UInt16) -> Bool { h & exponentMask == exponentMask && h & ~exponentMask & 0x7FFF != 0 }

    func testF16MatchesNumpy() throws {
        let want = try reference("with np.errstate(all='ignore'): x.astype('<f2').view('<u2').tofile(sys.argv[2])", Self.samples)
        for (x, w) in zip(Self.samples, want) {
            let got = HalfFloat.f16Bits(Float(bitPattern: x))
            if isNaN16(w, exponentMask: 0x7C00) {   // NaN: numpy may keep a signalling payload; we keep a quiet NaN
                XCTAssertTrue(isNaN16(got, exponentMask: 0x7C00) && got & 0x8000 == w & 0x8000, "NaN \(String(x, radix: 16))")
            } else {
                XCTAssertEqual(got, w, "f32 \(Float(bitPattern: x)) (0x\(String(x, radix: 16)))")
            }
        }
    }

    func testBF16MatchesMLDtypes() throws {
        let want = try reference("x.astype(ml_dtypes.bfloat16).view('<u2').tofile(sys.argv[2])", Self.samples)
        for (x, w) in zip(Self.samples, want) {
            let got = HalfFloat.bf16Bits(Float(bitPattern: x))
            if isNaN16(w, exponentMask: 0x7F80) {   // ml_dtypes (like PyTorch) canonicalises NaN to 0x7FC0; we keep sign and payload
                XCTAssertTrue(isNaN16(got, exponentMask: 0x7F80), "NaN \(String(x, radix: 16))")
            } else {
                XCTAssertEqual(got, w, "f32 \(Float(bitPattern: x)) (0x\(String(x, radix: 16)))")
            }
        }
    }

    /// All 65536 f16 bit patterns widened, bit for bit (NaN payloads included) as numpy does.
    func testF16WideningIsExactForEveryValue() throws {
        let all = (0...0xFFFF).map { UInt32($0) }
        let dir = try TestSupport.temporaryDirectory(self)
        let outURL = dir.appendingPathComponent("out.u32")
        try TestSupport.python("import sys, numpy as np\nnp.arange(65536, dtype='<u2').view('<f2').astype('<f4').tofile(sys.argv[1])", [outURL.path])
        let want = try Data(contentsOf: outURL).withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
        XCTAssertEqual(want.count, all.count)
        for (h, w) in zip(all, want) { XCTAssertEqual(HalfFloat.float(f16: UInt16(h)).bitPattern, w, "f16 0x\(String(h, radix: 16))") }
        // Narrowing a widened value gives it back (every non-NaN f16 is a float exactly).
        for h in all where !isNaN16(UInt16(h), exponentMask: 0x7C00) {
            XCTAssertEqual(HalfFloat.f16Bits(HalfFloat.float(f16: UInt16(h))), UInt16(h))
        }
    }

    func testBF16WideningIsTheTopHalf() {
        for h: UInt16 in [0, 0x8000, 0x3F80, 0x0001, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0] {
            XCTAssertEqual(HalfFloat.float(bf16: h).bitPattern, UInt32(h) << 16)
            if h != 0x7FC0 { XCTAssertEqual(HalfFloat.bf16Bits(HalfFloat.float(bf16: h)), h) }
        }
    }
}
