// Window attention for one (window, head) pair. Two paths, the same operations in the same order for every output
// (so they give the same bits):
// - windows of up to 64 tokens with AVX-512 (every Swin window of 8x8 or less; 7x7 = 49 in Swin-T): one fused
//   kernel per 6 query rows (the last N mod 6 rows: a tile of exactly that many). A row's N scores fit in 4 zmm
//   registers, so the tile computes bias (+ mask) + q k^T (k transposed once per pair into a 64-column block, by
//   16 x 16 register transposes), the row softmax and P v without writing the scores out; v is read in place (a
//   row of v is the 32 columns of a panel). The six rows' softmax runs phase by phase (all maxima, then all exps,
//   then all sums), so the reductions and exps of different rows overlap (11-12 % faster than row by row).
// - otherwise, on top of the packed GEMM: S = bias (+ mask) + q k^T (k packed as a 32-column-panel weight),
//   softmax in place, out = S v (v packed the same way).
#include "segment_kernels.h"
#include "simd_math.h"

#include <math.h>
#include <string.h>

#define CUTOFF (-80.0f)

#define SMALL_N 64      // the fused path: N <= 64, row scores in 4 zmm
#define ATT_MR 6        // query rows per fused tile

size_t seg_attention_work_floats(int N, int d) {
    size_t general = (size_t)N * N + seg_packed_floats(N, d) + seg_packed_floats(d, N);
    size_t fused = (size_t)d * SMALL_N + ATT_MR * SMALL_N;     // k^T (d, 64), then the tile's P (6, 64)
    return general > fused ? general : fused;
}

static void softmax_rows_c(float *S, int N) {
    for (int i = 0; i < N; i++) {
        float *s = S + (size_t)i * N, m = -INFINITY, sum = 0.0f;
        for (int j = 0; j < N; j++) m = s[j] > m ? s[j] : m;
        for (int j = 0; j < N; j++) {
            float t = s[j] - m;
            s[j] = t < CUTOFF ? 0.0f : expf(t);
            sum += s[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < N; j++) s[j] *= inv;
    }
}

#if defined(__x86_64__)
AVX512 static void softmax_rows_512(float *S, int N) {
    for (int i = 0; i < N; i++) {
        float *s = S + (size_t)i * N;
        __m512 mv = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < N; j += 16) {
            __mmask16 k = mask16(N - j);
            mv = _mm512_mask_max_ps(mv, k, mv, _mm512_maskz_loadu_ps(k, s + j));
        }
        __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mv)), sum = _mm512_setzero_ps();
        for (int j = 0; j < N; j += 16) {
            __mmask16 k = mask16(N - j);
            __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), m);
            __mmask16 keep = _mm512_mask_cmp_ps_mask(k, t, _mm512_set1_ps(CUTOFF), _CMP_GE_OQ);
            __m512 e = _mm512_maskz_mov_ps(keep, exp512(t));
            _mm512_mask_storeu_ps(s + j, k, e);
            sum = _mm512_add_ps(sum, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (int j = 0; j < N; j += 16) {
            __mmask16 k = mask16(N - j);
            _mm512_mask_storeu_ps(s + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, s + j), inv));
        }
    }
}
#endif

#if defined(__x86_64__)
// MR query rows i0 .. i0+MR-1 of one pair (MR, NV compile-time): scores in registers, softmax, P v.
AVX512 static inline __attribute__((always_inline))
void attention_rows_512(const int MR, const int NV, int i0, int N, int d, const float *q, const float *v, int ld,
                        const float *bias, const float *mask, float *out, int ldo, const float *kT, float *P,
                        const __mmask16 *cm) {
    const __m512 cutoff = _mm512_set1_ps(CUTOFF);
    const float *qr[MR];
    __m512 s[MR][4];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        int i = i0 + r;
        qr[r] = q + (size_t)i * ld;
#pragma clang loop unroll(full)
        for (int c = 0; c < NV; c++) {
            __m512 b = _mm512_maskz_loadu_ps(cm[c], bias + (size_t)i * N + 16 * c);
            s[r][c] = mask ? _mm512_add_ps(b, _mm512_maskz_loadu_ps(cm[c], mask + (size_t)i * N + 16 * c)) : b;
        }
    }
    for (int e = 0; e < d; e++) {                 // scores: s += q[i, e] * k^T[e, :]
        __m512 w[4];
#pragma clang loop unroll(full)
        for (int c = 0; c < NV; c++) w[c] = _mm512_loadu_ps(kT + (size_t)e * SMALL_N + 16 * c);
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            __m512 a = _mm512_set1_ps(qr[r][e]);
#pragma clang loop unroll(full)
            for (int c = 0; c < NV; c++) s[r][c] = _mm512_fmadd_ps(a, w[c], s[r][c]);
        }
    }
    // Softmax of each row, in registers, phase by phase over the rows so that their reductions and exps overlap.
    __m512 m[MR], sum[MR];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        __m512 mv = _mm512_set1_ps(-INFINITY);
