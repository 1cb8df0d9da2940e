// The output head's per-pixel part (see include/segment_kernels.h): LayerNorm of each pixel's E features, the 1x1
// class convolution, and the logits, or the first-maximum label (and softmax probabilities), written to the planes.
// The x4 expand GEMM hands over each token's S = P*P pixels channel-major (X[c*S + s]) because its weight rows are
// permuted at load (seg_head_order), so with P = 4 a zmm register holds one channel of the token's 16 pixels and
// every step is vertical: no horizontal sums, no transposes. Plain C otherwise (any P), the naive twin of both.
#include "segment_kernels.h"
#include "simd_math.h"

#include <math.h>
#include <string.h>

#define CUTOFF (-80.0f)    // softmax terms below e^-80 of the maximum are 0, as in the attention

size_t seg_head_work_floats(int E, int P, int nc) { return (size_t)P * P * (size_t)(E + nc + 2); }

void seg_head_order(const float *W, int E, int P, float *out) {
    int S = P * P;
    for (int s = 0; s < S; s++)
        for (int c = 0; c < E; c++) memcpy(out + ((size_t)c * S + s) * E, W + ((size_t)s * E + c) * E, (size_t)E * sizeof(float));
}

// One token's S pixels, plain C: per pixel sums in channel order.
static void head_token_c(const float *x, int E, int P, const float *g, const float *b, const float *W, int nc,
                         long pix, int H, size_t plane, float *logits, unsigned char *labels, float *probs,
                         float *features, float *work) {
    int S = P * P;
    float *xh = work, *sc = work + (size_t)E * S, *mean = sc + (size_t)nc * S, *rstd = mean + S;
    for (int s = 0; s < S; s++) mean[s] = 0.0f, rstd[s] = 0.0f;
    for (int c = 0; c < E; c++)
        for (int s = 0; s < S; s++) mean[s] += x[c * S + s];
    for (int s = 0; s < S; s++) mean[s] /= (float)E;
    for (int c = 0; c < E; c++)
        for (int s = 0; s < S; s++) { float d = x[c * S + s] - mean[s]; rstd[s] += d * d; }
    for (int s = 0; s < S; s++) rstd[s] = 1.0f / sqrtf(rstd[s] / (float)E + 1e-5f);
    for (int c = 0; c < E; c++)
        for (int s = 0; s < S; s++) xh[c * S + s] = (x[c * S + s] - mean[s]) * rstd[s] * g[c] + b[c];
    for (int k = 0; k < nc; k++) {
        for (int s = 0; s < S; s++) sc[k * S + s] = 0.0f;
        for (int c = 0; c < E; c++)
            for (int s = 0; s < S; s++) sc[k * S + s] += W[(size_t)k * E + c] * xh[c * S + s];
    }
    for (int s = 0; s < S; s++) {
        long p = pix + (long)(s / P) * H + s % P;
        if (features)
            for (int c = 0; c < E; c++) features[p * E + c] = xh[c * S + s];
        if (logits)
            for (int k = 0; k < nc; k++) logits[k * plane + p] = sc[k * S + s];
        if (labels) {
            int best = 0;
            for (int k = 1; k < nc; k++) if (sc[k * S + s] > sc[best * S + s]) best = k;
            labels[p] = (unsigned char)best;
        }
        if (probs) {
            float m = sc[s], sum = 0.0f;
            for (int k = 1; k < nc; k++) m = sc[k * S + s] > m ? sc[k * S + s] : m;
            for (int k = 0; k < nc; k++) {
                float t = sc[k * S + s] - m, e = t < CUTOFF ? 0.0f : expf(t);
                sc[k * S + s] = e;
                sum += e;
            }
            for (int k = 0; k < nc; k++) probs[k * plane + p] = sc[k * S + s] / sum;
        }
    }
}

#if defined(__x86_64__)
// P = 4: the 16 pixels of a token in the lanes of one zmm; lane s is pixel (s / 4, s % 4) of the token.
#define KCH 16     // classes per pass (accumulators in registers)

AVX512 static inline void store_lanes(float *dst, long pix, int H, __m512 v) {
    _mm_storeu_ps(dst + pix, _mm512_extractf32x4_ps(v, 0));
    _mm_storeu_ps(dst + pix + H, _mm512_extractf32x4_ps(v, 1));
    _mm_storeu_ps(dst + pix + 2 * (long)H, _mm512_extractf32x4_ps(v, 2));
    _mm_storeu_ps(dst + pix + 3 * (long)H, _mm512_extractf32x4_ps(v, 3));
}

