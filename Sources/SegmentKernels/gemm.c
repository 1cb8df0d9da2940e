// segment's packed-weight GEMM (see include/segment_kernels.h for the contract).
//
// Layout: a weight's N output columns are cut into panels of NR = 32; a panel is stored k-major (32 floats per k),
// so the micro-kernel reads one 128-byte line of B per k and broadcasts one float of A per row. A (the activations)
// is read in place: no packing at run time. Loops: columns in chunks of NC, rows in chunks of MC (so the C chunk,
// the A block and the B panels of a chunk stay in L2), K in blocks of KC, then panels, then MR rows; each C micro
// tile is loaded (or started from the bias) and stored once per K block. Every element sums its K blocks in the
// same order whatever M, N and the chunking, so any split of rows or columns gives identical bits.
#include "segment_kernels.h"
#include "simd_math.h"

#include <math.h>
#include <string.h>

#define NR SEG_NR
#define KC 256
#define NC 256
#define MC 256

static int imin(int a, int b) { return a < b ? a : b; }

// Row r of C: row crow[r] of the matrix at C (row stride ldc), or row r itself without a row table.
static inline __attribute__((always_inline)) float *crow_ptr(float *C, int ldc, const int *crow, int r) {
    return C + (size_t)(crow ? crow[r] : r) * ldc;
}

size_t seg_packed_floats(int N, int K) { return (size_t)((N + NR - 1) / NR) * NR * (size_t)K; }

void seg_pack_nt(const float *W, int N, int K, int ldw, float *P) {
    for (int p = 0; p * NR < N; p++) {
        float *panel = P + (size_t)p * NR * K;
        for (int j = 0; j < NR; j++) {          // row n of W (contiguous reads) -> column j of the panel
            int n = p * NR + j;
            const float *w = W + (size_t)n * ldw;
            if (n < N)
                for (int k = 0; k < K; k++) panel[(size_t)k * NR + j] = w[k];
            else
                for (int k = 0; k < K; k++) panel[(size_t)k * NR + j] = 0.0f;
        }
    }
}

void seg_pack_nn(const float *B, int K, int N, int ldb, float *P) {
    for (int p = 0; p * NR < N; p++) {
        float *panel = P + (size_t)p * NR * K;
        int cols = imin(NR, N - p * NR);
        for (int k = 0; k < K; k++) {
            memcpy(panel + (size_t)k * NR, B + (size_t)k * ldb + p * NR, (size_t)cols * sizeof(float));
            for (int j = cols; j < NR; j++) panel[(size_t)k * NR + j] = 0.0f;
        }
    }
}

