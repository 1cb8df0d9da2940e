// Vector math shared by the kernels (private to SegmentKernels): e^x and the exact-erf GELU for AVX-512 and AVX2,
// one algorithm for both widths and every caller. e^x: x clamped to [-87, 88], x = n ln2 + r (ln2 split in a part
// exact in float and a low part), e^r by its degree-7 Taylor polynomial (Horner), times 2^n. GELU:
// x/2 (1 + erf(x / sqrt 2)), erf by Abramowitz & Stegun 7.1.26 (absolute error < 2e-7).
#ifndef SEGMENT_SIMD_MATH_H
#define SEGMENT_SIMD_MATH_H
#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,fma")))
#define AVX2 __attribute__((target("avx2,fma")))

/// Lanes 0 .. n-1 of 16 (n clamped to 0 .. 16).
static inline __mmask16 mask16(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/// e^x for x already in [-87, 88] (no clamping): Horner, since throughput, not latency, binds where it runs.
AVX512 static inline __m512 exp512_core(__m512 x) {
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860676533018704e-6f), r);
    __m512 p = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 5040), _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);                       // p * 2^n
}

AVX512 static inline __m512 exp512(__m512 x) {
    return exp512_core(_mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f)));
}

// GELU inside the GEMM tile, where throughput (not latency) binds: the same formula as gelu256 with fewer
// operations. With a = min(|x| / sqrt 2, 9), t = 1 / (1 + 0.3275911 a) and q = (1/2) (a1 t + .. + a5 t^5) e^-a^2
// (= erfc(a) / 2 by A&S 7.1.26, the 1/2 folded into the coefficients), Phi(x) = 1 - q for x >= 0 and q for x < 0,
// and GELU(x) = x Phi(x). From a = 9 on (x < -12.7), q is 0 (erfc(9) / 2 < 1.2e-37): GELU is -0 there, and no
// step makes a denormal, which would cost a microcode assist per value.
AVX512 static inline __m512 gelu512(__m512 x) {
    __m512 z = _mm512_abs_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)));
    __mmask16 inside = _mm512_cmp_ps_mask(z, _mm512_set1_ps(9.0f), _CMP_LT_OQ);   // from 9 on: q = 0
    __m512 a = _mm512_min_ps(z, _mm512_set1_ps(9.0f));
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(a, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_fmadd_ps(t, _mm512_set1_ps(0.5f * 1.061405429f), _mm512_set1_ps(0.5f * -1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.5f * 1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.5f * -0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.5f * 0.254829592f));
    p = _mm512_mul_ps(p, t);
    __m512 q = _mm512_maskz_mul_ps(inside, p, exp512_core(_mm512_fnmadd_ps(a, a, _mm512_setzero_ps())));   // -a^2 >= -81
    __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_mul_ps(x, _mm512_mask_sub_ps(q, pos, _mm512_set1_ps(1.0f), q));
}

AVX2 static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860676533018704e-6f), r);
    __m256 p = _mm256_fmadd_ps(r, _mm256_set1_ps(1.0f / 5040), _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));    // p * 2^n, 2^n built in the exponent bits
}

AVX2 static inline __m256 gelu256(__m256 x) {
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    __m256 sign = _mm256_and_ps(z, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)));
    __m256 a = _mm256_min_ps(_mm256_andnot_ps(sign, z), _mm256_set1_ps(9.0f));
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(a, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 t2 = _mm256_mul_ps(t, t);
    __m256 lo = _mm256_fnmadd_ps(t, _mm256_set1_ps(0.284496736f), _mm256_set1_ps(0.254829592f));
    __m256 mid = _mm256_fnmadd_ps(t, _mm256_set1_ps(1.453152027f), _mm256_set1_ps(1.421413741f));
    __m256 p = _mm256_fmadd_ps(t2, _mm256_fmadd_ps(t2, _mm256_set1_ps(1.061405429f), mid), lo);
    __m256 e = _mm256_fnmadd_ps(_mm256_mul_ps(p, t), exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), a), a)),
                                _mm256_set1_ps(1.0f));
    __m256 erf = _mm256_or_ps(e, sign);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
}

#endif
#endif
