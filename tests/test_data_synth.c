/*
 * tests/test_data_synth.c — the synthetic corpus (data/synth.h).
 *
 * What must hold for it to be a trustworthy test bed: the bytes are a function of
 * (seed, vocab, topics) only (not of thread count or corpus length); the entropy
 * it reports is the entropy of the distribution the tokens were really drawn from
 * (checked by re-scoring the split token by token from visible tokens alone, and
 * against the mean −log p within Monte-Carlo error); the distribution sums to
 * one; and the long-range structure is there (copy segments reproduce earlier
 * tokens exactly, the topic token shifts the content distribution).
 */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/error.h"
#include "data/synth.h"

static qat_synth *make(uint64_t seed, int vocab, int topics) {
    qat_synth_params p;
    qat_synth_params_default(&p, seed, vocab, topics);
    qat_synth *s;
    assert_int_equal(qat_synth_create(&p, &s), QAT_OK);
    return s;
}

static void test_deterministic_across_threads_and_lengths(void **state) {
    (void)state;
    qat_synth *s = make(7, 256, 16);
    const int64_t n = 300000;
    uint16_t *a = malloc(n * 2), *b = malloc(n * 2), *c = malloc(n * 2);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    qat_synth_generate(s, 0, n, a, NULL);
    omp_set_num_threads(2);
    qat_synth_generate(s, 0, n, b, NULL);
    omp_set_num_threads(saved);
    assert_memory_equal(a, b, n * 2);
    /* A shorter corpus is a prefix of a longer one (block sizes differ). */
    qat_synth_generate(s, 0, 5000, c, NULL);
    assert_memory_equal(a, c, 5000 * 2);
    /* Another seed gives another corpus; the validation range differs from training. */
    qat_synth *s2 = make(8, 256, 16);
    qat_synth_generate(s2, 0, n, c, NULL);
    int64_t same = 0;
    for (int64_t i = 0; i < n; i++) same += a[i] == c[i];
    assert_true(same < n / 10);
    qat_synth_generate(s, QAT_SYNTH_VAL_DOC0, n, c, NULL);
    same = 0;
    for (int64_t i = 0; i < n; i++) same += a[i] == c[i];
    assert_true(same < n / 10);
    assert_int_equal(a[0], 0); /* starts with a document */
    for (int64_t i = 0; i < n; i++) assert_true(a[i] < 256);
    free(a); free(b); free(c);
    qat_synth_free(s);
    qat_synth_free(s2);
}

/* Re-score a split from its tokens alone: every entropy the generator reported must
 * equal the entropy of the decoder's distribution, the distribution must sum to 1,
 * and the mean −log p of the actual tokens must match the mean entropy within MC error. */
static void check_entropy_accounting(qat_synth *s, int64_t n) {
    int V = qat_synth_params_of(s)->vocab;
    uint16_t *t = malloc(n * 2);
    float *ent = malloc(n * sizeof *ent);
    double *p = malloc(V * sizeof *p);
    qat_synth_generate(s, QAT_SYNTH_VAL_DOC0, n, t, ent);
    assert_true(isnan(ent[0]));
    double sum_nll = 0, sum_h = 0, sum_d2 = 0;
    int64_t m = 0, d0 = 0;
    qat_synth_state st;
    qat_synth_state_init(&st);
    qat_synth_state_push(s, &st, t);
    for (int64_t i = 1; i < n; i++) {
        qat_synth_dist(s, &st, t + d0, p);
        double tot = 0, h = 0;
        for (int v = 0; v < V; v++) {
            tot += p[v];
            if (p[v] > 0) h -= p[v] * log(p[v]);
        }
        assert_true(fabs(tot - 1) < 1e-9);
        assert_true(fabs(h - ent[i]) < 1e-4 * (1 + h));
        assert_true(p[t[i]] > 0); /* the token drawn was possible */
        double nll = -log(p[t[i]]);
        sum_nll += nll;
        sum_h += h;
        sum_d2 += (nll - h) * (nll - h);
        m++;
        if (t[i] == 0) { /* a new document: its BOS was predicted by the old one */
            d0 = i;
            qat_synth_state_init(&st);
        }
        qat_synth_state_push(s, &st, t + d0);
    }
    double mean_nll = sum_nll / m, mean_h = sum_h / m;
    double se = sqrt(sum_d2 / m / m);
    assert_true(fabs(mean_h - qat_synth_mean_entropy(ent, n)) < 1e-6);
    if (!(fabs(mean_nll - mean_h) < 4 * se + 1e-9))
        fail_msg("mean -log p %.5f vs entropy rate %.5f (MC error %.5f)", mean_nll, mean_h, se);
    /* Unigram entropy exceeds the rate: context carries information. */
    double *c = calloc(V, sizeof *c), hu = 0;
    for (int64_t i = 0; i < n; i++) c[t[i]]++;
    for (int v = 0; v < V; v++) if (c[v]) hu -= c[v] / n * log(c[v] / n);
    assert_true(hu > mean_h + 0.5);
    free(c); free(t); free(ent); free(p);
}