static float gelu1(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

void seg_gemm_packed_rows_ref(int M, int n0, int n1, int K, const float *A, int lda, const float *P, int Kp, int k0,
                              float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu) {
    for (int i = 0; i < M; i++)
        for (int n = n0; n < n1; n++) {
            const float *col = P + (size_t)(n / NR) * NR * Kp + (size_t)k0 * NR + n % NR;
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += A[(size_t)i * lda + k] * col[(size_t)k * NR];
            float *c = crow_ptr(C, ldc, crow, i) + n;
            float v = (accumulate ? *c : 0.0f) + (bias ? bias[n] : 0.0f) + s;
            *c = gelu ? gelu1(v) : v;
        }
}

void seg_gemm_packed_ref(int M, int n0, int n1, int K, const float *A, int lda, const float *P, int Kp, int k0,
                         float *C, int ldc, const float *bias, int accumulate, int gelu) {
    seg_gemm_packed_rows_ref(M, n0, n1, K, A, lda, P, Kp, k0, C, ldc, NULL, bias, accumulate, gelu);
}

// ---- portable micro-kernel: MR = 4 rows x 32 columns, plain C the compiler vectorises -------------------------

#define MRC 4

static inline __attribute__((always_inline))
void kernel_c(int rows, int kc, const float *A, int lda, const float *B, float *C, int ldc, const int *crow, int m,
              int ncols, const float *bias, int load_c, int gelu) {
    const float *a[MRC];
    float *c[MRC];
    for (int i = 0; i < MRC; i++) {
        int r = i < rows ? i : rows - 1;
        a[i] = A + (size_t)r * lda;
        c[i] = crow_ptr(C, ldc, crow, m + r);
    }
    float acc[MRC][NR];
    for (int i = 0; i < MRC; i++)
        for (int j = 0; j < NR; j++)
            acc[i][j] = (load_c && i < rows && j < ncols ? c[i][j] : 0.0f) + (bias && j < ncols ? bias[j] : 0.0f);
    for (int k = 0; k < kc; k++) {
        const float *b = B + (size_t)k * NR;
        for (int i = 0; i < MRC; i++) {
            float av = a[i][k];
            for (int j = 0; j < NR; j++) acc[i][j] += av * b[j];
        }
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < ncols; j++) c[i][j] = gelu ? gelu1(acc[i][j]) : acc[i][j];
}

#define DRIVER(NAME, KERNEL, MR, ATTR)                                                                              \
    ATTR static void NAME(int M, int n0, int n1, int K, const float *A, int lda, const float *P, int Kp, int k0,    \
                          float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu) {        \
        for (int nc0 = n0; nc0 < n1; nc0 += NC) {                                                                   \
            int nc1 = imin(n1, nc0 + NC);                                                                           \
            for (int mc0 = 0; mc0 < M; mc0 += MC) {                                                                 \
                int mc1 = imin(M, mc0 + MC);                                                                        \
                for (int kb = 0; kb < K; kb += KC) {                                                                \
                    int kc = imin(KC, K - kb), first = kb == 0, last = kb + kc == K;                                \
                    for (int j0 = nc0; j0 < nc1; j0 += NR) {                                                        \
                        const float *Bp = P + (size_t)(j0 / NR) * NR * Kp + (size_t)(k0 + kb) * NR;                 \
                        int ncols = imin(NR, nc1 - j0);                                                             \
                        for (int m = mc0; m < mc1; m += MR)                                                         \
                            KERNEL(imin(MR, mc1 - m), kc, A + (size_t)m * lda + kb, lda, Bp, C + j0, ldc, crow, m,  \
                                   ncols, first && bias ? bias + j0 : NULL, first ? accumulate : 1, last && gelu);   \
                    }                                                                                               \
                }                                                                                                   \
            }                                                                                                       \
        }                                                                                                           \
        if (K == 0)                                                                                                 \
            seg_gemm_packed_rows_ref(M, n0, n1, 0, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu);        \
    }

DRIVER(gemm_c, kernel_c, MRC, )

// ---- AVX2 micro-kernel: 6 rows x 16 columns (12 ymm accumulators), twice per 32-column panel ---------------------

#if defined(__x86_64__)
#define MR2 6

AVX2 static inline __m256i lane_mask(int n) {   // lanes 0 .. n-1 set (n clamped to 0 .. 8)
    n = n < 0 ? 0 : n > 8 ? 8 : n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

AVX2 static inline __attribute__((always_inline))
void half_avx2(int rows, int kc, const float *const *a, const float *B, float *const *c, int ncols,
               const float *bias, int load_c, int gelu) {
    __m256i m0 = lane_mask(ncols), m1 = lane_mask(ncols - 8);
    __m256 b0 = bias ? _mm256_maskload_ps(bias, m0) : _mm256_setzero_ps();
    __m256 b1 = bias ? _mm256_maskload_ps(bias + 8, m1) : _mm256_setzero_ps();
    __m256 acc[MR2][2];
#pragma clang loop unroll(full)
    for (int i = 0; i < MR2; i++) {
        acc[i][0] = load_c ? _mm256_add_ps(_mm256_maskload_ps(c[i], m0), b0) : b0;
        acc[i][1] = load_c ? _mm256_add_ps(_mm256_maskload_ps(c[i] + 8, m1), b1) : b1;
    }
    for (int k = 0; k < kc; k++) {
        __m256 w0 = _mm256_loadu_ps(B + (size_t)k * NR), w1 = _mm256_loadu_ps(B + (size_t)k * NR + 8);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR2; i++) {
            __m256 av = _mm256_broadcast_ss(a[i] + k);
            acc[i][0] = _mm256_fmadd_ps(av, w0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, w1, acc[i][1]);
        }
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < MR2; i++)
        if (i < rows) {
            _mm256_maskstore_ps(c[i], m0, gelu ? gelu256(acc[i][0]) : acc[i][0]);
            _mm256_maskstore_ps(c[i] + 8, m1, gelu ? gelu256(acc[i][1]) : acc[i][1]);
        }
}

AVX2 static inline __attribute__((always_inline))
void kernel_avx2(int rows, int kc, const float *A, int lda, const float *B, float *C, int ldc, const int *crow,
                 int m, int ncols, const float *bias, int load_c, int gelu) {
    const float *a[MR2];
    float *c[MR2], *c16[MR2];
    for (int i = 0; i < MR2; i++) {
        int r = i < rows ? i : rows - 1;      // rows past the tile recompute the last one and are never stored
        a[i] = A + (size_t)r * lda;
        c[i] = crow_ptr(C, ldc, crow, m + r);
        c16[i] = c[i] + 16;
    }
    half_avx2(rows, kc, a, B, c, ncols < 16 ? ncols : 16, bias, load_c, gelu);
    if (ncols > 16) half_avx2(rows, kc, a, B + 16, c16, ncols - 16, bias ? bias + 16 : NULL, load_c, gelu);
}

DRIVER(gemm_avx2, kernel_avx2, MR2, AVX2)
#endif

// ---- AVX-512 micro-kernels: 8 rows x 32 columns (one panel) and 6 rows x 64 columns (two panels) --------------
//
// Both keep 16 or 24 zmm accumulators. The two-panel tile does 24 FMAs per 6 broadcasts and 4 loads of B, against 16
// per 8 and 2 for the one-panel tile, which leaves the front end more room: it ran 10-15 % faster on the model's
// shapes (docs/perf-engine.md). The one-panel tile takes a chunk's last odd panel. Every output element gets the
// same operations in the same order in both (start from C + bias or bias, one FMA per k in k order), so which tile
// computed a column never changes its bits.

#if defined(__x86_64__)
#define MR512 8
#define MR512P 6

AVX512 static inline __attribute__((always_inline))
void tile512(const int MR, const int NV, int rows, int kc, const float *A, int lda, const float *B, size_t pstride,
             float *C, int ldc, const int *crow, int row0, int ncols, const float *bias, int load_c, int gelu) {
    // NV = zmm vectors per row: 2 (one panel; 1 if its live columns fit in 16) or 4 (two panels, B and B + pstride)
    const float *a[MR512];
    float *c[MR512];
    for (int i = 0; i < MR; i++) {
        int r = i < rows ? i : rows - 1;      // rows past the tile (one-panel tails) recompute the last one, never stored
        a[i] = A + (size_t)r * lda;
        c[i] = crow_ptr(C, ldc, crow, row0 + r);
    }
    const float *b[4];
    __mmask16 m[4];
    __m512 acc[MR512][4];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; v++) {
        b[v] = B + (size_t)(v / 2) * pstride + 16 * (v % 2);
        m[v] = mask16(ncols - 16 * v);
        __m512 bv = bias ? _mm512_maskz_loadu_ps(m[v], bias + 16 * v) : _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) acc[i][v] = load_c ? _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], c[i] + 16 * v), bv) : bv;
    }
    for (int k = 0; k < kc; k++) {
        __m512 w[4];
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) w[v] = _mm512_loadu_ps(b[v] + (size_t)k * NR);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            __m512 av = _mm512_set1_ps(a[i][k]);
#pragma clang loop unroll(full)
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(av, w[v], acc[i][v]);
        }
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++)
        if (i < rows) {
#pragma clang loop unroll(full)
            for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(c[i] + 16 * v, m[v], gelu ? gelu512(acc[i][v]) : acc[i][v]);
        }
}

