// Interleaved A/B of two builds of the kernels (A: symbols prefixed VA_, B: VB_; see ab.sh), in one process so that
// the machine's slow spells hit both alike. GEMM on the model's shapes (output rotating beyond L2) and window
// attention (stage 0 and stage 2 windows, with and without the mask); per case the minimum and median of 40 rounds,
// the ratio B/A, and max |A - B| of the results (0 when B promises the same bits).
#include "common.h"
#include <math.h>
#include <stdio.h>

#define DECLARE(P)                                                                                                   \
    size_t P##seg_packed_floats(int N, int K);                                                                      \
    void P##seg_pack_nt(const float *W, int N, int K, int ldw, float *Pk);                                          \
    void P##seg_gemm_packed(int M, int n0, int n1, int K, const float *A, int lda, const float *Pk, int Kp, int k0,   \
                            float *C, int ldc, const float *bias, int accumulate, int gelu);                         \
    size_t P##seg_attention_work_floats(int N, int d);                                                              \
    void P##seg_window_attention(int N, int d, const float *q, const float *k, const float *v, int ld,               \
                                 const float *bias, const float *mask, float *out, int ldo, float *work);
DECLARE(VA_)
DECLARE(VB_)

typedef void (*gemm_fn)(int, int, int, int, const float *, int, const float *, int, int, float *, int, const float *, int, int);
typedef void (*att_fn)(int, int, const float *, const float *, const float *, int, const float *, const float *, float *, int, float *);
enum { ROUNDS = 40, NB = 8 };

static double maxdiff(const float *a, const float *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) { double x = fabs((double)a[i] - b[i]); e = x > e ? x : e; }
    return e;
}

/// flops > 0: rates in GFLOP/s; flops == 0: times in us. Ratios are always of times (B/A < 1: B is faster).
static void report(const char *what, double t[2][ROUNDS], double flops, double diff) {
    double mn[2], md[2], x[4];
    for (int v = 0; v < 2; v++) { qsort(t[v], ROUNDS, sizeof(double), by_value); mn[v] = t[v][0]; md[v] = t[v][ROUNDS / 2]; }
    double y[4] = {mn[0], md[0], mn[1], md[1]};
    for (int i = 0; i < 4; i++) x[i] = flops > 0 ? flops / y[i] / 1e9 : y[i] * 1e6;
    printf("%-32s A min %7.2f med %7.2f | B min %7.2f med %7.2f %s | B/A time min %.3f med %.3f | max|A-B| %g\n",
           what, x[0], x[1], x[2], x[3], flops > 0 ? "GFLOP/s" : "us", mn[1] / mn[0], md[1] / md[0], diff);
}

int main(void) {
    gemm_fn gemm[2] = {VA_seg_gemm_packed, VB_seg_gemm_packed};
    // M, N, K, GELU (2: GELU of values around -20, the tail where erfc underflows; on a plain thread, as here,
    // a kernel that makes denormals there pays a microcode assist per value)
    static const int shapes[][4] = {{245, 288, 96, 0}, {245, 96, 96, 0}, {245, 384, 96, 1}, {245, 96, 384, 0},
                                    {245, 768, 192, 1}, {245, 768, 192, 2}, {196, 1152, 384, 0}, {196, 384, 1536, 0},
                                    {49, 2304, 768, 0}, {49, 3072, 768, 1}, {49, 768, 3072, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], gelu = shapes[s][3];
        float *A = filled((size_t)M * K, 1), *W = filled((size_t)N * K, 0.1f), *b = filled(N, 1), *C[2][NB];
        if (gelu == 2) for (int j = 0; j < N; j++) b[j] -= 20;
        float *P = filled(VA_seg_packed_floats(N, K), 1);
        VA_seg_pack_nt(W, N, K, K, P);     // the packed layout is part of the contract both builds share
        for (int v = 0; v < 2; v++) for (int i = 0; i < NB; i++) C[v][i] = filled((size_t)M * N, 1);
        int it = (int)(2e7 / (2.0 * M * N * K)) / NB * NB + NB;
        double t[2][ROUNDS];
        for (int r = 0; r < ROUNDS; r++)
            for (int o = 0; o < 2; o++) {
                int v = (r & 1) ? 1 - o : o;
                double t0 = now();
                for (int i = 0; i < it; i++) gemm[v](M, 0, N, K, A, K, P, K, 0, C[v][i % NB], N, b, 0, gelu != 0);
                t[v][r] = (now() - t0) / it;
            }
        char what[64];
        snprintf(what, sizeof what, "gemm %d x %d x %d%s", M, N, K, gelu == 2 ? " + GELU(~-20)" : gelu ? " + GELU" : "");
        report(what, t, 2.0 * M * N * K, maxdiff(C[0][0], C[1][0], (size_t)M * N));
    }
    att_fn att[2] = {VA_seg_window_attention, VB_seg_window_attention};
    const int Nt = 49, d = 32, windows = 5;
    for (int c = 0; c < 4; c++) {
        int heads = c < 2 ? 3 : 12, Ch = heads * d, masked = c & 1;
        float *qkv = filled((size_t)windows * Nt * 3 * Ch, 2), *bias = filled((size_t)heads * Nt * Nt, 1);
        float *mask = filled((size_t)Nt * Nt, 1), *out[2] = {filled((size_t)windows * Nt * Ch, 1), filled((size_t)windows * Nt * Ch, 1)};
        size_t wf = VA_seg_attention_work_floats(Nt, d), wg = VB_seg_attention_work_floats(Nt, d);
        float *work = filled(wf > wg ? wf : wg, 1);
        for (int i = 0; i < Nt * Nt; i++) mask[i] = i % 7 == 0 ? -100.0f : 0.0f;
        double t[2][ROUNDS];
        for (int r = 0; r < ROUNDS; r++)
            for (int o = 0; o < 2; o++) {
                int v = (r & 1) ? 1 - o : o;
                double t0 = now();
                for (int rep = 0; rep < 20; rep++)
                    for (int w = 0; w < windows; w++)
                        for (int h = 0; h < heads; h++) {
                            float *q = qkv + (size_t)w * Nt * 3 * Ch + h * d;
                            att[v](Nt, d, q, q + Ch, q + 2 * Ch, 3 * Ch, bias + (size_t)h * Nt * Nt, masked ? mask : NULL,
                                   out[v] + (size_t)w * Nt * Ch + h * d, Ch, work);
                        }
                t[v][r] = (now() - t0) / (20.0 * windows * heads);
            }
        char what[64];
        snprintf(what, sizeof what, "attention 49x49x32 %s%s", heads == 3 ? "stage 0" : "stage 2", masked ? " masked" : "");
        report(what, t, 0, maxdiff(out[0], out[1], (size_t)windows * Nt * Ch));
    }
    return 0;
}
