// bf16 kernels (see include/segment_kernels.h for the contracts): the packed GEMM and the window attention with
// bf16 operands and fp32 accumulation.
//
// Layout of a bf16 packed weight: panels of 32 output columns as in the fp32 pack, each of Kr = K rounded up to 32
// rows, stored as k pairs: P[p*32*Kr + (k/2)*64 + j*2 + k%2] = W[p*32 + j, k]. One k pair of a panel is 128 bytes:
// the first 64 bytes are columns 0..15 (one zmm operand of vdpbf16ps, or one row of an AMX B tile with a row stride
// of 128 bytes), the next 64 bytes columns 16..31. Rows k >= K and columns >= N are zero.
//
// The activations stay fp32 in memory; the GEMM rounds a block of A (rows x up to KC columns) to bf16 pairs in a
// stack buffer (round to nearest even, vcvtne2ps2bf16) and runs the micro-kernel from there. Every output element
// sums its K blocks in the same order whatever the split of rows and columns, so splits give identical bits.
//
// Paths, chosen at run time: AMX-BF16 tiles (16 rows x 32 columns per tile pair, K steps of 32), AVX512-BF16
// (vdpbf16ps, 6 rows x 64 columns as the fp32 AVX-512 kernel), and the plain C twin. The AMX path needs the
// kernel's permission for the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM), asked once at selection.
#include "segment_kernels.h"
#include "simd_math.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

#define NR SEG_NR
#define KC 256          // K columns of A per block (even, a multiple of 32: pairs and AMX tile depth stay aligned)
#define NC 256
#define MCB 48          // rows of A rounded per block (48 x 256 bf16 = 24 KB of stack)
#define CUTOFF (-80.0f)

static int imin(int a, int b) { return a < b ? a : b; }
static int round32(int k) { return (k + 31) & ~31; }

static inline __attribute__((always_inline)) float *crow_ptr(float *C, int ldc, const int *crow, int r) {
    return C + (size_t)(crow ? crow[r] : r) * ldc;
}

// ---- rounding ----------------------------------------------------------------------------------------------------

uint16_t seg_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu))   // NaN: keep the sign, quiet it
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7FFFu + ((u >> 16) & 1u);                               // round half to even on bit 16
    return (uint16_t)(u >> 16);
}

float seg_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

void seg_f32_to_bf16_ref(const float *x, uint16_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = seg_bf16_round(x[i]);
}

#if defined(__x86_64__)
#define BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))
#define AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma,amx-tile,amx-bf16")))