AVX512 static inline __attribute__((always_inline))
void kernel512(int rows, int kc, const float *A, int lda, const float *B, float *C, int ldc, const int *crow, int m,
               int ncols, const float *bias, int load_c, int gelu) {
    if (ncols <= 16)        // a narrow last panel (e.g. 9 classes): half the FMAs
        tile512(MR512, 1, rows, kc, A, lda, B, 0, C, ldc, crow, m, ncols, bias, load_c, gelu);
    else
        tile512(MR512, 2, rows, kc, A, lda, B, 0, C, ldc, crow, m, ncols, bias, load_c, gelu);
}

AVX512 static void gemm_avx512(int M, int n0, int n1, int K, const float *A, int lda, const float *P, int Kp, int k0,
                               float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu) {
    for (int nc0 = n0; nc0 < n1; nc0 += NC) {
        int nc1 = imin(n1, nc0 + NC);
        for (int mc0 = 0; mc0 < M; mc0 += MC) {
            int mc1 = imin(M, mc0 + MC);
            for (int kb = 0; kb < K; kb += KC) {
                int kc = imin(KC, K - kb), first = kb == 0, last = kb + kc == K;
                int load_c = first ? accumulate : 1, g = last && gelu;
                for (int j0 = nc0; j0 < nc1;) {
                    const float *Bp = P + (size_t)(j0 / NR) * NR * Kp + (size_t)(k0 + kb) * NR;
                    const float *bj = first && bias ? bias + j0 : NULL;
                    int ncols = nc1 - j0;
                    if (ncols > NR) {           // two panels
                        int m = mc0, nc = imin(ncols, 2 * NR);
                        size_t ps = (size_t)NR * Kp;
#define TWO_PANEL(ROWS) tile512(ROWS, 4, ROWS, kc, A + (size_t)m * lda + kb, lda, Bp, ps, C + j0, ldc, crow, m, nc, bj, load_c, g)
                        for (; m + MR512P <= mc1; m += MR512P) TWO_PANEL(MR512P);
                        switch (mc1 - m) {      // the last rows: a tile of exactly that many (no rows recomputed)
                        case 1: TWO_PANEL(1); break;
                        case 2: TWO_PANEL(2); break;
                        case 3: TWO_PANEL(3); break;
                        case 4: TWO_PANEL(4); break;
                        case 5: TWO_PANEL(5); break;
                        default: break;
                        }
#undef TWO_PANEL
                        j0 += 2 * NR;
                    } else {
                        for (int m = mc0; m < mc1; m += MR512)
                            kernel512(imin(MR512, mc1 - m), kc, A + (size_t)m * lda + kb, lda, Bp, C + j0, ldc, crow, m,
                                      ncols, bj, load_c, g);
                        j0 += NR;
                    }
                }
            }
        }
    }
    if (K == 0) seg_gemm_packed_rows_ref(M, n0, n1, 0, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu);
}
#endif

