// seg_gemm_packed on the Swin-T GEMM shapes of one tile (M rows = a tile of windows), best of 5: GFLOP/s with
// every operand in L2 ("hot"), with the output rotating through 8 buffers beyond L2 ("cold C"), and the GELU
// epilogue's cost where the model has one (fc1).
#include "common.h"
#include "segment_kernels.h"
#include <stdio.h>

int main(void) {
    static const int shapes[][4] = {   // M, N, K, GELU
        {245, 288, 96, 0}, {245, 96, 96, 0}, {245, 384, 96, 1}, {245, 96, 384, 0},      // stage 0: qkv, proj, fc1, fc2
        {245, 576, 192, 0}, {245, 768, 192, 1}, {245, 192, 768, 0},                     // stage 1
        {196, 1152, 384, 0}, {196, 1536, 384, 1}, {196, 384, 1536, 0},                  // stage 2
        {49, 2304, 768, 0}, {49, 3072, 768, 1}, {49, 768, 3072, 0},                     // stage 3, batch 1
        {245, 768, 768, 0}, {49, 768, 768, 0}, {49, 768, 192, 0},    // 49 rows against 245: weights beyond / in L2
    };
    enum { NB = 8 };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], gelu = shapes[s][3];
        float *A = filled((size_t)M * K, 1), *W = filled((size_t)N * K, 0.1f), *b = filled(N, 1);
        float *P = filled(seg_packed_floats(N, K), 1), *C[NB];
        for (int i = 0; i < NB; i++) C[i] = filled((size_t)M * N, 1);
        seg_pack_nt(W, N, K, K, P);
        int it = (int)(1e9 / (2.0 * M * N * K)) / NB * NB + NB;
        double hot = 1e9, cold = 1e9, withGelu = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            double t = now();
            for (int r = 0; r < it; r++) seg_gemm_packed(M, 0, N, K, A, K, P, K, 0, C[0], N, b, 0, 0);
            t = (now() - t) / it; hot = t < hot ? t : hot;
            t = now();
            for (int r = 0; r < it; r++) seg_gemm_packed(M, 0, N, K, A, K, P, K, 0, C[r % NB], N, b, 0, 0);
            t = (now() - t) / it; cold = t < cold ? t : cold;
            if (gelu) {
                t = now();
                for (int r = 0; r < it; r++) seg_gemm_packed(M, 0, N, K, A, K, P, K, 0, C[0], N, b, 0, 1);
                t = (now() - t) / it; withGelu = t < withGelu ? t : withGelu;
            }
        }
        double f = 2.0 * M * N * K / 1e9;
        printf("%4d x %4d x %4d: hot %6.1f GFLOP/s, cold C %6.1f", M, N, K, f / hot, f / cold);
        if (gelu) printf(", + GELU %6.1f (+%.0f %%)", f / withGelu, (withGelu / hot - 1) * 100);
        printf("\n");
    }
    return 0;
}
