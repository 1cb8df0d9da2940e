// segment's own GEMM: weights packed once (at model load) into panels of SEG_NR output columns, and a
// register-blocked micro-kernel that reads the activations in place and applies bias / accumulate / GELU while the
// results are still in registers. AVX-512 (6 x 64 and 8 x 32 tiles) or AVX2 + FMA (6 x 16) as the CPU allows, chosen at run
// time, else plain C.
// seg_gemm_packed_ref is the naive twin every fast path is tested against.
#ifndef SEGMENT_KERNELS_H
#define SEGMENT_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/// Output columns per packed panel.
#define SEG_NR 32

/// Floats of the packed form of a (N, K) weight: ceil(N / SEG_NR) panels of K * SEG_NR.
size_t seg_packed_floats(int N, int K);

/// Packs W (N, K; row stride ldw), a PyTorch Linear weight (out, in), into P: panel p holds columns
/// p*32 .. p*32+31 k-major, P[p*32*K + k*32 + j] = W[(p*32 + j)*ldw + k]; columns past N are zero.
void seg_pack_nt(const float *W, int N, int K, int ldw, float *P);

/// Packs B (K, N; row stride ldb) into the same layout: P[p*32*K + k*32 + j] = B[k*ldb + p*32 + j].
void seg_pack_nn(const float *B, int K, int N, int ldb, float *P);

/// C[:, n0:n1] = (accumulate ? C : 0) + bias[n0:n1] + A · B[k0:k0+K, n0:n1], then GELU (exact erf form) if gelu.
/// A (M, K; row stride lda); C (M, ldc); B packed by seg_pack_* with depth Kp (panel stride 32*Kp), of which rows
/// k0 .. k0+K are used; n0 a multiple of 32; bias may be NULL. Single-threaded; the summation order depends only
/// on K (blocks of 256), never on M, n0 or n1, so any split of the columns or rows gives identical bits.
void seg_gemm_packed(int M, int n0, int n1, int K, const float *A, int lda, const float *P, int Kp, int k0,
                     float *C, int ldc, const float *bias, int accumulate, int gelu);

/// seg_gemm_packed with the rows of C addressed through a table: row i of the product is row crow[i] of C (row
/// stride ldc), so a tile of tokens gathered from a map (the windows of a Swin block) accumulates straight onto the
/// map's rows. crow NULL: row i is row i. The same bits as seg_gemm_packed on the same values.
void seg_gemm_packed_rows(int M, int n0, int n1, int K, const float *A, int lda, const float *P, int Kp, int k0,
                          float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu);

/// The naive twin of seg_gemm_packed (same contract, triple loop, libm erf).
void seg_gemm_packed_ref(int M, int n0, int n1, int K, const float *A, int lda, const float *P, int Kp, int k0,
                         float *C, int ldc, const float *bias, int accumulate, int gelu);

/// The naive twin of seg_gemm_packed_rows.
void seg_gemm_packed_rows_ref(int M, int n0, int n1, int K, const float *A, int lda, const float *P, int Kp, int k0,
                              float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu);

/// Floats of work memory seg_window_attention needs for N tokens and head dimension d.
size_t seg_attention_work_floats(int N, int d);

/// Attention of one window and head: out (N, d; row stride ldo) = softmax(q k^T + bias (+ mask)) v, q, k, v being
/// (N, d) with row stride ld (q already scaled), bias and mask (N, N) (mask may be NULL). Softmax terms below
/// e^-80 of the row maximum are 0 (no subnormal floats reach the product). work: seg_attention_work_floats(N, d).
void seg_window_attention(int N, int d, const float *q, const float *k, const float *v, int ld, const float *bias,
                          const float *mask, float *out, int ldo, float *work);

/// The naive twin of seg_window_attention (double sums, libm exp).
void seg_window_attention_ref(int N, int d, const float *q, const float *k, const float *v, int ld, const float *bias,
                              const float *mask, float *out, int ldo);

/// y = LayerNorm(x) over one row of C values (biased variance, eps 1e-5, affine gamma / beta); y may alias x.
void seg_layernorm_row(const float *x, float *y, int C, const float *gamma, const float *beta);