// ---- dispatch ---------------------------------------------------------------------------------------------------

static int selected = -1;   // -1: not chosen yet; written once with the same value by whoever gets there first

static int best_isa(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

int seg_kernel_isa(void) {
    int s = __atomic_load_n(&selected, __ATOMIC_RELAXED);
    if (s < 0) { s = best_isa(); __atomic_store_n(&selected, s, __ATOMIC_RELAXED); }
    return s;
}

void seg_kernel_select(int isa) {
    int best = best_isa();
    __atomic_store_n(&selected, isa < 0 || isa > best ? best : isa, __ATOMIC_RELAXED);
}

void seg_gemm_packed_rows(int M, int n0, int n1, int K, const float *A, int lda, const float *P, int Kp, int k0,
                          float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu) {
    if (M <= 0 || n1 <= n0) return;
    switch (seg_kernel_isa()) {
#if defined(__x86_64__)
    case 2: gemm_avx512(M, n0, n1, K, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu); return;
    case 1: gemm_avx2(M, n0, n1, K, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu); return;
#endif
    default: gemm_c(M, n0, n1, K, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu); return;
    }
}

void seg_gemm_packed(int M, int n0, int n1, int K, const float *A, int lda, const float *P, int Kp, int k0,
                     float *C, int ldc, const float *bias, int accumulate, int gelu) {
    seg_gemm_packed_rows(M, n0, n1, K, A, lda, P, Kp, k0, C, ldc, NULL, bias, accumulate, gelu);
}
