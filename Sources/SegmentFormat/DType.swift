// Storage dtypes of the model file and the float conversions between them.
// All conversions to a narrower type round to nearest, ties to even (IEEE 754 default), as numpy's
// astype(float16) and PyTorch's .to(torch.bfloat16) do; widening is exact. Bit-level, so every platform agrees.

/// How a tensor's values are stored in the model file (little-endian).
public enum DType: String, CaseIterable, Codable, Sendable {
    case f32, f16, bf16

    /// The code stored in the tensor table (docs/FORMAT.md, "Tensor table").
    public var code: UInt32 {
        switch self { case .f32: return 0; case .f16: return 1; case .bf16: return 2 }
    }

    public init?(code: UInt32) {
        switch code { case 0: self = .f32; case 1: self = .f16; case 2: self = .bf16; default: return nil }
    }

    public var bytesPerElement: Int { self == .f32 ? 4 : 2 }
}

/// IEEE binary16 (1 sign, 5 exponent, 10 mantissa bits) and bfloat16 (1, 8, 7) from and to Float.
public enum HalfFloat {
    /// Float -> binary16 bits, round to nearest even. Overflow gives ±inf, values below half the smallest
    /// subnormal (2^-25) give ±0, NaN stays a (quiet) NaN with its sign and top payload bits.
    @inline(__always) public static func f16Bits(_ value: Float) -> UInt16 {
        let x = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xFF)        // biased by 127
        let mant = x & 0x7F_FFFF
        if exp == 0xFF {                        // inf or NaN
            return mant == 0 ? sign | 0x7C00 : sign | 0x7E00 | UInt16(truncatingIfNeeded: mant >> 13)
        }
        let e = exp - 127 + 15                  // biased by 15
        if e >= 0x1F { return sign | 0x7C00 }   // |x| >= 2^16: beyond binary16
        if e <= 0 {
            // Result is subnormal (or zero): value = r * 2^-24 with r = significand >> (14 - e), rounded.
            if e < -10 { return sign }          // |x| < 2^-25 rounds to zero
            let m = mant | 0x80_0000            // implicit leading 1: 24-bit significand
            let shift = UInt32(14 - e)          // 14...24
            var r = m >> shift
            let rem = m & ((1 << shift) - 1), half = UInt32(1) << (shift - 1)
            if rem > half || (rem == half && r & 1 == 1) { r += 1 }   // may carry into the smallest normal: correct
            return sign | UInt16(truncatingIfNeeded: r)
        }
        var r = UInt32(e) << 10 | mant >> 13
        let rem = mant & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && r & 1 == 1) { r += 1 }   // a carry may reach exponent 31 = inf: correct
        return sign | UInt16(truncatingIfNeeded: r)
    }

    /// binary16 bits -> Float, exact.
    @inline(__always) public static func float(f16 h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        let mant = UInt32(h & 0x3FF)
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mant << 13) }
        if exp != 0 { return Float(bitPattern: sign | (exp + 112) << 23 | mant << 13) }
        if mant == 0 { return Float(bitPattern: sign) }
        // Subnormal mant * 2^-24: normalise so the leading 1 moves to bit 10.
        var m = mant, e: UInt32 = 113
        while m & 0x400 == 0 { m <<= 1; e -= 1 }
        return Float(bitPattern: sign | e << 23 | (m & 0x3FF) << 13)
    }

    /// Float -> bfloat16 bits (the top half of the float), round to nearest even. NaN stays a quiet NaN.
    @inline(__always) public static func bf16Bits(_ value: Float) -> UInt16 {
        let x = value.bitPattern
        if x & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: x >> 16) | 0x0040 }
        let r = x &+ 0x7FFF &+ ((x >> 16) & 1)
        return UInt16(truncatingIfNeeded: r >> 16)
    }

    /// bfloat16 bits -> Float, exact.
    @inline(__always) public static func float(bf16 h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }
}