/// seg_layernorm_row over `rows` rows of x (row stride ldx) into y (row stride ldy), bit for bit the same; with
/// AVX-512 and C <= 128, several rows at once (their reductions overlap). y may alias x (ldy == ldx).
void seg_layernorm_rows(const float *x, int ldx, float *y, int ldy, int rows, int C, const float *gamma,
                        const float *beta);

/// seg_layernorm_rows reading row r from row xrow[r] of x (row stride ldx); xrow NULL: row r. The same bits.
void seg_layernorm_rows_gather(const float *x, int ldx, const int *xrow, float *y, int ldy, int rows, int C,
                               const float *gamma, const float *beta);

/// Output head, per pixel: X holds n tokens of E * P * P floats, each token's P*P pixels channel-major
/// (X[t*E*P*P + c*P*P + s], pixel s = (s / P, s % P) of the token), as the x4 expand GEMM writes them when its
/// weight rows are in seg_head_order. For every pixel: LayerNorm(E) with gamma / beta (biased variance, eps 1e-5),
/// class scores W (nc, E) . x (no bias); then, for pixel s of token t at plane index q = pix[t] + (s / P) * H + s % P:
/// logits[k * plane + q] = score k, labels[q] = the first maximal class, probs[k * plane + q] = softmax (terms
/// below e^-80 of the maximum are 0), features[q * E + c] = the normalised features; each output may be NULL.
/// work: seg_head_work_floats(E, P, nc). AVX-512 with P = 4 (one zmm = one channel of a token's 16 pixels), else
/// plain C (also the naive twin).
void seg_output_head(int n, const float *X, int E, int P, const float *gamma, const float *beta, const float *W,
                     int nc, const long *pix, int H, size_t plane, float *logits, unsigned char *labels, float *probs,
                     float *features, float *work);
size_t seg_head_work_floats(int E, int P, int nc);

/// The rows of the x4 expand weight W (P*P*E, E), PyTorch order (row s*E + c: pixel s, channel c), written to out
/// in head order (row c*P*P + s), so that the GEMM's output is what seg_output_head reads.
void seg_head_order(const float *W, int E, int P, float *out);

/// Sequentially consistent 64-bit atomics and the CPU's spin-wait hint, for the engine's worker pool (its hand-overs
/// and its work queue, whose counter threads bump by seg_atomic_add to take the next tile).
long seg_atomic_load(const long *p);
void seg_atomic_store(long *p, long v);
long seg_atomic_add(long *p, long v);       // returns the previous value
int seg_atomic_cas(long *p, long expected, long desired);   // 1 if *p was expected (and is now desired)
void seg_spin_pause(void);

/// Sets flush-to-zero and denormals-are-zero on the calling thread and returns the previous floating-point control
/// state, for seg_fp_restore. The engine's threads run with both: a denormal (below 1.2e-38) costs a microcode
/// assist of about a hundred cycles per operation on x86 (a GELU of x < -13, an attention weight near e^-80 times v),
/// and rounding it to 0 changes no result by more than 1e-38. No effect elsewhere than on x86-64.
unsigned seg_fp_flush_denormals(void);
void seg_fp_restore(unsigned state);

/// Which kernels run: 2 = AVX-512, 1 = AVX2 + FMA (the GEMM; softmax and LayerNorm in plain C), 0 = plain C.
/// seg_kernel_select(-1) picks the best the CPU supports (the default); 0 or 1 force a lesser one (tests); a value
/// above what the CPU supports gives the best it does.
int seg_kernel_isa(void);
void seg_kernel_select(int isa);

// ---- bf16 (bf16.c): bf16 operands, fp32 accumulation --------------------------------------------------------------
// The activations stay fp32 in memory and are rounded to bf16 (round to nearest even, as PyTorch and ml_dtypes) as
// they enter a product; the weights are rounded once, when packed. Paths: AMX-BF16 tiles, AVX512-BF16 (vdpbf16ps),
// chosen at run time; the naive twins (plain C, double sums) run where neither exists.

