/*
 * compress/estimator.h — backward rules (docs/formats.md "Estimators"): one table
 * row per estimator with its name, the formats it accepts and its hooks into the
 * quantizer.
 *
 * Adding an estimator is one enum value, its spelling in core/config_keys.c's
 * qat_estimator_names (the config key parses it; same order), one row in estimator.c's table and its
 * hooks: in estimator_mask.c when it only chooses the backward mask, else in its
 * own estimator_NAME.c (declared in estimator_hooks.h). The quantizer (quantizer.c) never names an estimator: it
 * calls whatever hooks the row has. A rule that has no meaning for a format
 * (rbbm on int4, lsq on vq, pv on activations) is an input error listing the
 * estimators that are valid for that format.
 */
#ifndef QAT_COMPRESS_ESTIMATOR_H
#define QAT_COMPRESS_ESTIMATOR_H

#include <stdint.h>

#include "compress/format.h"
#include "core/config.h"

typedef struct qat_quantizer qat_quantizer; /* quantizer.h; the hooks only pass it on */

typedef enum {
    QAT_EST_STE = 0, /* gradient passes unchanged (sparse: dense STE, pruned weights too) */
    QAT_EST_CLIP,    /* gradient where |x| <= c·s (and kept) */
    QAT_EST_TRUST,   /* QuEST: gradient where |q(x) − x| <= T·RMS (vq: ‖x_v‖ <= R·RMS) */
    QAT_EST_LSQ,     /* learned step (Esser et al.), int grids */
    QAT_EST_RBBM,    /* RMSE-banded backward masking, unstructured sparsity */
    QAT_EST_PV,      /* PV: stored codes, top-τ re-projection after each step (weights) */
    QAT_EST_MASKED,  /* sparse: gradient only where kept (the U-paper's MP baseline) */
    QAT_EST_COUNT    /* number of estimators (rows of the table) */
} qat_est;

/* Format classes, for the `formats` column: which formats an estimator accepts. */
enum {
    QAT_ESTF_DENSE = 1u << 0,      /* fp32 and noise(): no rounding */
    QAT_ESTF_SPARSE_NM = 1u << 1,  /* pure N:M sparsity */
    QAT_ESTF_SPARSE_MAG = 1u << 2, /* pure unstructured (magnitude) sparsity */
    QAT_ESTF_COMPOSITE = 1u << 3,  /* sparsity + a value grid */
    QAT_ESTF_VQ = 1u << 4,         /* vector codebooks */
    QAT_ESTF_GRID = 1u << 5,       /* ternary and fp4 scalar grids */
    QAT_ESTF_INT = 1u << 6,        /* int grids */
    QAT_ESTF_BLOCK = 1u << 7,      /* block-scaled hardware formats (mx*, nvfp4, intB@gG) */
    QAT_ESTF_AQ = 1u << 8,         /* learned additive codebooks (aqMxBgG, weights only) */
    QAT_ESTF_ALL = (1u << 9) - 1,
};

/* One estimator. Hooks left NULL mean "nothing to do" (or the default path). */
typedef struct {
    unsigned formats;   /* QAT_ESTF_* classes it applies to */
    int weights_only;   /* keeps a tensor's state between steps: weights only */
    int learns_scale;   /* learns its own step: the one scale 'lsq' selects, no absmax */
    int nstate;         /* checkpointed arrays (qat_quantizer_state) */
    int nformat_state;  /* the first of them the format owns (aq codebooks, scales, codes): they mean the
                         * same under every estimator of the format (qat_quantizer_carry) */
    /* Validate the estimator's options and derive its settings into q (side, fmt,
     * cols are set); QAT_EINPUT naming the option. Runs before anything else is
     * allocated for q. */
    int (*check)(qat_quantizer *q, int natural_group);
    /* Choose the mask q->proj writes (kind and threshold) for the rounding formats. */
    void (*proj)(qat_quantizer *q);
    /* Allocate the state it keeps, once q's projection and mask are set up. */
    void (*alloc)(qat_quantizer *q);
    void (*release)(qat_quantizer *q);
    /* Replaces the whole forward, x → y (rows unrotated in x). */
    void (*forward)(qat_quantizer *q, const float *x, float *y, int64_t rows);
    /* Replaces the projection of the already-rotated rows y, in place. */
    void (*project)(qat_quantizer *q, float *y, int64_t rows);
    /* Runs first in the backward with dL/dy (its own parameters' gradients). */
    void (*backward)(qat_quantizer *q, const float *gy, int64_t rows);
    /* After each optimizer step, with the latent weights. */
    void (*after_step)(qat_quantizer *q, const float *w);
    /* Trainable parameters (qat_quantizer_params), 0 when none. */
    int64_t (*params)(qat_quantizer *q, float **value, float **grad);
    /* Checkpoint array i < nstate (qat_quantizer_state). */
    void (*state)(qat_quantizer *q, int i, const char **name, float **data, int64_t *n);
} qat_est_hooks;

/* The row of estimator e. */
const qat_est_hooks *qat_est_hooks_of(qat_est e);

/* "ste", "clip", "trust", "lsq", "rbbm", "pv", "masked". */
const char *qat_est_name(qat_est e);

/* The estimator for one side: side->estimator ("" = the format's default: trust
 * for int/ternary/fp4/vq/composites, masked for pure sparsity, ste for fp32 and
 * noise(); scale "lsq" with no estimator selects lsq). Checks the pair and the
 * scale rule; QAT_EINPUT listing the valid estimators otherwise. */
int qat_est_resolve(const qat_fmt *f, const qat_compress_side *side, int is_weight, qat_est *out);

/* QAT_EINPUT "WHERE: compress.SIDE.KEY: VALUE has no effect ...: why; expected ..."
 * for the first option of compress.weights or compress.activations that the
 * side's format under its (resolved) estimator would ignore: group without a
 * scale to group (fp32, pure sparsity, lsq's one step per row or tensor),
 * per_row off an spNN weight sparsity, an estimator's parameter under another
 * estimator, pv_beta2 and pv_delta_decay with pv_lr 0. Such a run trains as with
 * the default while its config, run.h5 and `qat fit --where` say otherwise.
 * Only a key the user gave (the file, a --set or a sweep's grid: cfg->key_at)
 * at a value other than its default is refused: a printed config, which writes
 * every key, loads back, and a checkpoint's stored settings under a new
 * estimator (`qat eval --set compress.weights.estimator=trust`) are not the
 * user's doing. A side whose format or estimator is refused is left to the
 * check that refuses it. WHERE is the key's own line or --set. A config marked
 * stored (a run already on disk: core/config.h) passes as it was made. */
int qat_est_check_config(const qat_config *cfg);

#endif