BF16 static void f32_to_bf16_512(const float *x, uint16_t *y, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        _mm512_storeu_si512(y + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = seg_bf16_round(x[i]);
}
#endif

// ---- CPU features ------------------------------------------------------------------------------------------------

static int bf16_selected = -1;

#if defined(__x86_64__)
static unsigned long long xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

static int best_bf16(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid_count(1, 0, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;     // OSXSAVE
    unsigned long long x = xcr0();
    if ((x & 0xE6) != 0xE6) return 0;                        // the OS saves SSE, AVX, opmask and zmm state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 16))) return 0;     // AVX512F
    unsigned edx7 = d;
    if (!(b & (1u << 30)) || !(b & (1u << 31))) return 0;    // AVX512BW, AVX512VL
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) return 0;     // AVX512_BF16
    int best = 1;
#if defined(__linux__)
    // AMX-TILE (edx bit 24) and AMX-BF16 (bit 22), the OS enabling tile state (XCR0 bits 17, 18), and this process
    // allowed to use it (ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA).
    if ((edx7 & (1u << 24)) && (edx7 & (1u << 22)) && (x & (3ull << 17)) == (3ull << 17)
        && syscall(SYS_arch_prctl, 0x1023, 18) == 0)
        best = 2;
#else
    (void)edx7;
#endif
    return best;
#else
    return 0;
#endif
}

int seg_bf16_isa(void) {
    int s = __atomic_load_n(&bf16_selected, __ATOMIC_RELAXED);
    if (s < 0) { s = best_bf16(); __atomic_store_n(&bf16_selected, s, __ATOMIC_RELAXED); }
    return s;
}

void seg_bf16_select(int isa) {
    int best = best_bf16();
    __atomic_store_n(&bf16_selected, isa < 0 || isa > best ? best : isa, __ATOMIC_RELAXED);
}

void seg_f32_to_bf16(const float *x, uint16_t *y, size_t n) {
#if defined(__x86_64__)
    if (seg_bf16_isa() >= 1) { f32_to_bf16_512(x, y, n); return; }
#endif
    seg_f32_to_bf16_ref(x, y, n);
}

// ---- packing -----------------------------------------------------------------------------------------------------

size_t seg_packed_bf16_elems(int N, int K) { return (size_t)((N + NR - 1) / NR) * NR * (size_t)round32(K); }

void seg_pack_nt_bf16(const float *W, int N, int K, int ldw, uint16_t *P) {
    int Kr = round32(K);
    for (int p = 0; p * NR < N; p++) {
        uint16_t *panel = P + (size_t)p * NR * Kr;
        for (int j = 0; j < NR; j++) {
            int n = p * NR + j;
            for (int k = 0; k < Kr; k++)
                panel[(size_t)(k / 2) * 2 * NR + j * 2 + k % 2] = n < N && k < K ? seg_bf16_round(W[(size_t)n * ldw + k]) : 0;
        }
    }
}

void seg_pack_nn_bf16(const float *B, int K, int N, int ldb, uint16_t *P) {
    int Kr = round32(K);
    for (int p = 0; p * NR < N; p++) {
        uint16_t *panel = P + (size_t)p * NR * Kr;
        for (int k = 0; k < Kr; k++)
            for (int j = 0; j < NR; j++) {
                int n = p * NR + j;
                panel[(size_t)(k / 2) * 2 * NR + j * 2 + k % 2] = n < N && k < K ? seg_bf16_round(B[(size_t)k * ldb + n]) : 0;
            }
    }
}

// ---- the naive twin ----------------------------------------------------------------------------------------------

static float gelu1(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

void seg_gemm_bf16_rows_ref(int M, int n0, int n1, int K, const float *A, int lda, const uint16_t *P, int Kp, int k0,
                            float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu) {
    int Kr = round32(Kp);
    for (int i = 0; i < M; i++)
        for (int n = n0; n < n1; n++) {
            const uint16_t *panel = P + (size_t)(n / NR) * NR * Kr;
            double s = 0;       // bf16 x bf16 products are exact in float; the sum in double is the exact reference
            for (int k = 0; k < K; k++) {
                int kk = k0 + k;
                s += (double)seg_bf16_to_f32(seg_bf16_round(A[(size_t)i * lda + k]))
                   * seg_bf16_to_f32(panel[(size_t)(kk / 2) * 2 * NR + (n % NR) * 2 + kk % 2]);
            }
            float *c = crow_ptr(C, ldc, crow, i) + n;
            float v = (float)((accumulate ? *c : 0.0f) + (bias ? bias[n] : 0.0f) + s);
            *c = gelu ? gelu1(v) : v;
        }
}

// ---- AVX512-BF16 --------------------------------------------------------------------------------------------------

#if defined(__x86_64__)
#define MRB 6

/// Rows r0 .. r0+rows-1 of A, columns kb .. kb+kc-1, rounded to bf16 into buf (row stride KC), zero up to the next
/// multiple of 32 columns (a whole AMX tile row; an odd kc gets a zero partner). Rows rows .. rows_to-1 all zero.
BF16 static void round_block(const float *A, int lda, int rows, int rows_to, int kc, uint16_t *buf) {
    int kr = round32(kc);
    for (int r = 0; r < rows_to; r++) {
        const float *a = A + (size_t)r * lda;
        uint16_t *o = buf + (size_t)r * KC;
        for (int k = 0; k < kr; k += 32) {
            __m512 lo = r < rows ? _mm512_maskz_loadu_ps(mask16(kc - k), a + k) : _mm512_setzero_ps();
            __m512 hi = r < rows ? _mm512_maskz_loadu_ps(mask16(kc - k - 16), a + k + 16) : _mm512_setzero_ps();
            _mm512_storeu_si512(o + k, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

// MR rows x NV zmm of columns (NV = 1, 2: one panel; 4: two panels at B and B + pstride), kc2 k pairs.
BF16 static inline __attribute__((always_inline))
void tile_bf16(const int MR, const int NV, int rows, int kc2, const uint16_t *abuf, const uint16_t *B, size_t pstride,
               float *C, int ldc, const int *crow, int row0, int ncols, const float *bias, int load_c, int gelu) {
    const uint32_t *a[MRB];
    float *c[MRB];
    for (int i = 0; i < MR; i++) {
        int r = i < rows ? i : rows - 1;
        a[i] = (const uint32_t *)(abuf + (size_t)r * KC);
        c[i] = crow_ptr(C, ldc, crow, row0 + r);
    }
    const uint16_t *b[4];
    __mmask16 m[4];
    __m512 acc[MRB][4];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; v++) {
        b[v] = B + (size_t)(v / 2) * pstride + 32 * (v % 2);
        m[v] = mask16(ncols - 16 * v);
        __m512 bv = bias ? _mm512_maskz_loadu_ps(m[v], bias + 16 * v) : _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) acc[i][v] = load_c ? _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], c[i] + 16 * v), bv) : bv;
    }
    for (int p = 0; p < kc2; p++) {
        __m512bh w[4];
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) w[v] = (__m512bh)_mm512_loadu_si512(b[v] + (size_t)p * 2 * NR);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i][p]);
#pragma clang loop unroll(full)
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, w[v]);
        }
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++)
        if (i < rows) {
#pragma clang loop unroll(full)
            for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(c[i] + 16 * v, m[v], gelu ? gelu512(acc[i][v]) : acc[i][v]);
        }
}

