// Atomics and the spin-wait hint for the engine's worker pool (Swift's Synchronization module needs a newer macOS
// than the package targets). 64-bit, sequentially consistent.
#include "segment_kernels.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif
long seg_atomic_load(const long *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
void seg_atomic_store(long *p, long v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
long seg_atomic_add(long *p, long v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
int seg_atomic_cas(long *p, long expected, long desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
void seg_spin_pause(void) {
#if defined(__x86_64__)
    _mm_pause();
#endif
}

unsigned seg_fp_flush_denormals(void) {
#if defined(__x86_64__)
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);      // FTZ (bit 15): denormal results become 0; DAZ (bit 6): denormal inputs read as 0
    return old;
#else
    return 0;
#endif
}

void seg_fp_restore(unsigned state) {
#if defined(__x86_64__)
    _mm_setcsr(state);
#else
    (void)state;
#endif
}
