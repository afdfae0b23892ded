/*
 * core/clock.h — seconds on the monotonic clock, for wall times, ETAs and rates
 * (never for anything that must be reproducible).
 */
#ifndef QAT_CORE_CLOCK_H
#define QAT_CORE_CLOCK_H

#include <time.h>

/* Seconds since an arbitrary fixed point; only differences mean anything. */
static inline double qat_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#endif