BF16 static void gemm_bf16_512(int M, int n0, int n1, int K, const float *A, int lda, const uint16_t *P, int Kp, int k0,
                               float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu) {
    uint16_t abuf[MCB * KC] __attribute__((aligned(64)));        // [MCB, KC] bf16 rows of the current A block
    size_t ps = (size_t)NR * round32(Kp);
    for (int nc0 = n0; nc0 < n1; nc0 += NC) {
        int nc1 = imin(n1, nc0 + NC);
        for (int mc0 = 0; mc0 < M; mc0 += MCB) {
            int mc1 = imin(M, mc0 + MCB), mb = mc1 - mc0;
            for (int kb = 0; kb < K; kb += KC) {
                int kc = imin(KC, K - kb), kc2 = (kc + 1) / 2, first = kb == 0, last = kb + kc == K;
                int load_c = first ? accumulate : 1, g = last && gelu;
                round_block(A + (size_t)mc0 * lda + kb, lda, mb, mb, kc, abuf);
                for (int j0 = nc0; j0 < nc1;) {
                    const uint16_t *Bp = P + (size_t)(j0 / NR) * ps + (size_t)(k0 + kb) * NR;
                    const float *bj = first && bias ? bias + j0 : NULL;
                    int ncols = nc1 - j0;
                    int NVn = ncols > NR ? 4 : ncols > 16 ? 2 : 1, nc = imin(ncols, NVn == 4 ? 2 * NR : NR);
                    int m = 0;
#define TILE(R, NV) tile_bf16(R, NV, R, kc2, abuf + (size_t)m * KC, Bp, ps, C + j0, ldc, crow, mc0 + m, nc, bj, load_c, g)
#define TILES(NV)                                                                                                   \
    for (; m + MRB <= mb; m += MRB) TILE(MRB, NV);                                                                  \
    switch (mb - m) {                                                                                               \
    case 1: TILE(1, NV); break;                                                                                     \
    case 2: TILE(2, NV); break;                                                                                     \
    case 3: TILE(3, NV); break;                                                                                     \
    case 4: TILE(4, NV); break;                                                                                     \
    case 5: TILE(5, NV); break;                                                                                     \
    default: break;                                                                                                 \
    }
                    if (NVn == 4) { TILES(4) } else if (NVn == 2) { TILES(2) } else { TILES(1) }
#undef TILES
#undef TILE
                    j0 += NVn == 4 ? 2 * NR : NR;
                }
            }
        }
    }
    if (K == 0) seg_gemm_bf16_rows_ref(M, n0, n1, 0, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu);
}

// ---- AMX-BF16 ----------------------------------------------------------------------------------------------------
//
// Tiles: 0..3 = C (rows 0-15 / 16-31 of the block x columns 0-15 / 16-31 of a panel), 4, 5 = A (the two row halves,
// 16 rows x 32 k), 6, 7 = B (16 k pairs x the panel's two column halves). A block of A is rounded into a zero-padded
// 32-row buffer; each K step of 32 does 4 tile products. The fp32 partial sums go through a 32 x 32 buffer into C
// with the epilogue (C + bias or bias, GELU on the last K block), in AVX-512.

