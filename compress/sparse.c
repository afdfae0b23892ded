/*
 * compress/sparse.c — exact top-k thresholds by radix selection, and N:M masks.
 *
 * Radix select: |x| as a uint32 (sign bit cleared) is monotone in the value, so
 * the k-th largest is found digit by digit (4 passes of 8 bits), each pass a
 * histogram of the elements that share the prefix found so far. Integer counts
 * make the parallel version deterministic.
 */
#include "compress/sparse.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

int64_t qat_sparse_keep_count(double s, int64_t n) {
    int64_t drop = (int64_t)llround(s * (double)n);
    if (drop < 0) drop = 0;
    if (drop > n) drop = n;
    return n - drop;
}

static inline uint32_t abs_bits(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return u & 0x7FFFFFFFu;
}

/* Rows up to this length (activations per token, weight rows of the small presets)
 * take a bitwise search on a stack copy: four 256-bin histogram passes cost ~2,000
 * counter updates whatever n is, 10× the work of the row itself at n = 64, and
 * quickselect's data-dependent branches mispredict about once per element. */
enum { SMALL_SELECT_MAX = 1024 };

/* The k-th largest of u[0..n) (1 <= k <= n, every u < 2^31), found bit by bit from
 * the top: keep a bit when at least k elements are >= the prefix with that bit set.
 * Branch-free counting passes that the compiler vectorizes; exact. Two shortcuts
 * cut the 31 passes to about a dozen on real rows: the bits above the highest one
 * in which the elements differ are everyone's (one AND/OR pass finds them), and as
 * soon as exactly k elements are >= the prefix they are the k largest, so the
 * answer is their minimum (one more pass). */
#if defined(__AVX512F__)
/* How many of u[0..n) are >= c: lane masks counted with popcount, no vector sum
 * to reduce per pass (the rows are a few vectors long, so that reduction was a
 * third of each pass). */
static inline int64_t count_ge(const uint32_t *u, int64_t n, uint32_t c) {
    __m512i vc = _mm512_set1_epi32((int)c);
    int64_t count = 0, i = 0;
    for (; i + 16 <= n; i += 16)
        count += __builtin_popcount(_mm512_cmpge_epu32_mask(_mm512_loadu_si512(u + i), vc));
    if (i < n) {
        __mmask16 t = (__mmask16)((1u << (n - i)) - 1);
        count += __builtin_popcount(_mm512_mask_cmpge_epu32_mask(t, _mm512_maskz_loadu_epi32(t, u + i), vc));
    }
    return count;
}

/* The smallest of u[0..n) that is >= p (the row has one). GCC left this loop
 * scalar (a compare and two conditional moves per element): it was the largest
 * part of a sparse run's top-k, itself ~17% of an s4 sp50+int4 step. */
static inline uint32_t min_ge(const uint32_t *u, int64_t n, uint32_t p) {
    __m512i vp = _mm512_set1_epi32((int)p), mn = _mm512_set1_epi32(-1);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i x = _mm512_loadu_si512(u + i);
        mn = _mm512_mask_min_epu32(mn, _mm512_cmpge_epu32_mask(x, vp), x, mn);
    }
    if (i < n) {
        __mmask16 t = (__mmask16)((1u << (n - i)) - 1);
        __m512i x = _mm512_maskz_loadu_epi32(t, u + i);
        mn = _mm512_mask_min_epu32(mn, _mm512_mask_cmpge_epu32_mask(t, x, vp), x, mn);
    }
    return (uint32_t)_mm512_reduce_min_epu32(mn);
}
#else
static inline int64_t count_ge(const uint32_t *u, int64_t n, uint32_t c) {
    int32_t count = 0;
    for (int64_t i = 0; i < n; i++) count += u[i] >= c;
    return count;
}

static inline uint32_t min_ge(const uint32_t *u, int64_t n, uint32_t p) {
    uint32_t mn = 0xFFFFFFFFu;
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = u[i] >= p ? u[i] : 0xFFFFFFFFu;
        mn = v < mn ? v : mn;
    }
    return mn;
}
#endif

static uint32_t select_kth_largest(const uint32_t *u, int64_t n, int64_t k) {
    uint32_t all_or = 0, all_and = 0xFFFFFFFFu;
    for (int64_t i = 0; i < n; i++) all_or |= u[i], all_and &= u[i];
    uint32_t diff = all_or ^ all_and;
    if (!diff) return u[0]; /* all equal */
    int top = 31 - __builtin_clz(diff);
    uint32_t prefix = all_and & ~((2u << top) - 1u); /* shared by all, so n elements are >= it */
    int64_t have = n;                                 /* elements >= prefix */
    for (int bit = top; bit >= 0 && have != k; bit--) {
        uint32_t cand = prefix | (1u << bit);
        int64_t count = count_ge(u, n, cand);
        if (count >= k) prefix = cand, have = count;
    }
    if (have != k) return prefix; /* ties at the k-th value: prefix is that value */
    return min_ge(u, n, prefix);
}

float qat_sparse_kth_abs(const float *x, int64_t n, int64_t k, int parallel) {
    if (k <= 0) return INFINITY;
    QAT_ASSERT(k <= n);
    if (n <= SMALL_SELECT_MAX) {
        uint32_t u[SMALL_SELECT_MAX];
        for (int64_t i = 0; i < n; i++) u[i] = abs_bits(x[i]);
        uint32_t bits = select_kth_largest(u, n, k);
        float out;
        memcpy(&out, &bits, 4);
        return out;
    }
    uint32_t prefix = 0, mask = 0;
    int64_t want = k; /* rank still sought among elements matching the prefix */
    for (int shift = 24; shift >= 0; shift -= 8) {
        int64_t hist[256];
        memset(hist, 0, sizeof hist);
        if (parallel) {
#pragma omp parallel for schedule(static) reduction(+ : hist[:256])
            for (int64_t i = 0; i < n; i++) {
                uint32_t u = abs_bits(x[i]);
                if ((u & mask) == prefix) hist[(u >> shift) & 0xFF]++;
            }
        } else {
            for (int64_t i = 0; i < n; i++) {
                uint32_t u = abs_bits(x[i]);
                if ((u & mask) == prefix) hist[(u >> shift) & 0xFF]++;
            }
        }
        /* walk digits from the largest down until `want` is covered */
        int d = 255;
        for (; d > 0; d--) {
            if (hist[d] >= want) break;
            want -= hist[d];
        }
        prefix |= (uint32_t)d << shift;
        mask |= 0xFFu << shift;
    }
    float out;
    memcpy(&out, &prefix, 4);
    return out;
}

void qat_sparse_nm_row(const float *x, uint8_t *keep, int64_t n, int nn, int m) {
    for (int64_t g = 0; g < n; g += m) {
        const float *xg = x + g;
        for (int i = 0; i < m; i++) {
            /* rank of element i = how many beat it (larger, or equal at a lower index) */
            float ai = fabsf(xg[i]);
            int rank = 0;
            for (int j = 0; j < m; j++) {
                float aj = fabsf(xg[j]);
                rank += (aj > ai) | ((aj == ai) & (j < i));
            }
            keep[g + i] = rank < nn;
        }
    }
}
