// One Swin block's operators over a whole stage map, in fp32 and in bf16 (the engine's --precision bf16: bf16
// GEMMs and attention products, LayerNorm in fp32), alternating pass by pass, each operator timed: where the time
// of a bf16 block goes, and what each operator gains or loses against fp32. Tiles of whole windows, rows addressed
// through the window table, as the engine runs a block on one thread.
// Usage: block_bf16 STAGE [WINDOWS_PER_TILE] [PASSES]   (Swin-T: stage 0 = 56 x 56 x 96, 3 heads; 3 = 7 x 7 x 768)
#include "common.h"
#include "segment_kernels.h"
#include <stdint.h>
#include <stdio.h>

enum { OPS = 7 };
static const char *name[OPS] = {"LN1", "qkv", "attention", "proj", "LN2", "fc1+GELU", "fc2"};

static uint16_t *packed_bf16(const float *w, int N, int K) {
    uint16_t *p = aligned_alloc(64, (seg_packed_bf16_elems(N, K) * 2 + 63) / 64 * 64);
    seg_pack_nt_bf16(w, N, K, K, p);
    return p;
}

int main(int argc, char **argv) {
    if (seg_bf16_isa() < 1) { printf("block_bf16: this CPU has no bf16 kernels\n"); return 0; }
    int stage = argc > 1 ? atoi(argv[1]) : 0, G = argc > 2 ? atoi(argv[2]) : 5, passes = argc > 3 ? atoi(argv[3]) : 20;
    const int ws = 7, N = ws * ws, d = 32;
    int R = 56 >> stage, C = 96 << stage, heads = 3 << stage, hidden = 4 * C, L = R * R, nW = L / N, side = R / ws;
    if (G > nW) G = nW;
    float *map = filled((size_t)L * C, 1), *g = filled(C, 1), *be = filled(C, 1);
    float *bias = filled((size_t)heads * N * N, 1);
    float *wq = filled((size_t)3 * C * C, 0.2f), *wp = filled((size_t)C * C, 0.2f);      // raw (N, K) weights
    float *w1 = filled((size_t)hidden * C, 0.2f), *w2 = filled((size_t)C * hidden, 0.02f);
    float *Wq = filled(seg_packed_floats(3 * C, C), 0), *Wp = filled(seg_packed_floats(C, C), 0);
    float *W1 = filled(seg_packed_floats(hidden, C), 0), *W2 = filled(seg_packed_floats(C, hidden), 0);
    seg_pack_nt(wq, 3 * C, C, C, Wq); seg_pack_nt(wp, C, C, C, Wp); seg_pack_nt(w1, hidden, C, C, W1); seg_pack_nt(w2, C, hidden, hidden, W2);
    uint16_t *Bq = packed_bf16(wq, 3 * C, C), *Bp = packed_bf16(wp, C, C), *B1 = packed_bf16(w1, hidden, C), *B2 = packed_bf16(w2, C, hidden);
    float *bq = filled(3 * C, 1), *bp = filled(C, 1), *b1 = filled(hidden, 1), *b2 = filled(C, 1);
    int n = G * N;
    int *rows = malloc(sizeof(int) * (size_t)L);
    for (int r = 0; r < L; r++) {
        int w = r / N, i = r % N;
        rows[r] = ((w / side) * ws + i / ws) * R + (w % side) * ws + i % ws;
    }
    float *xn = filled((size_t)n * C, 1), *big = filled((size_t)n * (hidden > 3 * C ? hidden : 3 * C), 1);
    size_t wf = seg_attention_work_floats(N, d), wb = seg_attention_bf16_work_floats(N, d);
    float *work = filled(wf > wb ? wf : wb, 1);
    double T[2][OPS] = {{0}}, *total[2];
    for (int v = 0; v < 2; v++) total[v] = calloc((size_t)passes, sizeof(double));
    unsigned fp = seg_fp_flush_denormals();
    for (int pass = 0; pass < 2 * passes; pass++) {
        int bf = pass & 1;
        double *t = T[bf], start = now();
        for (int w0 = 0; w0 < nW; w0 += G) {
            int w1_ = w0 + G < nW ? w0 + G : nW, m = (w1_ - w0) * N;
            const int *xr = rows + w0 * N;
            double t0 = now(), t1;
#define LAP(i) (t1 = now(), t[i] += t1 - t0, t0 = t1)
            seg_layernorm_rows_gather(map, C, xr, xn, C, m, C, g, be);
            LAP(0);
            if (bf) seg_gemm_bf16_rows(m, 0, 3 * C, C, xn, C, Bq, C, 0, big, 3 * C, NULL, bq, 0, 0);
            else seg_gemm_packed(m, 0, 3 * C, C, xn, C, Wq, C, 0, big, 3 * C, bq, 0, 0);
            LAP(1);
            for (int p = 0; p < (w1_ - w0) * heads; p++) {
                int wl = p / heads, h = p % heads;
                float *q = big + (size_t)wl * N * 3 * C + h * d;
                (bf ? seg_window_attention_bf16 : seg_window_attention)(N, d, q, q + C, q + 2 * C, 3 * C, bias + (size_t)h * N * N,
                                                                        NULL, xn + (size_t)wl * N * C + h * d, C, work);
            }
            LAP(2);
            if (bf) seg_gemm_bf16_rows(m, 0, C, C, xn, C, Bp, C, 0, map, C, xr, bp, 1, 0);
            else seg_gemm_packed_rows(m, 0, C, C, xn, C, Wp, C, 0, map, C, xr, bp, 1, 0);
            LAP(3);
            seg_layernorm_rows_gather(map, C, xr, xn, C, m, C, g, be);
            LAP(4);
            if (bf) seg_gemm_bf16_rows(m, 0, hidden, C, xn, C, B1, C, 0, big, hidden, NULL, b1, 0, 1);
            else seg_gemm_packed(m, 0, hidden, C, xn, C, W1, C, 0, big, hidden, b1, 0, 1);
            LAP(5);
            if (bf) seg_gemm_bf16_rows(m, 0, C, hidden, big, hidden, B2, hidden, 0, map, C, xr, b2, 1, 0);
            else seg_gemm_packed_rows(m, 0, C, hidden, big, hidden, W2, hidden, 0, map, C, xr, b2, 1, 0);
            LAP(6);
        }
        total[bf][pass / 2] = now() - start;
        for (size_t i = 0; i < (size_t)L * C; i += 97) map[i] *= 0.5f;
    }
    seg_fp_restore(fp);
    printf("stage %d (%d x %d x %d, tiles of %d windows, %d passes each; bf16 kernels level %d):\n", stage, R, R, C, G,
           passes, seg_bf16_isa());
    for (int v = 0; v < 2; v++) {
        double sum = 0;
        for (int i = 0; i < OPS; i++) sum += T[v][i];
        printf("  %-5s", v ? "bf16" : "fp32");
        for (int i = 0; i < OPS; i++) printf(" %s %.3f (%.0f%%)", name[i], T[v][i] / passes * 1e3, 100 * T[v][i] / sum);
        qsort(total[v], (size_t)passes, sizeof(double), by_value);
        printf(" ms\n        block min %.3f median %.3f ms\n", total[v][0] * 1e3, total[v][passes / 2] * 1e3);
    }
    printf("  bf16 / fp32 per operator:");
    for (int i = 0; i < OPS; i++) printf(" %s %.2f", name[i], T[1][i] / T[0][i]);
    printf("\n");
    return 0;
}