struct tileconfig {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

// The kernel's body, written once over tile operations: TCONFIG(cfg), TZERO(t), TLOAD(t, base, stride),
// TDP(c, a, b), TSTORE(t, base, stride), TRELEASE(). gemm_bf16_amx binds them to the AMX instructions;
// seg_gemm_bf16_amx_emulated to plain C on an array of tiles (what the instructions are documented to do), so the
// schedule, the layouts and the epilogue run and are tested on a CPU without AMX.
#define GEMM_AMX_BODY                                                                                               \
    struct tileconfig cfg;                                                                                          \
    memset(&cfg, 0, sizeof cfg);                                                                                    \
    cfg.palette = 1;                                                                                                \
    for (int t = 0; t < 8; t++) { cfg.colsb[t] = 64; cfg.rows[t] = 16; }                                            \
    TCONFIG(&cfg);                                                                                                  \
    uint16_t abuf[32 * KC] __attribute__((aligned(64)));     /* [32, KC] bf16 rows of the current A block */        \
    float cbuf[32 * 32] __attribute__((aligned(64)));        /* [32, 32] the block's product over one K block */    \
    size_t ps = (size_t)NR * round32(Kp);                                                                           \
    for (int mc0 = 0; mc0 < M; mc0 += 32) {                                                                         \
        int mb = imin(32, M - mc0);                                                                                 \
        for (int kb = 0; kb < K; kb += KC) {                                                                        \
            int kc = imin(KC, K - kb), first = kb == 0, last = kb + kc == K;                                        \
            int load_c = first ? accumulate : 1, g = last && gelu;                                                  \
            round_block(A + (size_t)mc0 * lda + kb, lda, mb, 32, kc, abuf);                                         \
            for (int j0 = n0; j0 < n1; j0 += NR) {                                                                  \
                const uint16_t *Bp = P + (size_t)(j0 / NR) * ps + (size_t)(k0 + kb) * NR;                           \
                TZERO(0); TZERO(1); TZERO(2); TZERO(3);                                                             \
                for (int k = 0; k < kc; k += 32) {                                                                  \
                    TLOAD(4, abuf + k, KC * 2);                                                                     \
                    TLOAD(5, abuf + 16 * KC + k, KC * 2);                                                           \
                    TLOAD(6, Bp + (size_t)k * NR, 4 * NR);                                                          \
                    TLOAD(7, Bp + (size_t)k * NR + 32, 4 * NR);                                                     \
                    TDP(0, 4, 6);                                                                                   \
                    TDP(1, 4, 7);                                                                                   \
                    TDP(2, 5, 6);                                                                                   \
                    TDP(3, 5, 7);                                                                                   \
                }                                                                                                   \
                TSTORE(0, cbuf, 32 * 4);                                                                            \
                TSTORE(1, cbuf + 16, 32 * 4);                                                                       \
                TSTORE(2, cbuf + 16 * 32, 32 * 4);                                                                  \
                TSTORE(3, cbuf + 16 * 32 + 16, 32 * 4);                                                             \
                int ncols = imin(NR, n1 - j0);                                                                      \
                const float *bj = first && bias ? bias + j0 : NULL;                                                 \
                for (int h = 0; h < 2; h++) {                                                                       \
                    __mmask16 mk = mask16(ncols - 16 * h);                                                          \
                    __m512 bv = bj ? _mm512_maskz_loadu_ps(mk, bj + 16 * h) : _mm512_setzero_ps();                  \
                    for (int r = 0; r < mb; r++) {                                                                  \
                        float *c = crow_ptr(C, ldc, crow, mc0 + r) + j0 + 16 * h;                                   \
                        __m512 v = _mm512_add_ps(_mm512_loadu_ps(cbuf + r * 32 + 16 * h), bv);                      \
                        if (load_c) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, c), v);                             \
                        _mm512_mask_storeu_ps(c, mk, g ? gelu512(v) : v);                                           \
                    }                                                                                               \
                }                                                                                                   \
            }                                                                                                       \
        }                                                                                                           \
    }                                                                                                               \
    TRELEASE();                                                                                                     \
    if (K == 0) seg_gemm_bf16_rows_ref(M, n0, n1, 0, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu);

