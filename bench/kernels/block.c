// One Swin block's operators over a whole stage map, as the engine runs them (tiles of whole windows, each tile's
// rows gathered, normalised, multiplied, attended and scattered back), each operator timed separately.
// Usage: block STAGE [WINDOWS_PER_TILE] [REPS]   (Swin-T: stage 0 = 56 x 56 x 96, 3 heads; stage 3 = 7 x 7 x 768)
#include "common.h"
#include "segment_kernels.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    int stage = argc > 1 ? atoi(argv[1]) : 0, G = argc > 2 ? atoi(argv[2]) : 5, reps = argc > 3 ? atoi(argv[3]) : 20;
    const int N = 49, d = 32;                                  // window 7 x 7, head dim 32
    int R = 56 >> stage, C = 96 << stage, heads = 3 << stage, hidden = 4 * C, L = R * R, nW = L / N;
    if (G > nW) G = nW;
    float *src = filled((size_t)L * C, 1), *dst = filled((size_t)L * C, 1), *g = filled(C, 1), *be = filled(C, 1);
    float *bias = filled((size_t)heads * N * N, 1);
    float *Wq = filled(seg_packed_floats(3 * C, C), 0.2f), *Wp = filled(seg_packed_floats(C, C), 0.2f);
    float *W1 = filled(seg_packed_floats(hidden, C), 0.2f), *W2 = filled(seg_packed_floats(C, hidden), 0.1f);
    float *bq = filled(3 * C, 1), *bp = filled(C, 1), *b1 = filled(hidden, 1), *b2 = filled(C, 1);
    int n = G * N;
    float *xs = filled((size_t)n * C, 1), *xn = filled((size_t)n * C, 1);
    float *big = filled((size_t)n * (hidden > 3 * C ? hidden : 3 * C), 1), *work = filled(seg_attention_work_floats(N, d), 1);
    static const char *name[] = {"gather+LN1", "qkv", "attention", "proj", "LN2", "fc1+GELU", "fc2", "scatter"};
    double T[8] = {0};
    unsigned fp = seg_fp_flush_denormals();                    // as the engine's threads
    for (int rep = 0; rep < reps; rep++)
        for (int w0 = 0; w0 < nW; w0 += G) {
            int w1 = w0 + G < nW ? w0 + G : nW, m = (w1 - w0) * N;
            double t0 = now(), t1;
#define LAP(i) (t1 = now(), T[i] += t1 - t0, t0 = t1)
            for (int r = 0; r < m; r++) memcpy(xs + (size_t)r * C, src + (size_t)((w0 * N + r * 37) % L) * C, C * sizeof(float));
            seg_layernorm_rows(xs, C, xn, C, m, C, g, be);
            LAP(0);
            seg_gemm_packed(m, 0, 3 * C, C, xn, C, Wq, C, 0, big, 3 * C, bq, 0, 0);
            LAP(1);
            for (int p = 0; p < (w1 - w0) * heads; p++) {
                int wl = p / heads, h = p % heads;
                float *q = big + (size_t)wl * N * 3 * C + h * d;
                seg_window_attention(N, d, q, q + C, q + 2 * C, 3 * C, bias + (size_t)h * N * N, NULL,
                                     xn + (size_t)wl * N * C + h * d, C, work);
            }
            LAP(2);
            seg_gemm_packed(m, 0, C, C, xn, C, Wp, C, 0, xs, C, bp, 1, 0);
            LAP(3);
            seg_layernorm_rows(xs, C, xn, C, m, C, g, be);
            LAP(4);
            seg_gemm_packed(m, 0, hidden, C, xn, C, W1, C, 0, big, hidden, b1, 0, 1);
            LAP(5);
            seg_gemm_packed(m, 0, C, hidden, big, hidden, W2, hidden, 0, xs, C, b2, 1, 0);
            LAP(6);
            for (int r = 0; r < m; r++) memcpy(dst + (size_t)((w0 * N + r * 37) % L) * C, xs + (size_t)r * C, C * sizeof(float));
            LAP(7);
        }
    seg_fp_restore(fp);
    double total = 0;
    for (int i = 0; i < 8; i++) { total += T[i] / reps; printf("%s %.3f ms  ", name[i], T[i] / reps * 1e3); }
    double gemm = 2.0 * L * C * C;                             // flops of a C x C Linear over the map
    printf("\nstage %d (%d x %d x %d, tiles of %d windows): block %.3f ms; GFLOP/s qkv %.0f, proj %.0f, fc1+GELU %.0f, fc2 %.0f\n",
           stage, R, R, C, G, total * 1e3, 3 * gemm / (T[1] / reps) / 1e9, gemm / (T[3] / reps) / 1e9,
           4 * gemm / (T[5] / reps) / 1e9, 4 * gemm / (T[6] / reps) / 1e9);
    return 0;
}
