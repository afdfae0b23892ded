/*
 * core/threads.c — thread count and floating-point mode of the worker pool.
 */
#include "threads.h"

#include <omp.h>
#include <xmmintrin.h>

int qat_threads_init(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    /* Run a region with exactly n threads so every pool thread gets the flags. */
#pragma omp parallel num_threads(n)
    {
        _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ (bit 15) | DAZ (bit 6) */
    }
    return n;
}