/// Which bf16 kernels run: 2 = AMX-BF16 (GEMM; attention on AVX512-BF16), 1 = AVX512-BF16, 0 = none (the naive
/// twins; the engine then refuses bf16). seg_bf16_select(-1) picks the best the CPU and OS support; a lesser value
/// forces it (tests); a value above what is supported gives the best.
int seg_bf16_isa(void);
void seg_bf16_select(int isa);

/// x rounded to the nearest bf16, ties to even (NaN stays NaN, quieted); and back (exact).
uint16_t seg_bf16_round(float x);
float seg_bf16_to_f32(uint16_t h);
/// n floats rounded as seg_bf16_round; with AVX512-BF16 by vcvtne2ps2bf16, which also reads denormal inputs as 0.
void seg_f32_to_bf16(const float *x, uint16_t *y, size_t n);
/// The naive twin of seg_f32_to_bf16: seg_bf16_round on each value.
void seg_f32_to_bf16_ref(const float *x, uint16_t *y, size_t n);

/// bf16 elements of the packed form of a (N, K) weight: ceil(N / 32) panels of Kr * 32, Kr = K rounded up to 32.
size_t seg_packed_bf16_elems(int N, int K);
/// Packs W (N, K; row stride ldw) rounded to bf16: P[p*32*Kr + (k/2)*64 + j*2 + k%2] = W[p*32 + j, k]; zero past
/// N and K.
void seg_pack_nt_bf16(const float *W, int N, int K, int ldw, uint16_t *P);
/// Packs B (K, N; row stride ldb) into the same layout: element (k, j) of panel p = B[k, p*32 + j].
void seg_pack_nn_bf16(const float *B, int K, int N, int ldb, uint16_t *P);

/// seg_gemm_packed_rows with the weight packed by seg_pack_*_bf16 (depth Kp) and A rounded to bf16 as it is read:
/// C[rows, n0:n1] = (accumulate ? C : 0) + bias + bf16(A) . B[k0:k0+K] (fp32 sums), then GELU if gelu. k0 even;
/// n0 a multiple of 32. Any split of rows or columns gives identical bits.
void seg_gemm_bf16_rows(int M, int n0, int n1, int K, const float *A, int lda, const uint16_t *P, int Kp, int k0,
                        float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu);
/// The AMX kernel of seg_gemm_bf16_rows with its tile instructions carried out in plain C on tiles in memory (their
/// documented semantics), for testing its schedule, layouts and epilogue on CPUs without AMX. Needs AVX512-BF16
/// (the epilogue and the rounding); k0 a multiple of 32 and n0 of 32 as the AMX path. Returns 0 (nothing done)
/// where it cannot run, 1 otherwise. Slow: for tests only.
int seg_gemm_bf16_amx_emulated(int M, int n0, int n1, int K, const float *A, int lda, const uint16_t *P, int Kp,
                               int k0, float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu);
/// The naive twin of seg_gemm_bf16_rows (triple loop, exact bf16 products summed in double, libm erf).
void seg_gemm_bf16_rows_ref(int M, int n0, int n1, int K, const float *A, int lda, const uint16_t *P, int Kp, int k0,
                            float *C, int ldc, const int *crow, const float *bias, int accumulate, int gelu);

/// Floats of work memory seg_window_attention_bf16 needs for N tokens and head dimension d.
size_t seg_attention_bf16_work_floats(int N, int d);
/// seg_window_attention with both products in bf16: q, k rounded to bf16 for the scores (fp32 sums), the softmax
/// in fp32, the probabilities and v rounded to bf16 for P v (fp32 sums).
void seg_window_attention_bf16(int N, int d, const float *q, const float *k, const float *v, int ld, const float *bias,
                               const float *mask, float *out, int ldo, float *work);
/// The naive twin: the same roundings (q, k, v, the probabilities), double sums, libm exp.
void seg_window_attention_bf16_ref(int N, int d, const float *q, const float *k, const float *v, int ld,
                                   const float *bias, const float *mask, float *out, int ldo);

#endif
