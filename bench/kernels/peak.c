// The core's fp32 FMA peak: 24 independent AVX-512 FMA chains, registers only (no memory traffic).
#include "common.h"
#include <stdio.h>

int main(void) {
    long n = 100000000, left = n;
    double t = now();
    __asm__ volatile(
        "vxorps %%zmm0, %%zmm0, %%zmm0\n"
        "1:\n"
        ".irp r, 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25\n"
        "vfmadd231ps %%zmm0, %%zmm1, %%zmm\\r\n"
        ".endr\n"
        "dec %0\n"
        "jnz 1b\n"
        : "+r"(left) : : "memory", "xmm0", "xmm1");
    t = now() - t;
    printf("AVX-512 FMA peak, 1 thread: %.1f GFLOP/s (%.2f GHz if 2 FMA units)\n", n * 24.0 * 32 / t / 1e9,
           n * 24.0 / 2 / t / 1e9);
    return 0;
}
