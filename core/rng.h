/*
 * core/rng.h — deterministic random numbers.
 *
 * Everything random in qat (initialisation, batch positions, the synthetic corpus,
 * Monte-Carlo GMSE, noise injection, bootstrap resamples) draws from these
 * generators, so a run is a pure function of its seed. Two styles:
 *
 *  - a stream (qat_rng): splitmix64, 8 bytes of state, cheap to save in a checkpoint;
 *  - a counter hash (qat_hash64 / qat_rng_at): the value for (seed, i, j) computed
 *    directly, so the batch of step 1000 needs no replay of steps 0..999 and
 *    parallel loops stay deterministic whatever the thread count.
 */
#ifndef QAT_CORE_RNG_H
#define QAT_CORE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s; /* splitmix64 state: the whole generator */
} qat_rng;

/* Mix a 64-bit value into a well-distributed one (splitmix64 finaliser). */
static inline uint64_t qat_hash64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Combine several keys: qat_hash3(seed, stream, index). */
static inline uint64_t qat_hash3(uint64_t a, uint64_t b, uint64_t c) {
    return qat_hash64(qat_hash64(qat_hash64(a) ^ b) ^ c);
}

/* A generator for (seed, stream): different streams are independent. */
static inline qat_rng qat_rng_make(uint64_t seed, uint64_t stream) {
    qat_rng r = {qat_hash3(seed, stream, 0x5EEDull)};
    return r;
}

static inline uint64_t qat_rng_u64(qat_rng *r) {
    r->s += 0x9E3779B97F4A7C15ull;
    uint64_t x = r->s;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double qat_u64_to_unit(uint64_t x) { return (double)(x >> 11) * 0x1.0p-53; }
static inline double qat_rng_uniform(qat_rng *r) { return qat_u64_to_unit(qat_rng_u64(r)); }

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias < 2^-32 for n < 2^32). */
static inline uint64_t qat_rng_below(qat_rng *r, uint64_t n) {
    return (uint64_t)(((unsigned __int128)qat_rng_u64(r) * n) >> 64);
}

/* Standard normal (Box–Muller, one value per call; the pair's twin is discarded
 * so that the state stays a single integer). */
double qat_rng_normal(qat_rng *r);

/* Standard normal for counter (key, i): used where parallel loops need
 * values independent of the thread schedule. */
double qat_normal_at(uint64_t key, uint64_t i);

#endif
