/*
 * train/sample.c — sample.h: next-token choice and the generation loop.
 *
 * Every tie is broken towards the lower token id (greedy argmax and the top-k
 * cut alike), and the only randomness is one uniform draw per sampled token
 * from a stream keyed by the seed, so a (checkpoint, prompt, options, seed)
 * tuple always writes the same text. All buffers are made before the loop; a
 * token costs one forward of one sequence on a tape rewound each time.
 */
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/tape.h"
#include "core/error.h"
#include "model/llama.h"

/* The sampler's stream within the seed: independent of every training stream. */
#define SAMPLE_STREAM 0x5A3B1E5ull

void qat_sampler_init(qat_sampler *s, int vocab) {
    QAT_ASSERT(vocab >= 1);
    s->vocab = vocab;
    s->order = qat_xmalloc(sizeof(int32_t) * (size_t)vocab);
    s->prob = qat_xmalloc(sizeof(double) * (size_t)vocab);
}

void qat_sampler_free(qat_sampler *s) {
    free(s->order);
    free(s->prob);
    memset(s, 0, sizeof *s);
}

/* A logit as a sortable number: NaN (a diverged model) ranks below everything. */
static inline double logit_at(const float *l, int32_t j) { return isnan(l[j]) ? -INFINITY : (double)l[j]; }

/* order[0..k) = the k best ids by (logit desc, id asc). Ids arrive in ascending
 * order, so a newcomer equal to a kept value ranks after it: insertion keeps it
 * behind, and when full it replaces the last only if strictly better. O(V) when
 * the logits are not adversarially ascending, O(kV) at worst. */
static int select_top_k(qat_sampler *s, const float *l, int k) {
    int n = 0;
    for (int32_t j = 0; j < s->vocab; j++) {
        double v = logit_at(l, j);
        if (n == k && !(v > logit_at(l, s->order[k - 1]))) continue;
        int at = n < k ? n++ : k - 1; /* slot to fill, then bubble towards the front */
        while (at > 0 && v > logit_at(l, s->order[at - 1])) {
            s->order[at] = s->order[at - 1];
            at--;
        }
        s->order[at] = j;
    }
    return n;
}

int32_t qat_sample_pick(qat_sampler *s, const float *logits, double temperature, int top_k, qat_rng *rng) {
    const int V = s->vocab;
    int n;
    if (top_k > 0 && top_k < V) n = select_top_k(s, logits, top_k);
    else {
        n = V;
        for (int32_t j = 0; j < V; j++) s->order[j] = j;
    }
    /* the best candidate, lowest id among equals (order is ascending id when unsorted) */
    int32_t best = s->order[0];
    double mx = logit_at(logits, best);
    for (int i = 1; i < n; i++)
        if (logit_at(logits, s->order[i]) > mx) { best = s->order[i]; mx = logit_at(logits, best); }
    if (temperature == 0.0 || !isfinite(mx)) return best; /* greedy; or nothing finite to weigh */
    double sum = 0;
    for (int i = 0; i < n; i++) sum += s->prob[i] = exp((logit_at(logits, s->order[i]) - mx) / temperature);
    double u = qat_rng_uniform(rng) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->prob[i];
        if (u < acc) return s->order[i];
    }
    /* u landed on the rounding slack at the top: the last candidate with weight */
    for (int i = n - 1; i >= 0; i--)
        if (s->prob[i] > 0) return s->order[i];
    return best;
}

int64_t qat_sample_generate(qat_model *m, const int32_t *prompt, int64_t n_prompt, const qat_sample_opts *o,
                         int32_t *out, qat_sample_emit emit, void *ctx) {
    const int64_t T = m->s.seq_len, V = m->s.vocab;
    QAT_ASSERT(n_prompt >= 1 && o->tokens >= 1 && m->max_batch >= 1);
    /* the context is read from prompt + out through one contiguous history */
    int64_t n_hist = n_prompt + o->tokens;
    int32_t *hist = qat_xmalloc(sizeof(int32_t) * (size_t)n_hist); // (n_prompt + tokens)
    int32_t *window = qat_xcalloc((size_t)T, sizeof(int32_t));      // (1, T)
    memcpy(hist, prompt, sizeof(int32_t) * (size_t)n_prompt);
    qat_tape tp;
    qat_tape_init(&tp, 0);
    tp.grad_enabled = 0; /* evaluation: nothing recorded, no gradient buffers */
    qat_sampler s;
    qat_sampler_init(&s, (int)V);
    qat_rng rng = qat_rng_make(o->seed, SAMPLE_STREAM);
    int64_t i = 0;
    for (; i < o->tokens; i++) {
        int64_t len = n_prompt + i, w = len < T ? len : T;
        memcpy(window, hist + len - w, sizeof(int32_t) * (size_t)w);
        memset(window + w, 0, sizeof(int32_t) * (size_t)(T - w)); /* right padding: never seen by row w-1 */
        qat_tape_reset(&tp);
        /* step 0, as `qat eval` scores a checkpoint */
        const qat_tensor *logits = qat_model_logits(m, &tp, window, 1, 0); // (T, V)
        int32_t tok = qat_sample_pick(&s, logits->data + (w - 1) * V, o->temperature, o->top_k, &rng);
        hist[len] = out[i] = tok;
        if (emit && emit(tok, ctx)) { i++; break; }
    }
    qat_sampler_free(&s);
    qat_tape_free(&tp);
    free(window);
    free(hist);
    return i;
}
