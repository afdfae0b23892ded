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

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
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
    if (!strcmp(scale, "absmax") && (f->val == QAT_VAL_VQ || f->val == QAT_VAL_AQ || f->val == QAT_VAL_NONE || f->noise))
        return qat_fail(QAT_EINPUT, "scale 'absmax' applies to int, ternary and fp4 grids only (format '%s'), expected rms",
                        f->name);
    /* on an int grid the format is fine: the conflict is the estimator, which
     * learns the step that absmax would fix (the message once blamed int4 for
     * not being an int grid) */
    if (!strcmp(scale, "absmax") && TABLE[e].learns_scale) {
        char others[128];
        list_valid(set & ~(1u << e), others, sizeof others);
        return qat_fail(QAT_EINPUT, "scale 'absmax' does not combine with estimator %s, which learns its own step "
                        "(format '%s'), expected scale rms (or lsq) with estimator %s, or scale absmax with another "
                        "estimator (%s)", qat_est_name(e), f->name, qat_est_name(e), others);
    }
    *out = e;
    return QAT_OK;
}

/* ------------------------------------------------- options that would do nothing */

/* "estimator trust" or "estimator trust (the default for int4)". */
static void est_phrase(const qat_fmt *f, const qat_compress_side *side, qat_est e, char *buf, size_t n) {
    if (side->estimator[0]) snprintf(buf, n, "estimator %s", qat_est_name(e));
    else snprintf(buf, n, "estimator %s (the default for %s)", qat_est_name(e), f->name);
}

/* Where a key was given and its value as the config prints it. */
typedef struct {
    char pos[QAT_PATH_MAX + 96]; /* "FILE:LINE:COL" or "--set KEY=VALUE" */
    char val[64];                /* "16", "true", "0.2" */
} given_at;

/* Key `leaf` of side `sec` ("compress.weights") was given by the user and holds
 * another value than its default (`changed`): 1 with g filled. */
static int given_changed(const qat_config *cfg, const char *sec, const char *leaf, int changed, given_at *g) {
    char key[64];
    snprintf(key, sizeof key, "%s.%s", sec, leaf);
    int ki = qat_config_key_find(key);
    QAT_ASSERT(ki >= 0);
    if (!changed || !(cfg->key_at[ki].line || cfg->key_at[ki].set)) return 0;
    qat_config_where(cfg, key, g->pos, sizeof g->pos);
    char *t = qat_config_key_text(cfg, ki);
    snprintf(g->val, sizeof g->val, "%s", t);
    free(t);
    return 1;
}

