// The core's bf16 dot-product peak against its fp32 FMA peak, alternating, registers only: 24 independent chains
// of vdpbf16ps (AVX512-BF16: 16 lanes x 2 bf16 products = 64 flops each), of vfmadd231ps (32 flops each), and 8 of
// the first with 16 of the second interleaved (do they run on separate execution ports, so that a kernel mixing
// them could beat FMAs alone?). On a CPU without AVX512-BF16 it says so and measures nothing.
#include "common.h"
#include <cpuid.h>
#include <stdio.h>

static double chains(int kind, long n) {
    long left = n;
    double t = now();
    if (kind == 2)
        __asm__ volatile("vxorps %%zmm0, %%zmm0, %%zmm0\n1:\n"
                         ".irp r, 2,3,4,5,6,7,8,9\nvdpbf16ps %%zmm0, %%zmm1, %%zmm\\r\n.endr\n"
                         ".irp r, 10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25\n"
                         "vfmadd231ps %%zmm0, %%zmm1, %%zmm\\r\n.endr\ndec %0\njnz 1b\n"
                         : "+r"(left) : : "memory", "xmm0", "xmm1");
    else if (kind == 1)
        __asm__ volatile("vxorps %%zmm0, %%zmm0, %%zmm0\n1:\n"
                         ".irp r, 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25\n"
                         "vdpbf16ps %%zmm0, %%zmm1, %%zmm\\r\n.endr\ndec %0\njnz 1b\n"
                         : "+r"(left) : : "memory", "xmm0", "xmm1");
    else
        __asm__ volatile("vxorps %%zmm0, %%zmm0, %%zmm0\n1:\n"
                         ".irp r, 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25\n"
                         "vfmadd231ps %%zmm0, %%zmm1, %%zmm\\r\n.endr\ndec %0\njnz 1b\n"
                         : "+r"(left) : : "memory", "xmm0", "xmm1");
    return now() - t;
}

int main(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) {
        printf("bf16 peak: this CPU has no AVX512-BF16\n");
        return 0;
    }
    long n = 20000000;
    double best[3] = {1e9, 1e9, 1e9};
    for (int round = 0; round < 10; round++)
        for (int k = 0; k < 3; k++) {
            double t = chains(k, n);
            if (t < best[k]) best[k] = t;
        }
    double fma = n * 24.0 / best[0], dp = n * 24.0 / best[1];
    printf("1 thread, best of 10: vfmadd231ps %.2f G/s (%.0f GFLOP/s), vdpbf16ps %.2f G/s (%.0f GFLOP/s): "
           "a bf16 dot product issues at %.2fx the FMA rate, %.2fx its flops\n",
           fma / 1e9, fma * 32 / 1e9, dp / 1e9, dp * 64 / 1e9, dp / fma, 2 * dp / fma);
    printf("  8 vdpbf16ps + 16 vfmadd231ps interleaved: %.0f GFLOP/s (FMAs alone %.0f)\n",
           n * (8.0 * 64 + 16.0 * 32) / best[2] / 1e9, fma * 32 / 1e9);
    return 0;
}
