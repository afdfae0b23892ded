/*
 * compress/estimator.h — backward rules (docs/formats.md "Estimators") and which formats
 * they make sense for.
 *
 * The table of valid (format, estimator) pairs lives in estimator.c so the
 * quantizer, the config checks and the error messages agree. A rule that has no
 * meaning for a format (rbbm on int4, lsq on vq, pv on activations) is an input
 * error listing the estimators that are valid for that format.
 */
#ifndef QAT_COMPRESS_ESTIMATOR_H
#define QAT_COMPRESS_ESTIMATOR_H

#include "compress/format.h"
#include "core/config.h"

typedef enum {
    QAT_EST_STE = 0, /* gradient passes unchanged (sparse: dense STE, pruned weights too) */
    QAT_EST_CLIP,    /* gradient where |x| <= c·s (and kept) */
    QAT_EST_TRUST,   /* QuEST: gradient where |q(x) − x| <= T·RMS (vq: ‖x_v‖ <= R·RMS) */
    QAT_EST_LSQ,     /* learned step (Esser et al.), int grids */
    QAT_EST_RBBM,    /* RMSE-banded backward masking, unstructured sparsity */
    QAT_EST_PV,      /* PV: stored codes, top-τ re-projection after each step (weights) */
    QAT_EST_MASKED   /* sparse: gradient only where kept (the U-paper's MP baseline) */
} qat_est;

/* "ste", "clip", "trust", "lsq", "rbbm", "pv", "masked". */
const char *qat_est_name(qat_est e);

/* The estimator for one side: side->estimator ("" = the format's default: trust
 * for int/ternary/fp4/vq/composites, masked for pure sparsity, ste for fp32 and
 * noise(); scale "lsq" with no estimator selects lsq). Checks the pair and the
 * scale rule; QAT_EINPUT listing the valid estimators otherwise. */
int qat_est_resolve(const qat_fmt *f, const qat_compress_side *side, int is_weight, qat_est *out);

#endif