AMX static void gemm_bf16_amx(int M, int n0, int n1, int K, const float *A, int lda, const uint16_t *P, int Kp, int k0,
                              float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu) {
#define TCONFIG(c) _tile_loadconfig(c)
#define TZERO(t) _tile_zero(t)
#define TLOAD(t, p, s) _tile_loadd(t, p, s)
#define TDP(c, a, b) _tile_dpbf16ps(c, a, b)
#define TSTORE(t, p, s) _tile_stored(t, p, s)
#define TRELEASE() _tile_release()
    GEMM_AMX_BODY
#undef TCONFIG
#undef TZERO
#undef TLOAD
#undef TDP
#undef TSTORE
#undef TRELEASE
}

// Tiles in memory, as the AMX instructions treat them (Intel SDM, "Intel AMX instruction set reference"): a tile
// has `rows` rows of `colsb` bytes; TDPBF16PS multiplies the bf16 pairs of A's row m with B's row k (a pair per
// fp32 column of C) and adds both products to C[m][n] in fp32, the pair's first product first.
struct emulated_tiles {
    const struct tileconfig *cfg;
    uint8_t t[8][16][64];
};

static void emu_load(struct emulated_tiles *e, int t, const void *base, size_t stride) {
    for (int r = 0; r < e->cfg->rows[t]; r++) memcpy(e->t[t][r], (const char *)base + r * stride, e->cfg->colsb[t]);
}

static void emu_store(struct emulated_tiles *e, int t, void *base, size_t stride) {
    for (int r = 0; r < e->cfg->rows[t]; r++) memcpy((char *)base + r * stride, e->t[t][r], e->cfg->colsb[t]);
}

static void emu_dp(struct emulated_tiles *e, int c, int a, int b) {
    for (int m = 0; m < e->cfg->rows[a]; m++)
        for (int n = 0; n < e->cfg->colsb[c] / 4; n++) {
            float acc;
            memcpy(&acc, e->t[c][m] + 4 * n, 4);
            for (int k = 0; k < e->cfg->colsb[a] / 4; k++) {
                uint16_t a0, a1, b0, b1;
                memcpy(&a0, e->t[a][m] + 4 * k, 2); memcpy(&a1, e->t[a][m] + 4 * k + 2, 2);
                memcpy(&b0, e->t[b][k] + 4 * n, 2); memcpy(&b1, e->t[b][k] + 4 * n + 2, 2);
                acc += seg_bf16_to_f32(a0) * seg_bf16_to_f32(b0);
                acc += seg_bf16_to_f32(a1) * seg_bf16_to_f32(b1);
            }
            memcpy(e->t[c][m] + 4 * n, &acc, 4);
        }
}

BF16 static void gemm_bf16_amx_emulated(int M, int n0, int n1, int K, const float *A, int lda, const uint16_t *P,
                                        int Kp, int k0, float *C, int ldc, const int *crow, const float *bias,
                                        int accumulate, int gelu) {
    struct emulated_tiles e;
#define TCONFIG(c) (e.cfg = (c))
#define TZERO(i) memset(e.t[i], 0, sizeof e.t[i])
#define TLOAD(i, p, s) emu_load(&e, i, p, s)
#define TDP(c, a, b) emu_dp(&e, c, a, b)
#define TSTORE(i, p, s) emu_store(&e, i, p, s)
#define TRELEASE() (e.cfg = NULL)
    GEMM_AMX_BODY
#undef TCONFIG
#undef TZERO
#undef TLOAD
#undef TDP
#undef TSTORE
#undef TRELEASE
}
#endif

int seg_gemm_bf16_amx_emulated(int M, int n0, int n1, int K, const float *A, int lda, const uint16_t *P, int Kp,
                               int k0, float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu) {
#if defined(__x86_64__)
    if (seg_bf16_isa() < 1 || k0 % 32 || n0 % NR) return 0;
    if (M > 0 && n1 > n0) gemm_bf16_amx_emulated(M, n0, n1, K, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu);
    return 1;
#else
    (void)M; (void)n0; (void)n1; (void)K; (void)A; (void)lda; (void)P; (void)Kp; (void)k0; (void)C; (void)ldc;
    (void)crow; (void)bias; (void)accumulate; (void)gelu;
    return 0;
#endif
}

