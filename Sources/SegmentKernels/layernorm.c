// LayerNorm of one row (PyTorch's nn.LayerNorm: biased variance, eps 1e-5), two passes over the row: the mean,
// then the centred sum of squares, then the affine output. AVX-512 where the CPU has it (rows of up to 192 values
// held in registers, several rows at once), else plain C.
#include "segment_kernels.h"
#include "simd_math.h"

#include <math.h>

// Row r of x: row xrow[r] of the matrix at x (row stride ldx), or row r itself without a row table.
static inline __attribute__((always_inline)) const float *xrow_ptr(const float *x, int ldx, const int *xrow, int r) {
    return x + (size_t)(xrow ? xrow[r] : r) * ldx;
}

static void layernorm_c(const float *x, float *y, int C, const float *g, const float *b) {
    float s = 0.0f, q = 0.0f;
    for (int c = 0; c < C; c++) s += x[c];
    float mean = s / (float)C;
    for (int c = 0; c < C; c++) { float d = x[c] - mean; q += d * d; }
    float rstd = 1.0f / sqrtf(q / (float)C + 1e-5f);
    for (int c = 0; c < C; c++) y[c] = (x[c] - mean) * rstd * g[c] + b[c];
}

#if defined(__x86_64__)
// Rows of up to 12 x 16 values stay in registers: one read of x instead of three. NV = vectors per row, R = rows
// at once (their reductions overlap); both compile-time constants per instance. The same operations in the same
// order as the three-pass loop below, so both give the same bits.
AVX512 static inline __attribute__((always_inline))
void layernorm_regs_512(const int NV, const int R, const float *const *x, float *y, int ldy, int C,
                        const float *g, const float *b) {
    __m512 v[3][12], s[3], q[3], mean[3], rstd[3];
    __mmask16 k[12];
#pragma clang loop unroll(full)
    for (int i = 0; i < NV; i++) k[i] = mask16(C - 16 * i);
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        s[r] = _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int i = 0; i < NV; i++) {
            v[r][i] = _mm512_maskz_loadu_ps(k[i], x[r] + 16 * i);
            s[r] = _mm512_add_ps(s[r], v[r][i]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        mean[r] = _mm512_set1_ps(_mm512_reduce_add_ps(s[r]) / (float)C);
        q[r] = _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int i = 0; i < NV; i++) {
            v[r][i] = _mm512_maskz_sub_ps(k[i], v[r][i], mean[r]);
            q[r] = _mm512_fmadd_ps(v[r][i], v[r][i], q[r]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) rstd[r] = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(q[r]) / (float)C + 1e-5f));
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++)
#pragma clang loop unroll(full)
        for (int i = 0; i < NV; i++)
            _mm512_mask_storeu_ps(y + (size_t)r * ldy + 16 * i, k[i],
                                  _mm512_fmadd_ps(_mm512_mul_ps(v[r][i], rstd[r]), _mm512_maskz_loadu_ps(k[i], g + 16 * i),
                                                  _mm512_maskz_loadu_ps(k[i], b + 16 * i)));
}

// Rows longer than 12 vectors: three passes over memory.
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

AVX512 static void layernorm_rows_512(const float *x, int ldx, const int *xrow, float *y, int ldy, int rows, int C,
                                      const float *g, const float *b) {
    int r = 0;
#define LN_CASE(NV, R) case NV: \
        for (; r + R <= rows; r += R) { \
            const float *xr[3]; \
            for (int i = 0; i < R; i++) xr[i] = xrow_ptr(x, ldx, xrow, r + i); \
            layernorm_regs_512(NV, R, xr, y + (size_t)r * ldy, ldy, C, g, b); \
        } \
        for (; r < rows; r++) { \
            const float *xr[1] = {xrow_ptr(x, ldx, xrow, r)}; \
            layernorm_regs_512(NV, 1, xr, y + (size_t)r * ldy, ldy, C, g, b); \
        } \
        return;
    switch ((C + 15) / 16) {       // R x NV <= 24 vectors in registers
    LN_CASE(1, 3) LN_CASE(2, 3) LN_CASE(3, 3) LN_CASE(4, 3) LN_CASE(5, 3) LN_CASE(6, 3) LN_CASE(7, 3) LN_CASE(8, 3)
    LN_CASE(9, 2) LN_CASE(10, 2) LN_CASE(11, 2) LN_CASE(12, 2)
    default:
        for (; r < rows; r++) layernorm_512(xrow_ptr(x, ldx, xrow, r), y + (size_t)r * ldy, C, g, b);
    }
#undef LN_CASE
}
#endif

void seg_layernorm_rows_gather(const float *x, int ldx, const int *xrow, float *y, int ldy, int rows, int C,
                               const float *gamma, const float *beta) {
#if defined(__x86_64__)
    if (seg_kernel_isa() == 2) { layernorm_rows_512(x, ldx, xrow, y, ldy, rows, C, gamma, beta); return; }
#endif
    for (int r = 0; r < rows; r++) layernorm_c(xrow_ptr(x, ldx, xrow, r), y + (size_t)r * ldy, C, gamma, beta);
}

void seg_layernorm_rows(const float *x, int ldx, float *y, int ldy, int rows, int C, const float *gamma,
                        const float *beta) {
    seg_layernorm_rows_gather(x, ldx, NULL, y, ldy, rows, C, gamma, beta);
}

void seg_layernorm_row(const float *x, float *y, int C, const float *gamma, const float *beta) {
    seg_layernorm_rows(x, C, y, C, 1, C, gamma, beta);
}
