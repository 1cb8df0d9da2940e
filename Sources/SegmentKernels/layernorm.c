// LayerNorm of one row (PyTorch's nn.LayerNorm: biased variance, eps 1e-5), two passes over the row: the mean,
// then the centred sum of squares, then the affine output. AVX-512 where the CPU has it, else plain C.
#include "segment_kernels.h"
#include "simd_math.h"

#include <math.h>

static void layernorm_c(const float *x, float *y, int C, const float *g, const float *b) {
    float s = 0.0f, q = 0.0f;
    for (int c = 0; c < C; c++) s += x[c];
    float mean = s / (float)C;
    for (int c = 0; c < C; c++) { float d = x[c] - mean; q += d * d; }
    float rstd = 1.0f / sqrtf(q / (float)C + 1e-5f);
    for (int c = 0; c < C; c++) y[c] = (x[c] - mean) * rstd * g[c] + b[c];
}

#if defined(__x86_64__)
AVX512 static void layernorm_512(const float *x, float *y, int C, const float *g, const float *b) {
    __m512 s = _mm512_setzero_ps();
    for (int c = 0; c < C; c += 16) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(mask16(C - c), x + c));
    __m512 mean = _mm512_set1_ps(_mm512_reduce_add_ps(s) / (float)C), q = _mm512_setzero_ps();
    for (int c = 0; c < C; c += 16) {
        __mmask16 k = mask16(C - c);
        __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + c), mean);
        q = _mm512_fmadd_ps(d, d, q);
    }
    __m512 rstd = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(q) / (float)C + 1e-5f));
    for (int c = 0; c < C; c += 16) {
        __mmask16 k = mask16(C - c);
        __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + c), mean), rstd);
        _mm512_mask_storeu_ps(y + c, k, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, g + c), _mm512_maskz_loadu_ps(k, b + c)));
    }
}
#endif

void seg_layernorm_row(const float *x, float *y, int C, const float *gamma, const float *beta) {
#if defined(__x86_64__)
    if (seg_kernel_isa() == 2) { layernorm_512(x, y, C, gamma, beta); return; }
#endif
    layernorm_c(x, y, C, gamma, beta);
}
