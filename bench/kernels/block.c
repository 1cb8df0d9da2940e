// One Swin block's operators over a whole stage map, as the engine runs them: tiles of whole windows, the tile's
// tokens addressed in the map through a table of their rows (LN1 reads them, proj and fc2 accumulate onto them in
// place), each operator timed separately. For comparison, the same block with the tile copied out of the map and
// back (what the engine did until the row tables), the two alternating pass by pass.
// Usage: block STAGE [WINDOWS_PER_TILE] [PASSES]   (Swin-T: stage 0 = 56 x 56 x 96, 3 heads; stage 3 = 7 x 7 x 768)
#include "common.h"
#include "segment_kernels.h"
#include <stdio.h>
#include <string.h>

enum { OPS = 8 };
static const char *name[OPS] = {"copy-in+LN1", "qkv", "attention", "proj", "LN2", "fc1+GELU", "fc2", "copy-out"};

int main(int argc, char **argv) {
    int stage = argc > 1 ? atoi(argv[1]) : 0, G = argc > 2 ? atoi(argv[2]) : 5, passes = argc > 3 ? atoi(argv[3]) : 40;
    const int ws = 7, N = ws * ws, d = 32;                     // window 7 x 7, head dim 32
    int R = 56 >> stage, C = 96 << stage, heads = 3 << stage, hidden = 4 * C, L = R * R, nW = L / N, side = R / ws;
    if (G > nW) G = nW;
    float *map = filled((size_t)L * C, 1), *g = filled(C, 1), *be = filled(C, 1);
    float *bias = filled((size_t)heads * N * N, 1);
    float *Wq = filled(seg_packed_floats(3 * C, C), 0.2f), *Wp = filled(seg_packed_floats(C, C), 0.2f);
    float *W1 = filled(seg_packed_floats(hidden, C), 0.2f), *W2 = filled(seg_packed_floats(C, hidden), 0.02f);
    float *bq = filled(3 * C, 1), *bp = filled(C, 1), *b1 = filled(hidden, 1), *b2 = filled(C, 1);
    int n = G * N;
    int *rows = malloc(sizeof(int) * (size_t)L);               // (L) token of each window-ordered row
    for (int r = 0; r < L; r++) {
        int w = r / N, i = r % N;
        rows[r] = ((w / side) * ws + i / ws) * R + (w % side) * ws + i % ws;
    }
    float *xs = filled((size_t)n * C, 1), *xn = filled((size_t)n * C, 1);
    float *big = filled((size_t)n * (hidden > 3 * C ? hidden : 3 * C), 1), *work = filled(seg_attention_work_floats(N, d), 1);
    double T[2][OPS] = {{0}}, *total[2];
    for (int v = 0; v < 2; v++) total[v] = calloc((size_t)passes, sizeof(double));
    unsigned fp = seg_fp_flush_denormals();                    // as the engine's threads
    for (int pass = 0; pass < 2 * passes; pass++) {
        int copy = pass & 1;                                   // 0: row table, in place (the engine); 1: copy out and back
        double *t = T[copy], start = now();
        for (int w0 = 0; w0 < nW; w0 += G) {
            int w1 = w0 + G < nW ? w0 + G : nW, m = (w1 - w0) * N;
            const int *tr = rows + w0 * N;
            float *x = copy ? xs : map;                        // the rows proj and fc2 accumulate onto
            const int *xr = copy ? NULL : tr;
            double t0 = now(), t1;
#define LAP(i) (t1 = now(), t[i] += t1 - t0, t0 = t1)
            if (copy) for (int r = 0; r < m; r++) memcpy(xs + (size_t)r * C, map + (size_t)tr[r] * C, C * sizeof(float));
            seg_layernorm_rows_gather(x, C, xr, xn, C, m, C, g, be);
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
            seg_gemm_packed_rows(m, 0, C, C, xn, C, Wp, C, 0, x, C, xr, bp, 1, 0);
            LAP(3);
            seg_layernorm_rows_gather(x, C, xr, xn, C, m, C, g, be);
            LAP(4);
            seg_gemm_packed(m, 0, hidden, C, xn, C, W1, C, 0, big, hidden, b1, 0, 1);
            LAP(5);
            seg_gemm_packed_rows(m, 0, C, hidden, big, hidden, W2, hidden, 0, x, C, xr, b2, 1, 0);
            LAP(6);
            if (copy) for (int r = 0; r < m; r++) memcpy(map + (size_t)tr[r] * C, xs + (size_t)r * C, C * sizeof(float));
            LAP(7);
        }
        total[copy][pass / 2] = now() - start;
        for (size_t i = 0; i < (size_t)L * C; i += 97) map[i] *= 0.5f;   // keep the values bounded over the passes
    }
    seg_fp_restore(fp);
    double gemm = 2.0 * L * C * C;                             // flops of a C x C Linear over the map
    printf("stage %d (%d x %d x %d, tiles of %d windows, %d passes each):\n", stage, R, R, C, G, passes);
    for (int v = 0; v < 2; v++) {
        printf("  %-9s", v ? "copy" : "in place");
        for (int i = 0; i < OPS; i++)
            if (v || (i != 7)) printf(" %s %.3f", v || i ? name[i] : "LN1", T[v][i] / passes * 1e3);
        qsort(total[v], (size_t)passes, sizeof(double), by_value);
        printf(" ms\n            block min %.3f median %.3f ms; GFLOP/s qkv %.0f, proj %.0f, fc1+GELU %.0f, fc2 %.0f\n",
               total[v][0] * 1e3, total[v][passes / 2] * 1e3, 3 * gemm / (T[v][1] / passes) / 1e9,
               gemm / (T[v][3] / passes) / 1e9, 4 * gemm / (T[v][5] / passes) / 1e9, 4 * gemm / (T[v][6] / passes) / 1e9);
    }
    return 0;
}
