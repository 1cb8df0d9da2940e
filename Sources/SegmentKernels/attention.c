// Window attention for one (window, head) pair on top of the packed GEMM: S = bias (+ mask) + q k^T (k packed as
// a 32-column-panel weight), softmax in place, out = S v (v packed the same way). The packing is 2 N d floats per
// pair, small next to the 4 N^2 d flops; it replaces OpenBLAS calls whose own packing dominated these 49x49x32
// products.
#include "segment_kernels.h"
#include "simd_math.h"

#include <math.h>
#include <string.h>

#define CUTOFF (-80.0f)

size_t seg_attention_work_floats(int N, int d) {
    return (size_t)N * N + seg_packed_floats(N, d) + seg_packed_floats(d, N);
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

void seg_window_attention(int N, int d, const float *q, const float *k, const float *v, int ld, const float *bias,
                          const float *mask, float *out, int ldo, float *work) {
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