static int check_side(const qat_config *cfg, const qat_compress_side *side, const qat_compress_side *def,
                      int is_weight) {
    const char *sec = is_weight ? "compress.weights" : "compress.activations";
    qat_fmt fmt;
    qat_est e;
    if (qat_fmt_parse(side->format, &fmt) || qat_est_resolve(&fmt, side, is_weight, &e)) {
        qat_clear_error(); /* refused, with a better message, when the model's quantizers are made */
        return QAT_OK;
    }
    const qat_fmt *f = &fmt;
    char est[96];
    given_at g;
    est_phrase(f, side, e, est, sizeof est);
    const int dense = qat_fmt_is_dense(f), pure_sparse = !f->noise && f->sp != QAT_SP_NONE && f->val == QAT_VAL_NONE;
    if (given_changed(cfg, sec, "group", side->group != def->group, &g)) {
        if (dense)
            return qat_fail(QAT_EINPUT, "%s: %s.group: %d has no effect on format fp32: nothing is quantized, so "
                            "there is no scale to group; expected group: 0 (the default) or a quantized format", g.pos,
                            sec, side->group);
        if (pure_sparse)
            return qat_fail(QAT_EINPUT, "%s: %s.group: %d has no effect on format %s: a sparsity keeps the values "
                            "it keeps, so there is no scale to group, and its top-k is per tensor or per row "
                            "(per_row), never per group; expected group: 0 (the default)", g.pos, sec, side->group,
                            f->name);
        if (e == QAT_EST_LSQ)
            return qat_fail(QAT_EINPUT, "%s: %s.group: %d has no effect with %s: lsq learns one step per %s, not "
                            "per group (docs/formats.md, \"lsq\"); expected group: 0 (the default), or for a scale "
                            "per group another estimator (trust, clip, ste), or a group-scaled format such as "
                            "int4@g32", g.pos, sec, side->group, est, is_weight ? "row" : "tensor");
    }
    if (given_changed(cfg, sec, "per_row", side->per_row != def->per_row, &g)) {
        const char *dv = def->per_row ? "true" : "false";
        if (!is_weight)
            return qat_fail(QAT_EINPUT, "%s: %s.per_row: %s has no effect on activations: their top-k is always "
                            "per row (per token); expected per_row: %s (the default)", g.pos, sec, g.val, dv);
        if (f->noise || f->sp != QAT_SP_MAGNITUDE)
            return qat_fail(QAT_EINPUT, "%s: %s.per_row: %s has no effect on format %s: it chooses per-row "
                            "instead of per-tensor top-k for an spNN sparsity of the weights (sp50, sp50+int4)%s; "
                            "expected per_row: %s (the default) or such a format", g.pos, sec, g.val, f->name,
                            f->noise ? ", and noise() selects nothing" : "", dv);
    }
    /* an estimator's own parameters, under another estimator */
    static const struct {
        qat_est e;
        const char *key;
        size_t off;
        int is_int;
    } own[] = {
        {QAT_EST_CLIP, "clip_scale", offsetof(qat_compress_side, clip_scale), 0},
        {QAT_EST_TRUST, "trust", offsetof(qat_compress_side, trust), 0},
        {QAT_EST_RBBM, "rbbm_p", offsetof(qat_compress_side, rbbm_p), 0},
        {QAT_EST_PV, "pv_tau", offsetof(qat_compress_side, pv_tau), 0},
        {QAT_EST_PV, "pv_group", offsetof(qat_compress_side, pv_group), 1},
        {QAT_EST_PV, "pv_lr", offsetof(qat_compress_side, pv_lr), 0},
        {QAT_EST_PV, "pv_beta2", offsetof(qat_compress_side, pv_beta2), 0},
        {QAT_EST_PV, "pv_delta_decay", offsetof(qat_compress_side, pv_delta_decay), 0},
    };
    for (size_t i = 0; i < sizeof own / sizeof *own; i++) {
        const char *v = (const char *)side + own[i].off, *dv = (const char *)def + own[i].off;
        int changed = own[i].is_int ? *(const int *)v != *(const int *)dv : *(const double *)v != *(const double *)dv;
        if (own[i].e == e || !given_changed(cfg, sec, own[i].key, changed, &g)) continue;
        return qat_fail(QAT_EINPUT, "%s: %s.%s: %s has no effect with %s: it is a parameter of estimator %s; "
                        "expected estimator: %s, or %s left at its default", g.pos, sec, own[i].key, g.val, est,
                        qat_est_name(own[i].e), qat_est_name(own[i].e), own[i].key);
    }
    /* pv_lr 0: the buffer is the weight itself, moved by the model's AdamW, so the
     * buffer's own Adam (pv_beta2) and its decay towards the codes (pv_delta_decay) never run */
    if (e == QAT_EST_PV && !(side->pv_lr > 0)) {
        if (given_changed(cfg, sec, "pv_beta2", side->pv_beta2 != def->pv_beta2, &g))
            return qat_fail(QAT_EINPUT, "%s: %s.pv_beta2: %s has no effect with pv_lr: 0: the buffer is then the "
                            "weight, moved by the model's AdamW, with no Adam of its own; expected pv_lr > 0, or "
                            "pv_beta2 left at its default", g.pos, sec, g.val);
        if (given_changed(cfg, sec, "pv_delta_decay", side->pv_delta_decay != def->pv_delta_decay, &g))
            return qat_fail(QAT_EINPUT, "%s: %s.pv_delta_decay: %s has no effect with pv_lr: 0: the buffer is then "
                            "the weight, which never decays towards the codes; expected pv_lr > 0, or "
                            "pv_delta_decay left at its default", g.pos, sec, g.val);
    }
    return QAT_OK;
}

/* A Hadamard block on a model that compresses nothing: both sides fp32 and the
 * backward not quantized. H·Hᵀ = I, so the rotation cancels in every product and
 * only moves last bits: the run would be an fp32 run recorded as rotated. With
 * either side or the backward quantized it has an effect (the fp32 side rotates
 * with the other one, and the backward quantizes the rotated operands). */
static int check_rotation(const qat_config *cfg) {
    if (strcmp(cfg->gradients.format, "fp32")) return QAT_OK;
    const qat_compress_side *side[2] = {&cfg->weights, &cfg->activations};
    for (int s = 0; s < 2; s++) {
        qat_fmt f;
        if (qat_fmt_parse(side[s]->format, &f)) {
            qat_clear_error(); /* refused with its own message when the model is made */
            return QAT_OK;
        }
        if (!qat_fmt_is_dense(&f)) return QAT_OK;
    }
    for (int s = 0; s < 2; s++) {
        const char *sec = s ? "compress.activations" : "compress.weights";
        given_at g;
        if (!given_changed(cfg, sec, "hadamard", side[s]->hadamard > 0, &g)) continue;
        return qat_fail(QAT_EINPUT, "%s: %s.hadamard: %s has no effect when nothing is compressed: weights and "
                        "activations are fp32 and the backward is not quantized, so the rotation cancels in every "
                        "product (docs/formats.md, \"hadamard\"); expected hadamard: -1 (the default) or 0, or a "
                        "compressed format on a side", g.pos, sec, g.val);
    }
    return QAT_OK;
}

int qat_est_check_config(const qat_config *cfg) {
    /* a run made before this check (a resume, a sweep over its directory) is taken as
     * made: refusing it would strand its checkpoint (core/config.h, stored) */
    if (cfg->stored) return QAT_OK;
    qat_config *d = qat_xmalloc(sizeof *d); /* the key table's defaults: one source of truth */
    qat_config_defaults(d);
    int rc = check_side(cfg, &cfg->weights, &d->weights, 1);
    if (!rc) rc = check_side(cfg, &cfg->activations, &d->activations, 0);
    if (!rc) rc = check_rotation(cfg);
    free(d);
    return rc;
}
