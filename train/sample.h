/*
 * train/sample.h — text generation from a trained model (`qat sample`, docs/cli.md).
 *
 * Generation reuses the model's own forward (qat_model_logits) in evaluation
 * mode, so weights and activations are compressed exactly as in training and
 * `qat eval`: what a W2A2 model writes is what its loss measures. There is no
 * KV cache: every new token recomputes the forward over the last seq_len tokens
 * (cheap at the sizes qat trains), which keeps generation on the one code path
 * that training tests.
 *
 * Sampling is split from the model so it can be tested on hand-made logits.
 */
#ifndef QAT_TRAIN_SAMPLE_H
#define QAT_TRAIN_SAMPLE_H

#include <stdint.h>

#include "core/rng.h"

struct qat_model;

typedef struct {
    int64_t tokens;       /* tokens to generate, >= 1 */
    double temperature;   /* softmax(logits / T); 0 = greedy (argmax, ties to the lowest id) */
    int top_k;            /* keep the k largest logits (ties to the lower id); 0 or >= vocab = all */
    uint64_t seed;        /* keys the sampler's random stream */
} qat_sample_opts;

/* Scratch for qat_sample_pick over a vocabulary of V: made once, reused per token. */
typedef struct {
    int vocab;       /* V */
    int32_t *order;  /* (V) candidate ids, best first after a top-k selection */
    double *prob;    /* (V) unnormalised probabilities of the candidates */
} qat_sampler;

void qat_sampler_init(qat_sampler *s, int vocab);
void qat_sampler_free(qat_sampler *s);

/* One token from logits (V): greedy when temperature == 0 (no random draw),
 * otherwise one uniform draw from `rng` against softmax(logits / T) over the
 * top-k candidates. A pure function of (logits, options, rng state). */
int32_t qat_sample_pick(qat_sampler *s, const float *logits, double temperature, int top_k, qat_rng *rng);

/* Called with every generated token as soon as it exists (streaming output);
 * non-zero stops the generation there (the output can no longer be written). */
typedef int (*qat_sample_emit)(int32_t token, void *ctx);

/* Continue prompt[0..n_prompt) (n_prompt >= 1, every id < vocab) by o->tokens
 * tokens written to out (o->tokens ids). The context is the last seq_len tokens
 * of prompt + generated so far; a shorter context is padded on the right, which
 * cannot change the logits at its last position (llama.h). m must have been
 * created with max_batch >= 1. emit may be NULL. Returns the tokens generated:
 * o->tokens, or fewer when emit asked to stop. */
int64_t qat_sample_generate(struct qat_model *m, const int32_t *prompt, int64_t n_prompt, const qat_sample_opts *o,
                         int32_t *out, qat_sample_emit emit, void *ctx);

#endif
