/*
 * core/rng.c — Gaussian draws for the generators of rng.h.
 */
#include "rng.h"

#include <math.h>

static double box_muller(uint64_t a, uint64_t b) {
    /* u1 in (0, 1]: never log(0). */
    double u1 = ((double)(a >> 11) + 1.0) * 0x1.0p-53;
    double u2 = qat_u64_to_unit(b);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double qat_rng_normal(qat_rng *r) {
    uint64_t a = qat_rng_u64(r);
    uint64_t b = qat_rng_u64(r);
    return box_muller(a, b);
}

double qat_normal_at(uint64_t key, uint64_t i) {
    uint64_t a = qat_hash3(key, i, 1);
    uint64_t b = qat_hash3(key, i, 2);
    return box_muller(a, b);
}