AVX512 static void head_token_512(const float *x, int E, const float *g, const float *b, const float *W, int nc,
                                  long pix, int H, size_t plane, float *logits, unsigned char *labels, float *probs,
                                  float *features, float *work) {
    float *sc = work;      // (nc, 16) class scores
    // Mean and variance per pixel lane: four partial sums over the channels, then combined.
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int c = 0;
    for (; c + 4 <= E; c += 4) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + (c + 0) * 16));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + (c + 1) * 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + (c + 2) * 16));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + (c + 3) * 16));
    }
    for (; c < E; c++) s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + c * 16));
    __m512 mean = _mm512_div_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)), _mm512_set1_ps((float)E));
    s0 = s1 = s2 = s3 = _mm512_setzero_ps();
    for (c = 0; c + 4 <= E; c += 4) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + (c + 0) * 16), mean);
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + (c + 1) * 16), mean);
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(x + (c + 2) * 16), mean);
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(x + (c + 3) * 16), mean);
        s0 = _mm512_fmadd_ps(d0, d0, s0); s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2); s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; c < E; c++) { __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + c * 16), mean); s0 = _mm512_fmadd_ps(d, d, s0); }
    __m512 var = _mm512_div_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)), _mm512_set1_ps((float)E));
    __m512 rstd = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_sqrt_ps(_mm512_add_ps(var, _mm512_set1_ps(1e-5f))));
    // Class scores, KCH classes per pass over the channels (x^ recomputed per pass: cheaper than storing it).
    for (int k0 = 0; k0 < nc; k0 += KCH) {
        int kn = nc - k0 < KCH ? nc - k0 : KCH;
        __m512 acc[KCH];
#pragma clang loop unroll(full)
        for (int k = 0; k < KCH; k++) acc[k] = _mm512_setzero_ps();
        for (c = 0; c < E; c++) {
            __m512 xh = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + c * 16), mean), rstd),
                                        _mm512_set1_ps(g[c]), _mm512_set1_ps(b[c]));
            if (features && k0 == 0) {         // tests only: pixel s's channel c
                float lane[16];
                _mm512_storeu_ps(lane, xh);
                for (int q = 0; q < 16; q++) features[(pix + (long)(q / 4) * H + q % 4) * E + c] = lane[q];
            }
            const float *w = W + (size_t)k0 * E + c;
#pragma clang loop unroll(full)
            for (int k = 0; k < KCH; k++)
                if (k < kn) acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(w[(size_t)k * E]), xh, acc[k]);
        }
#pragma clang loop unroll(full)
        for (int k = 0; k < KCH; k++)
            if (k < kn) _mm512_storeu_ps(sc + (size_t)(k0 + k) * 16, acc[k]);
    }
    if (logits)
        for (int k = 0; k < nc; k++) store_lanes(logits + k * plane, pix, H, _mm512_loadu_ps(sc + k * 16));
    if (labels) {
        __m512 best = _mm512_loadu_ps(sc);
        __m512i idx = _mm512_setzero_si512();
        for (int k = 1; k < nc; k++) {         // strictly greater: the first maximum wins
            __m512 v = _mm512_loadu_ps(sc + k * 16);
            __mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
            best = _mm512_mask_mov_ps(best, gt, v);
            idx = _mm512_mask_mov_epi32(idx, gt, _mm512_set1_epi32(k));
        }
        unsigned char lab[16];
        _mm_storeu_si128((__m128i *)lab, _mm512_cvtepi32_epi8(idx));
        for (int r = 0; r < 4; r++) memcpy(labels + pix + (long)r * H, lab + 4 * r, 4);
    }
    if (probs) {
        __m512 m = _mm512_loadu_ps(sc), sum = _mm512_setzero_ps();
        for (int k = 1; k < nc; k++) m = _mm512_max_ps(m, _mm512_loadu_ps(sc + k * 16));
        for (int k = 0; k < nc; k++) {
            __m512 t = _mm512_sub_ps(_mm512_loadu_ps(sc + k * 16), m);
            __m512 e = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, _mm512_set1_ps(CUTOFF), _CMP_GE_OQ), exp512(t));
            _mm512_storeu_ps(sc + k * 16, e);
            sum = _mm512_add_ps(sum, e);
        }
        for (int k = 0; k < nc; k++) store_lanes(probs + k * plane, pix, H, _mm512_div_ps(_mm512_loadu_ps(sc + k * 16), sum));
    }
}
#endif

void seg_output_head(int n, const float *X, int E, int P, const float *gamma, const float *beta, const float *W,
                     int nc, const long *pix, int H, size_t plane, float *logits, unsigned char *labels, float *probs,
                     float *features, float *work) {
    size_t tok = (size_t)E * P * P;
#if defined(__x86_64__)
    if (seg_kernel_isa() == 2 && P == 4) {
        for (int t = 0; t < n; t++)
            head_token_512(X + t * tok, E, gamma, beta, W, nc, pix[t], H, plane, logits, labels, probs, features, work);
        return;
    }
#endif
    for (int t = 0; t < n; t++)
        head_token_c(X + t * tok, E, P, gamma, beta, W, nc, pix[t], H, plane, logits, labels, probs, features, work);
}