void seg_gemm_bf16_rows(int M, int n0, int n1, int K, const float *A, int lda, const uint16_t *P, int Kp, int k0,
                        float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu) {
    if (M <= 0 || n1 <= n0) return;
    switch (seg_bf16_isa()) {
#if defined(__x86_64__)
    case 2:
        if (k0 % 32 == 0 && n0 % NR == 0) {     // tile steps of 32 k from a 32-aligned row of the panel
            gemm_bf16_amx(M, n0, n1, K, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu);
            return;
        }
        gemm_bf16_512(M, n0, n1, K, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu);
        return;
    case 1: gemm_bf16_512(M, n0, n1, K, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu); return;
#endif
    default: seg_gemm_bf16_rows_ref(M, n0, n1, K, A, lda, P, Kp, k0, C, ldc, crow, bias, accumulate, gelu); return;
    }
}

// ---- window attention --------------------------------------------------------------------------------------------

#define SMALL_N 64
#define ATT_MR 6

size_t seg_attention_bf16_work_floats(int N, int d) {
    // fused: k as pairs (ceil(d/2), 64) and v as pairs (ceil(N/2), round32(d)), 32-bit each
    size_t fused = (size_t)((d + 1) / 2) * SMALL_N + (size_t)((N + 1) / 2) * round32(d);
    // general: (N, N) scores, k and v packed as bf16 weights (two bf16 per float)
    size_t general = (size_t)N * N + (seg_packed_bf16_elems(N, d) + seg_packed_bf16_elems(d, N) + 1) / 2 + 16;
    return fused > general ? fused : general;
}

void seg_window_attention_bf16_ref(int N, int d, const float *q, const float *k, const float *v, int ld,
                                   const float *bias, const float *mask, float *out, int ldo) {
    double p[N];
#define R(x) ((double)seg_bf16_to_f32(seg_bf16_round(x)))
    for (int i = 0; i < N; i++) {
        double m = -INFINITY, sum = 0;
        for (int j = 0; j < N; j++) {
            double s = bias[i * N + j] + (mask ? mask[i * N + j] : 0.0);
            for (int e = 0; e < d; e++) s += R(q[(size_t)i * ld + e]) * R(k[(size_t)j * ld + e]);
            p[j] = s;
            if (s > m) m = s;
        }
        for (int j = 0; j < N; j++) { p[j] = exp(p[j] - m); sum += p[j]; }
        for (int j = 0; j < N; j++) p[j] = R((float)(p[j] / sum));    // the probabilities enter P v as bf16
        for (int e = 0; e < d; e++) {
            double acc = 0;
            for (int j = 0; j < N; j++) acc += p[j] * R(v[(size_t)j * ld + e]);
            out[(size_t)i * ldo + e] = (float)acc;
        }
    }
#undef R
}

static void softmax_rows(float *S, int N) {
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
// MR query rows from i0: scores by vdpbf16ps against k's pairs, softmax in registers (as the fp32 kernel), the
// probabilities rounded to bf16 pairs, then P v by vdpbf16ps against v's pairs.
BF16 static inline __attribute__((always_inline))
void attention_rows_bf16(const int MR, const int NV, int i0, int N, int d, const float *q, int ld, const float *bias,
                         const float *mask, float *out, int ldo, const uint32_t *kp, const uint32_t *vp, int dpad,
                         const __mmask16 *cm) {
    const int d2 = (d + 1) / 2;
    uint32_t qb[ATT_MR][SMALL_N] __attribute__((aligned(64)));    // [MR, d2] q rows as bf16 pairs (d <= 128)
    uint32_t pb[ATT_MR][SMALL_N / 2] __attribute__((aligned(64)));    // [MR, 32] probabilities as bf16 pairs
    __m512 s[MR][4];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        int i = i0 + r;
        const float *qr = q + (size_t)i * ld;
        for (int e = 0; e < d; e += 32) {
            __m512 lo = _mm512_maskz_loadu_ps(mask16(d - e), qr + e), hi = _mm512_maskz_loadu_ps(mask16(d - e - 16), qr + e + 16);
            _mm512_storeu_si512(&qb[r][e / 2], (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
#pragma clang loop unroll(full)
        for (int c = 0; c < NV; c++) {
            __m512 b = _mm512_maskz_loadu_ps(cm[c], bias + (size_t)i * N + 16 * c);
            s[r][c] = mask ? _mm512_add_ps(b, _mm512_maskz_loadu_ps(cm[c], mask + (size_t)i * N + 16 * c)) : b;
        }
    }
    for (int p = 0; p < d2; p++) {
        __m512bh w[4];
#pragma clang loop unroll(full)
        for (int c = 0; c < NV; c++) w[c] = (__m512bh)_mm512_loadu_si512(kp + (size_t)p * SMALL_N + 16 * c);
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)qb[r][p]);
#pragma clang loop unroll(full)
            for (int c = 0; c < NV; c++) s[r][c] = _mm512_dpbf16_ps(s[r][c], a, w[c]);
        }
    }
    const __m512 cutoff = _mm512_set1_ps(CUTOFF);
    __m512 m[MR], sum[MR];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        __m512 mv = _mm512_set1_ps(-INFINITY);
#pragma clang loop unroll(full)
        for (int c = 0; c < NV; c++) mv = _mm512_mask_max_ps(mv, cm[c], mv, s[r][c]);
        m[r] = _mm512_set1_ps(_mm512_reduce_max_ps(mv));
    }
