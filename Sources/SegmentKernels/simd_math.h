// Vector math shared by the kernels (private to SegmentKernels): e^x (AVX-512, for the attention's softmax) and
// the exact-erf GELU for AVX-512 and AVX2, one algorithm for both widths and every caller. e^x: x clamped to
// [-87, 88], x = n ln2 + r (ln2 split in a part exact in float and a low part), e^r by its degree-7 Taylor
// polynomial (Horner), times 2^n. GELU: x/2 (1 + erf(x / sqrt 2)), erf by a fitted rational function (gelu512).
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

// GELU inside the GEMM tile, where throughput (not latency) binds: x/2 (1 + erf(x / sqrt 2)) with erf(u) as a
// rational function, u P(u^2) / Q(u^2), P of degree 6 and Q of degree 4, fitted (minimax, bench/kernels/erf_fit.py)
// on [0, 3.92]; u is clamped to +-3.92 (erf(3.92) = 1 - 5e-8, under half an ulp of 1) and the quotient to [-1, 1],
// so from |x| = 5.55 on GELU is exactly x or 0: no step makes a denormal, which would cost a microcode assist per
// value. |erf error| < 4e-7 in float arithmetic (A&S 7.1.26, used before, had 2e-7) with no exp and no erfc
// branch: 20 vector operations instead of 28.
#define ERF_C 3.92f
#define ERF_P0 1.128378749e+00f
#define ERF_P1 2.060894668e-01f
#define ERF_P2 5.139399320e-02f
#define ERF_P3 3.971877042e-03f
#define ERF_P4 1.489657589e-04f
#define ERF_P5 -1.994305421e-06f
#define ERF_P6 1.992355436e-08f
#define ERF_Q1 5.159708261e-01f
#define ERF_Q2 1.175543219e-01f
#define ERF_Q3 1.488711964e-02f
#define ERF_Q4 1.023888821e-03f

// One body for both widths: V the vector type, I the intrinsics' prefix (_mm512, _mm256).
#define DEFINE_GELU(NAME, ATTR, V, I)                                                                                \
    ATTR static inline V NAME(V x) {                                                                                \
        V u = I##_mul_ps(x, I##_set1_ps(0.70710678118654752f));                                                     \
        u = I##_min_ps(I##_max_ps(u, I##_set1_ps(-ERF_C)), I##_set1_ps(ERF_C));                                     \
        V s = I##_mul_ps(u, u);                                                                                     \
        V p = I##_fmadd_ps(s, I##_set1_ps(ERF_P6), I##_set1_ps(ERF_P5));                                            \
        p = I##_fmadd_ps(p, s, I##_set1_ps(ERF_P4));                                                                \
        p = I##_fmadd_ps(p, s, I##_set1_ps(ERF_P3));                                                                \
        p = I##_fmadd_ps(p, s, I##_set1_ps(ERF_P2));                                                                \
        p = I##_fmadd_ps(p, s, I##_set1_ps(ERF_P1));                                                                \
        p = I##_fmadd_ps(p, s, I##_set1_ps(ERF_P0));                                                                \
        V q = I##_fmadd_ps(s, I##_set1_ps(ERF_Q4), I##_set1_ps(ERF_Q3));                                            \
        q = I##_fmadd_ps(q, s, I##_set1_ps(ERF_Q2));                                                                \
        q = I##_fmadd_ps(q, s, I##_set1_ps(ERF_Q1));                                                                \
        q = I##_fmadd_ps(q, s, I##_set1_ps(1.0f));                                                                  \
        V erf = I##_div_ps(I##_mul_ps(u, p), q);                                                                    \
        erf = I##_min_ps(I##_max_ps(erf, I##_set1_ps(-1.0f)), I##_set1_ps(1.0f));                                   \
        V h = I##_mul_ps(x, I##_set1_ps(0.5f));                                                                     \
        return I##_fmadd_ps(h, erf, h);                                                                             \
    }

DEFINE_GELU(gelu512, AVX512, __m512, _mm512)
DEFINE_GELU(gelu256, AVX2, __m256, _mm256)
#undef DEFINE_GELU

/// r[i][j] -> r[j][i] for a 16 x 16 block in 16 zmm: unpacks within 128-bit lanes, then 64-bit and 128-bit
/// shuffles (64 shuffles, no memory round trip).
AVX512 static inline __attribute__((always_inline)) void transpose16x16(__m512 r[16]) {
    __m512 t[16], u[16];
#pragma clang loop unroll(full)
    for (int i = 0; i < 8; i++) {                   // t[2i], t[2i+1]: rows 2i, 2i+1 interleaved (columns 0,1 | 2,3 per lane)
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma clang loop unroll(full)
    for (int g = 0; g < 4; g++) {                   // u[4g + c], 128-bit lane L: rows 4g .. 4g+3 of column 4L + c
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
#pragma clang loop unroll(full)
    for (int c = 0; c < 4; c++) {                   // column 4L + c = lane L of u[c], u[4+c], u[8+c], u[12+c]
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88), w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
        r[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
    }
}

#endif
#endif