#pragma clang loop unroll(full)
        for (int c = 0; c < NV; c++) mv = _mm512_mask_max_ps(mv, cm[c], mv, s[r][c]);
        m[r] = mv;
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) m[r] = _mm512_set1_ps(_mm512_reduce_max_ps(m[r]));
#pragma clang loop unroll(full)
    for (int c = 0; c < NV; c++)
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            __m512 t = _mm512_sub_ps(s[r][c], m[r]);
            __mmask16 keep = _mm512_mask_cmp_ps_mask(cm[c], t, cutoff, _CMP_GE_OQ);
            s[r][c] = _mm512_maskz_mov_ps(keep, exp512_core(_mm512_max_ps(t, _mm512_set1_ps(-87.0f))));   // t <= 0
        }
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        sum[r] = _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int c = 0; c < NV; c++) sum[r] = _mm512_add_ps(sum[r], s[r][c]);
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum[r]));
#pragma clang loop unroll(full)
        for (int c = 0; c < NV; c++) _mm512_storeu_ps(P + r * SMALL_N + 16 * c, _mm512_mul_ps(s[r][c], inv));
    }
    for (int c0 = 0; c0 < d; c0 += 32) {           // out rows = P v, 32 output columns at a time
        __mmask16 m0 = mask16(d - c0), m1 = mask16(d - c0 - 16);
        __m512 o[MR][2];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) o[r][0] = o[r][1] = _mm512_setzero_ps();
        for (int j = 0; j < N; j++) {
            const float *vr = v + (size_t)j * ld + c0;
            __m512 w0 = _mm512_maskz_loadu_ps(m0, vr), w1 = _mm512_maskz_loadu_ps(m1, vr + 16);
#pragma clang loop unroll(full)
            for (int r = 0; r < MR; r++) {
                __m512 a = _mm512_set1_ps(P[r * SMALL_N + j]);
                o[r][0] = _mm512_fmadd_ps(a, w0, o[r][0]);
                o[r][1] = _mm512_fmadd_ps(a, w1, o[r][1]);
            }
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            float *orow = out + (size_t)(i0 + r) * ldo + c0;
            _mm512_mask_storeu_ps(orow, m0, o[r][0]);
            _mm512_mask_storeu_ps(orow + 16, m1, o[r][1]);
        }
    }
}

// NV = zmm vectors per score row (ceil(N / 16)), a compile-time constant per instance.
AVX512 static inline __attribute__((always_inline))
void attention_fused_512(const int NV, int N, int d, const float *q, const float *k, const float *v, int ld,
                         const float *bias, const float *mask, float *out, int ldo, float *work) {
    float *kT = work;                                  // (d, 64): kT[e*64 + j] = k[j, e], columns N..63 zero
    float *P = work + (size_t)d * SMALL_N;             // (ATT_MR, 64) probabilities of the current tile
    for (int j0 = 0; j0 < 16 * NV; j0 += 16)          // kT columns j0 .. j0+15 (keys N.. are 0), 16 rows at a time
        for (int e0 = 0; e0 < d; e0 += 16) {
            __mmask16 em = mask16(d - e0);
            __m512 r[16];
#pragma clang loop unroll(full)
            for (int i = 0; i < 16; i++)
                r[i] = j0 + i < N ? _mm512_maskz_loadu_ps(em, k + (size_t)(j0 + i) * ld + e0) : _mm512_setzero_ps();
            transpose16x16(r);
            for (int c = 0; c < 16 && e0 + c < d; c++) _mm512_storeu_ps(kT + (size_t)(e0 + c) * SMALL_N + j0, r[c]);
        }
    __mmask16 cm[4];
#pragma clang loop unroll(full)
    for (int c = 0; c < NV; c++) cm[c] = mask16(N - 16 * c);
    int i0 = 0;
    for (; i0 + ATT_MR <= N; i0 += ATT_MR)
        attention_rows_512(ATT_MR, NV, i0, N, d, q, v, ld, bias, mask, out, ldo, kT, P, cm);
    switch (N - i0) {                                 // the last rows: a tile of exactly that many
    case 1: attention_rows_512(1, NV, i0, N, d, q, v, ld, bias, mask, out, ldo, kT, P, cm); break;
    case 2: attention_rows_512(2, NV, i0, N, d, q, v, ld, bias, mask, out, ldo, kT, P, cm); break;
    case 3: attention_rows_512(3, NV, i0, N, d, q, v, ld, bias, mask, out, ldo, kT, P, cm); break;
    case 4: attention_rows_512(4, NV, i0, N, d, q, v, ld, bias, mask, out, ldo, kT, P, cm); break;
    case 5: attention_rows_512(5, NV, i0, N, d, q, v, ld, bias, mask, out, ldo, kT, P, cm); break;
    default: break;
    }
}