static void test_entropy_accounting_tiny(void **state) {
    (void)state;
    qat_synth *s = make(3, 64, 4); /* tiny: 64 tokens, 4 topics, 26 content tokens */
    check_entropy_accounting(s, 60000);
    qat_synth_free(s);
}

static void test_entropy_accounting_default(void **state) {
    (void)state;
    qat_synth *s = make(11, 256, 16);
    check_entropy_accounting(s, 60000);
    qat_synth_free(s);
}

/* The default corpus lands in the intended ranges (see data/README.md). */
static void test_default_entropies_in_range(void **state) {
    (void)state;
    qat_synth *s = make(0, 256, 16);
    const int64_t n = 1 << 18;
    uint16_t *t = malloc(n * 2);
    float *ent = malloc(n * sizeof *ent);
    qat_synth_generate(s, QAT_SYNTH_VAL_DOC0, n, t, ent);
    double rate = qat_synth_mean_entropy(ent, n), c[256] = {0}, hu = 0;
    for (int64_t i = 0; i < n; i++) c[t[i]]++;
    for (int v = 0; v < 256; v++) if (c[v]) hu -= c[v] / n * log(c[v] / n);
    if (!(hu > 4.5 && hu < 5.4 && rate > 2.0 && rate < 3.3))
        fail_msg("unigram %.3f, rate %.3f out of the intended range", hu, rate);
    free(t); free(ent);
    qat_synth_free(s);
}

/* Copy segments, decoded here independently of the library's state machine. */
static void test_copies_reproduce_earlier_tokens(void **state) {
    (void)state;
    qat_synth *s = make(5, 256, 16);
    const qat_synth_layout *L = qat_synth_layout_of(s);
    const qat_synth_params *P = qat_synth_params_of(s);
    const int64_t n = 400000;
    uint16_t *t = malloc(n * 2);
    qat_synth_generate(s, 0, n, t, NULL);
    int64_t segments = 0, copied = 0, far = 0, d0 = 0;
    int left = 0, off = 0, expect_spec = 0;
    for (int64_t i = 1; i < n; i++) {
        int x = t[i];
        if (x == L->bos) { /* BOS never appears inside a document, copies included */
            assert_int_equal(left, 0);
            assert_int_equal(expect_spec, 0);
            d0 = i;
            continue;
        }
        int64_t pos = i - d0;
        if (pos == 1) { assert_true(x >= L->topic0 && x < L->topic0 + P->topics); continue; }
        if (left > 0) {
            assert_true(pos - off >= 2); /* the source lies inside the content */
            assert_int_equal(x, t[i - off]);
            left--;
            copied++;
        } else if (expect_spec) {
            int m = x - L->spec0;
            assert_true(m >= 0 && m < L->n_spec);
            off = P->offsets[m / QAT_SYNTH_N_LENGTHS];
            left = P->lengths[m % QAT_SYNTH_N_LENGTHS];
            expect_spec = 0;
            segments++;
            far += off >= 32;
        } else if (x == L->copy) {
            expect_spec = 1;
        } else {
            assert_true(x >= L->content0); /* free positions draw content tokens only */
        }
    }
    assert_true(segments > 400);
    assert_true(far > segments / 4);            /* long-range copies are common */
    assert_true(copied > n / 20 && copied < n / 4); /* a visible but minor share of tokens */
    free(t);
    qat_synth_free(s);
}

/* Documents of different topics use visibly different content distributions. */
static void test_topics_shift_the_distribution(void **state) {
    (void)state;
    qat_synth *s = make(2, 256, 4);
    const qat_synth_layout *L = qat_synth_layout_of(s);
    const int64_t n = 400000;
    uint16_t *t = malloc(n * 2);
    qat_synth_generate(s, 0, n, t, NULL);
    static double c[4][256];
    double tot[4] = {0};
    int topic = -1;
    for (int64_t i = 1; i < n; i++) {
        if (t[i - 1] == L->bos) topic = t[i] - L->topic0;
        else if (topic >= 0 && t[i] >= L->content0) { c[topic][t[i]]++; tot[topic]++; }
    }
    /* Total-variation distance between topic 0 and 1 content histograms. */
    double tv = 0;
    for (int v = 0; v < 256; v++) tv += fabs(c[0][v] / tot[0] - c[1][v] / tot[1]);
    assert_true(tv / 2 > 0.1);
    free(t);
    qat_synth_free(s);
}

static void test_rejects_tiny_vocab(void **state) {
    (void)state;
    qat_synth_params p;
    qat_synth_params_default(&p, 0, 40, 16);
    qat_synth *s = NULL;
    assert_int_equal(qat_synth_create(&p, &s), QAT_EINPUT);
    assert_null(s);
    assert_non_null(strstr(qat_errmsg(), "vocab 40"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_across_threads_and_lengths),
        cmocka_unit_test(test_entropy_accounting_tiny),
        cmocka_unit_test(test_entropy_accounting_default),
        cmocka_unit_test(test_default_entropies_in_range),
        cmocka_unit_test(test_copies_reproduce_earlier_tokens),
        cmocka_unit_test(test_topics_shift_the_distribution),
        cmocka_unit_test(test_rejects_tiny_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