#pragma clang loop unroll(full)
    for (int c = 0; c < NV; c++)
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            __m512 t = _mm512_sub_ps(s[r][c], m[r]);
            __mmask16 keep = _mm512_mask_cmp_ps_mask(cm[c], t, cutoff, _CMP_GE_OQ);
            s[r][c] = _mm512_maskz_mov_ps(keep, exp512_core(_mm512_max_ps(t, _mm512_set1_ps(-87.0f))));
        }
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        sum[r] = _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int c = 0; c < NV; c++) sum[r] = _mm512_add_ps(sum[r], s[r][c]);
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum[r]));
        __m512 pr[4];
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) pr[c] = c < NV ? _mm512_mul_ps(s[r][c], inv) : _mm512_setzero_ps();
        _mm512_storeu_si512(&pb[r][0], (__m512i)_mm512_cvtne2ps_pbh(pr[1], pr[0]));
        if (NV > 2) _mm512_storeu_si512(&pb[r][16], (__m512i)_mm512_cvtne2ps_pbh(pr[3], pr[2]));
    }
    const int n2 = (N + 1) / 2;
    for (int c0 = 0; c0 < d; c0 += 32) {
        __mmask16 m0 = mask16(d - c0), m1 = mask16(d - c0 - 16);
        __m512 o[MR][2];
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) o[r][0] = o[r][1] = _mm512_setzero_ps();
        for (int p = 0; p < n2; p++) {
            const uint32_t *vr = vp + (size_t)p * dpad + c0;
            __m512bh w0 = (__m512bh)_mm512_loadu_si512(vr), w1 = (__m512bh)_mm512_loadu_si512(vr + 16);
#pragma clang loop unroll(full)
            for (int r = 0; r < MR; r++) {
                __m512bh a = (__m512bh)_mm512_set1_epi32((int)pb[r][p]);
                o[r][0] = _mm512_dpbf16_ps(o[r][0], a, w0);
                o[r][1] = _mm512_dpbf16_ps(o[r][1], a, w1);
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

BF16 static inline __attribute__((always_inline))
void attention_fused_bf16(const int NV, int N, int d, const float *q, const float *k, const float *v, int ld,
                          const float *bias, const float *mask, float *out, int ldo, float *work) {
    int dpad = round32(d);
    uint32_t *kp = (uint32_t *)work;                               // [ceil(d/2), 64]: kp[p*64 + j] = k[j, 2p..2p+1]
    uint32_t *vp = kp + (size_t)((d + 1) / 2) * SMALL_N;           // [ceil(N/2), dpad]: vp[p*dpad + e] = v[2p..2p+1, e]
    for (int j0 = 0; j0 < 16 * NV; j0 += 16)                      // keys j0 .. j0+15 (keys >= N are 0)
        for (int e0 = 0; e0 < d; e0 += 32) {                       // 16 pairs of head dimensions at a time
            __m512 r[16];
#pragma clang loop unroll(full)
            for (int i = 0; i < 16; i++) {
                const float *kr = k + (size_t)(j0 + i) * ld + e0;
                r[i] = j0 + i < N ? (__m512)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(mask16(d - e0 - 16), kr + 16),
                                                                 _mm512_maskz_loadu_ps(mask16(d - e0), kr))
                                  : _mm512_setzero_ps();
            }
            transpose16x16(r);                                     // r[p] = pair e0/2 + p of the 16 keys
            for (int p = 0; p < 16 && e0 + 2 * p < d; p++) _mm512_storeu_ps((float *)(kp + (size_t)(e0 / 2 + p) * SMALL_N + j0), r[p]);
        }
    for (int p = 0; p < (N + 1) / 2; p++) {
        const float *v0 = v + (size_t)(2 * p) * ld, *v1 = v0 + ld;
        int has1 = 2 * p + 1 < N;
        for (int e0 = 0; e0 < dpad; e0 += 16) {
            __mmask16 em = mask16(d - e0);
            __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(em, v0 + e0)));
            __m512i hi = has1 ? _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(em, v1 + e0)))
                              : _mm512_setzero_si512();
            _mm512_storeu_si512(vp + (size_t)p * dpad + e0, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
    __mmask16 cm[4];
#pragma clang loop unroll(full)
    for (int c = 0; c < NV; c++) cm[c] = mask16(N - 16 * c);
    int i0 = 0;
    for (; i0 + ATT_MR <= N; i0 += ATT_MR)
        attention_rows_bf16(ATT_MR, NV, i0, N, d, q, ld, bias, mask, out, ldo, kp, vp, dpad, cm);
    switch (N - i0) {
    case 1: attention_rows_bf16(1, NV, i0, N, d, q, ld, bias, mask, out, ldo, kp, vp, dpad, cm); break;
    case 2: attention_rows_bf16(2, NV, i0, N, d, q, ld, bias, mask, out, ldo, kp, vp, dpad, cm); break;
    case 3: attention_rows_bf16(3, NV, i0, N, d, q, ld, bias, mask, out, ldo, kp, vp, dpad, cm); break;
    case 4: attention_rows_bf16(4, NV, i0, N, d, q, ld, bias, mask, out, ldo, kp, vp, dpad, cm); break;
    case 5: attention_rows_bf16(5, NV, i0, N, d, q, ld, bias, mask, out, ldo, kp, vp, dpad, cm); break;
    default: break;
    }
}