AVX512 static void attention_fused_dispatch(int N, int d, const float *q, const float *k, const float *v, int ld,
                                            const float *bias, const float *mask, float *out, int ldo, float *work) {
    switch ((N + 15) / 16) {
    case 1: attention_fused_512(1, N, d, q, k, v, ld, bias, mask, out, ldo, work); return;
    case 2: attention_fused_512(2, N, d, q, k, v, ld, bias, mask, out, ldo, work); return;
    case 3: attention_fused_512(3, N, d, q, k, v, ld, bias, mask, out, ldo, work); return;
    default: attention_fused_512(4, N, d, q, k, v, ld, bias, mask, out, ldo, work); return;
    }
}
#endif

void seg_window_attention(int N, int d, const float *q, const float *k, const float *v, int ld, const float *bias,
                          const float *mask, float *out, int ldo, float *work) {
#if defined(__x86_64__)
    if (seg_kernel_isa() == 2 && N <= SMALL_N && N > 0) {
        attention_fused_dispatch(N, d, q, k, v, ld, bias, mask, out, ldo, work);
        return;
    }
#endif
    float *S = work;                                   // (N, N) scores, then probabilities
    float *Pk = S + (size_t)N * N;                     // k packed as a (N, d) weight: S += q Pk^T
    float *Pv = Pk + seg_packed_floats(N, d);          // v packed as a (d, N) weight over N inputs: out = S Pv^T
    if (mask) {
        for (size_t i = 0; i < (size_t)N * N; i++) S[i] = bias[i] + mask[i];
    } else {
        memcpy(S, bias, (size_t)N * N * sizeof(float));
    }
    seg_pack_nt(k, N, d, ld, Pk);
    seg_gemm_packed(N, 0, N, d, q, ld, Pk, d, 0, S, N, NULL, 1, 0);
#if defined(__x86_64__)
    if (seg_kernel_isa() == 2) softmax_rows_512(S, N); else
#endif
    softmax_rows_c(S, N);
    seg_pack_nn(v, N, d, ld, Pv);
    seg_gemm_packed(N, 0, d, N, S, N, Pv, N, 0, out, ldo, NULL, 0, 0);
}

void seg_window_attention_ref(int N, int d, const float *q, const float *k, const float *v, int ld, const float *bias,
                              const float *mask, float *out, int ldo) {
    double p[N];
    for (int i = 0; i < N; i++) {
        double m = -INFINITY, sum = 0;
        for (int j = 0; j < N; j++) {
            double s = bias[i * N + j] + (mask ? mask[i * N + j] : 0.0);
            for (int e = 0; e < d; e++) s += (double)q[(size_t)i * ld + e] * k[(size_t)j * ld + e];
            p[j] = s;
            if (s > m) m = s;
        }
        for (int j = 0; j < N; j++) { p[j] = exp(p[j] - m); sum += p[j]; }
        for (int e = 0; e < d; e++) {
            double acc = 0;
            for (int j = 0; j < N; j++) acc += p[j] / sum * v[(size_t)j * ld + e];
            out[(size_t)i * ldo + e] = (float)acc;
        }
    }
}
