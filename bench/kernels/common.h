// Shared by the kernel drivers: a monotonic clock, filled buffers, and a sort for medians.
#ifndef SEGMENT_BENCH_KERNELS_COMMON_H
#define SEGMENT_BENCH_KERNELS_COMMON_H
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// n floats, 64-byte aligned, filled with a fixed pattern in [-scale/2, scale/2).
static float *filled(size_t n, float scale) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++) p[i] = (((i * 7919) % 1000) * 0.001f - 0.5f) * scale;
    return p;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
#endif