BF16 static void attention_bf16_dispatch(int N, int d, const float *q, const float *k, const float *v, int ld,
                                         const float *bias, const float *mask, float *out, int ldo, float *work) {
    switch ((N + 15) / 16) {
    case 1: attention_fused_bf16(1, N, d, q, k, v, ld, bias, mask, out, ldo, work); return;
    case 2: attention_fused_bf16(2, N, d, q, k, v, ld, bias, mask, out, ldo, work); return;
    case 3: attention_fused_bf16(3, N, d, q, k, v, ld, bias, mask, out, ldo, work); return;
    default: attention_fused_bf16(4, N, d, q, k, v, ld, bias, mask, out, ldo, work); return;
    }
}
#endif

void seg_window_attention_bf16(int N, int d, const float *q, const float *k, const float *v, int ld, const float *bias,
                               const float *mask, float *out, int ldo, float *work) {
#if defined(__x86_64__)
    if (seg_bf16_isa() >= 1 && N <= SMALL_N && N > 0 && d <= 2 * SMALL_N) {
        attention_bf16_dispatch(N, d, q, k, v, ld, bias, mask, out, ldo, work);
        return;
    }
#endif
    if (seg_bf16_isa() == 0) { seg_window_attention_bf16_ref(N, d, q, k, v, ld, bias, mask, out, ldo); return; }
    // Windows of more than 64 tokens: the bf16 GEMM, k and v packed as weights, softmax in fp32 between.
    float *S = work;                                               // (N, N) scores, then probabilities
    uint16_t *Pk = (uint16_t *)(S + (size_t)N * N);                // k as a (N, d) weight
    uint16_t *Pv = Pk + seg_packed_bf16_elems(N, d);               // v as a (d, N) weight over N inputs
    for (size_t i = 0; i < (size_t)N * N; i++) S[i] = bias[i] + (mask ? mask[i] : 0.0f);
    seg_pack_nt_bf16(k, N, d, ld, Pk);
    seg_gemm_bf16_rows(N, 0, N, d, q, ld, Pk, d, 0, S, N, NULL, NULL, 1, 0);
    softmax_rows(S, N);
    seg_pack_nn_bf16(v, N, d, ld, Pv);
    seg_gemm_bf16_rows(N, 0, d, N, S, N, Pv, N, 0, out, ldo, NULL, NULL, 0, 0);
}
