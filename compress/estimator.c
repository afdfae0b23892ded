/*
 * compress/estimator.c — the estimator table of estimator.h: names, accepted
 * formats and hooks, one row each; and resolving a side's estimator.
 *
 * Why these pairs: trust and clip need a grid with a step or a clip level (all
 * value formats; for composites the survivors' grid, pruned elements being
 * "quantized to 0"); lsq learns the step of a uniform grid, so int only; rbbm
 * is defined by the top-k threshold T_k, so unstructured sparsity only; masked
 * is the sparse baseline; pv keeps codes of a weight tensor between steps, so
 * weights only; noise() has no rounding and hence only the STE.
 *
 * The mask-only estimators (trust, clip, masked, rbbm) are a choice of backward
 * mask written by the projection (their hooks: estimator_mask.c). Estimators with
 * state have their own file (estimator_lsq.c, estimator_pv.c).
 */
#include "compress/estimator.h"

#include <string.h>

#include "compress/estimator_hooks.h"
#include "compress/format_table.h"
#include "core/error.h"

#define VALUE_FORMATS (QAT_ESTF_COMPOSITE | QAT_ESTF_VQ | QAT_ESTF_GRID | QAT_ESTF_INT | QAT_ESTF_BLOCK)
#define SPARSE_FORMATS (QAT_ESTF_SPARSE_NM | QAT_ESTF_SPARSE_MAG)

/* Rows in enum order (the order error messages list them in). */
static const qat_est_hooks TABLE[QAT_EST_COUNT] = {
    [QAT_EST_STE] = {.formats = QAT_ESTF_ALL},
    [QAT_EST_CLIP] = {.formats = QAT_ESTF_COMPOSITE | QAT_ESTF_GRID | QAT_ESTF_INT, .proj = qat_clip_proj},
    [QAT_EST_TRUST] = {.formats = VALUE_FORMATS, .proj = qat_trust_proj},
    [QAT_EST_LSQ] = {.formats = QAT_ESTF_INT, .learns_scale = 1, .nstate = 2,
                     .alloc = qat_lsq_alloc, .release = qat_lsq_release, .project = qat_lsq_forward,
                     .backward = qat_lsq_step_grads, .params = qat_lsq_params, .state = qat_lsq_state},
    [QAT_EST_RBBM] = {.formats = QAT_ESTF_SPARSE_MAG, .check = qat_rbbm_check, .proj = qat_rbbm_proj},
    [QAT_EST_PV] = {.formats = SPARSE_FORMATS | VALUE_FORMATS | QAT_ESTF_AQ, .weights_only = 1, .nstate = 5,
                    .check = qat_pv_check, .alloc = qat_pv_alloc, .release = qat_pv_release, .forward = qat_pv_forward,
                    .backward = qat_pv_backward, .after_step = qat_pv_after_step, .state = qat_pv_state},
    [QAT_EST_MASKED] = {.formats = SPARSE_FORMATS, .proj = qat_masked_proj},
};

const qat_est_hooks *qat_est_hooks_of(qat_est e) { return &TABLE[e]; }

/* The spellings live with the config key that parses them (core cannot include
 * compress/): qat_estimator_names[0] is "" (the format's default), then enum order. */
const char *qat_est_name(qat_est e) { return qat_estimator_names[e + 1]; }

/* Bit set of the estimators valid for f. */
static unsigned valid_set(const qat_fmt *f, int is_weight) {
    unsigned cls = qat_fmt_est_class(f), s = 0;
    for (int e = 0; e < QAT_EST_COUNT; e++)
        if ((TABLE[e].formats & cls) && (is_weight || !TABLE[e].weights_only)) s |= 1u << e;
    return s;
}

static void list_valid(unsigned set, char *buf, size_t n) {
    buf[0] = 0;
    for (int e = 0; e < QAT_EST_COUNT; e++)
        if (set & (1u << e)) {
            size_t l = strlen(buf);
            snprintf(buf + l, n - l, "%s%s", l ? ", " : "", qat_est_name((qat_est)e));
        }
}

int qat_est_resolve(const qat_fmt *f, const qat_compress_side *side, int is_weight, qat_est *out) {
    const char *scale = side->scale;
    const char *name = side->estimator;
    unsigned set = valid_set(f, is_weight);
    char valid[128];
    list_valid(set, valid, sizeof valid);
    if (scale[0] && strcmp(scale, "rms") && strcmp(scale, "absmax") && strcmp(scale, "lsq"))
        return qat_fail(QAT_EINPUT, "scale '%s' is not valid, expected rms, absmax or lsq", scale);
    /* before the estimator: scale lsq picks estimator lsq, and "lsq does not apply"
     * would hide that a block format's scale is part of its name */
    if (qat_fmt_is_block(f) && scale[0] && strcmp(scale, "rms"))
        return qat_fail(QAT_EINPUT, "scale '%s' does not apply to block format '%s': its scale rule is part of its "
                        "name (docs/formats.md), expected scale: rms (the default)", scale, f->name);
    qat_est e;
    if (!name[0]) {
        e = !strcmp(scale, "lsq") ? QAT_EST_LSQ : qat_fmt_default_est(f);
    } else {
        int found = -1;
        for (int i = 0; i < QAT_EST_COUNT; i++)
            if (!strcmp(name, qat_est_name((qat_est)i))) found = i;
        if (found < 0)
            return qat_fail(QAT_EINPUT, "estimator '%s' is unknown for format '%s', expected one of: %s", name, f->name, valid);
        e = (qat_est)found;
    }
    if (!(set & (1u << e)))
        return qat_fail(QAT_EINPUT, "estimator '%s' does not apply to %s format '%s', expected one of: %s", qat_est_name((qat_est)e),
                        is_weight ? "weight" : "activation", f->name, valid);
    if (!strcmp(scale, "lsq") && !TABLE[e].learns_scale)
        return qat_fail(QAT_EINPUT, "scale 'lsq' needs estimator lsq (format '%s'), expected scale rms or absmax with '%s'",
                        f->name, qat_est_name((qat_est)e));
    if (!strcmp(scale, "absmax") &&
        (f->val == QAT_VAL_VQ || f->val == QAT_VAL_AQ || f->val == QAT_VAL_NONE || f->noise || TABLE[e].learns_scale))
        return qat_fail(QAT_EINPUT, "scale 'absmax' applies to int, ternary and fp4 grids only (format '%s'), expected rms",
                        f->name);
    *out = e;
    return QAT_OK;
}
