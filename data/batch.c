/*
 * data/batch.c — window positions of training and validation rows (see batch.h).
 *
 * The permutation is a counter-based bijection rather than a shuffled index
 * array: nothing proportional to the corpus is stored, any step's rows are
 * computed in O(1) expected time (plus a binary search over the spans), and the
 * order depends only on the run seed.
 */
#include "data/batch.h"

#include <stdlib.h>

#include "core/error.h"
#include "core/rng.h"

int64_t qat_data_windows(int64_t n, int T) {
    if (T < 1 || n < (int64_t)T + 1) return 0;
    return (n - 1) / T;
}

/* One bijective round on k-bit integers: odd multiply and add mix low bits
 * upwards, the xor-shift mixes high bits back down. */
static inline uint64_t mix_round(uint64_t x, uint64_t mask, int shift, uint64_t key, int r) {
    uint64_t h = qat_hash3(key, (uint64_t)r, 0x9E37);
    x = (x * (h | 1)) & mask;
    x = (x + (h >> 32)) & mask;
    x ^= x >> shift;
    return x;
}

uint64_t qat_data_permute(uint64_t i, uint64_t n, uint64_t key) {
    QAT_ASSERT(n >= 1 && i < n);
    if (n == 1) return 0;
    int k = 1;
    while (k < 64 && (1ull << k) < n) k++;
    uint64_t mask = k == 64 ? ~0ull : (1ull << k) - 1;
    int shift = k / 2 > 0 ? k / 2 : 1;
    uint64_t x = i;
    /* Cycle walking: the mixer permutes [0, 2^k) and 2^k < 2n, so on average
     * fewer than two passes land back inside [0, n). */
    do {
        for (int r = 0; r < 4; r++) x = mix_round(x, mask, shift, key, r);
    } while (x >= n);
    return x;
}

void qat_data_split_init(qat_data_split *s, const uint16_t *tok, const qat_data_span *spans, int n, int T) {
    QAT_ASSERT(n >= 0);
    s->tok = tok;
    s->n_span = n;
    s->span = qat_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *s->span);
    s->first = qat_xmalloc((size_t)(n + 1) * sizeof *s->first);
    s->tokens = 0;
    s->first[0] = 0;
    for (int i = 0; i < n; i++) {
        s->span[i] = spans[i];
        s->tokens += spans[i].len;
        s->first[i + 1] = s->first[i] + qat_data_windows(spans[i].len, T);
    }
    s->windows = s->first[n];
}

void qat_data_split_free(qat_data_split *s) {
    free(s->span);
    free(s->first);
    s->span = NULL;
    s->first = NULL;
    s->n_span = 0;
    s->windows = s->tokens = 0;
}

/* The span holding window w: the last i with first[i] <= w (binary search). */
static int span_of(const qat_data_split *s, int64_t w) {
    int lo = 0, hi = s->n_span - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (s->first[mid] <= w) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

int64_t qat_data_train_start(const qat_data_split *s, int T, uint64_t seed, int64_t step, int B, int b) {
    int64_t W = s->windows;
    QAT_ASSERT(W >= 1 && step >= 0 && b >= 0 && b < B);
    int64_t k = step * (int64_t)B + b;
    uint64_t pass = (uint64_t)(k / W);
    int64_t w = (int64_t)qat_data_permute((uint64_t)(k % W), (uint64_t)W, qat_hash3(seed, pass, 0xBA7C4));
    int i = span_of(s, w);
    const qat_data_span *sp = &s->span[i];
    int64_t slack = sp->len - 1 - (s->first[i + 1] - s->first[i]) * (int64_t)T; /* tokens the grid leaves over */
    int64_t shift = (int64_t)(qat_hash3(seed, pass, 0x5419F7) % (uint64_t)(slack + 1));
    return sp->start + shift + (w - s->first[i]) * T;
}

int64_t qat_data_val_start(const qat_data_split *s, int T, int64_t i, int B, int b) {
    int64_t W = s->windows;
    QAT_ASSERT(W >= 1 && i >= 0 && b >= 0 && b < B);
    int64_t w = (i * (int64_t)B + b) % W;
    int j = span_of(s, w);
    return s->span[j].start + (w - s->first[j]) * T;
}

void qat_data_fill_row(const uint16_t *tok, int64_t start, int T, int32_t *inputs, int32_t *targets) {
    const uint16_t *p = tok + start;
    for (int t = 0; t < T; t++) {
        inputs[t] = p[t];
        targets[t] = p[t + 1];
    }
}
