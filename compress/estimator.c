/*
 * compress/estimator.c — the (format, estimator) table of estimator.h.
 *
 * Why these pairs: trust and clip need a grid with a step or a clip level (all
 * value formats; for composites the survivors' grid, pruned elements being
 * "quantized to 0"); lsq learns the step of a uniform grid, so int only; rbbm
 * is defined by the top-k threshold T_k, so unstructured sparsity only; masked
 * is the sparse baseline; pv keeps codes of a weight tensor between steps, so
 * weights only; noise() has no rounding and hence only the STE.
 */
#include "compress/estimator.h"

#include <string.h>

#include "core/error.h"

static const char *NAMES[] = {"ste", "clip", "trust", "lsq", "rbbm", "pv", "masked"};

const char *qat_est_name(qat_est e) { return NAMES[e]; }

/* Bit set of the estimators valid for f. */
static unsigned valid_set(const qat_fmt *f, int is_weight) {
    unsigned s;
#define B(e) (1u << (e))
    if (f->noise || qat_fmt_is_dense(f)) return B(QAT_EST_STE);
    if (f->val == QAT_VAL_NONE) { /* pure sparsity */
        s = B(QAT_EST_MASKED) | B(QAT_EST_STE) | B(QAT_EST_PV);
        if (f->sp == QAT_SP_MAGNITUDE) s |= B(QAT_EST_RBBM);
    } else if (f->sp != QAT_SP_NONE) { /* composite */
        s = B(QAT_EST_TRUST) | B(QAT_EST_STE) | B(QAT_EST_CLIP) | B(QAT_EST_PV);
    } else if (f->val == QAT_VAL_VQ) {
        s = B(QAT_EST_TRUST) | B(QAT_EST_STE) | B(QAT_EST_PV);
    } else {
        s = B(QAT_EST_TRUST) | B(QAT_EST_STE) | B(QAT_EST_CLIP) | B(QAT_EST_PV);
        if (f->val == QAT_VAL_INT) s |= B(QAT_EST_LSQ);
    }
    if (!is_weight) s &= ~B(QAT_EST_PV);
#undef B
    return s;
}

static qat_est default_est(const qat_fmt *f) {
    if (f->noise || qat_fmt_is_dense(f)) return QAT_EST_STE;
    if (f->val == QAT_VAL_NONE) return QAT_EST_MASKED;
    return QAT_EST_TRUST;
}

static void list_valid(unsigned set, char *buf, size_t n) {
    buf[0] = 0;
    for (int e = 0; e <= QAT_EST_MASKED; e++)
        if (set & (1u << e)) {
            size_t l = strlen(buf);
            snprintf(buf + l, n - l, "%s%s", l ? ", " : "", NAMES[e]);
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
    qat_est e;
    if (!name[0]) {
        e = !strcmp(scale, "lsq") ? QAT_EST_LSQ : default_est(f);
    } else {
        int found = -1;
        for (int i = 0; i <= QAT_EST_MASKED; i++)
            if (!strcmp(name, NAMES[i])) found = i;
        if (found < 0)
            return qat_fail(QAT_EINPUT, "estimator '%s' is unknown for format '%s', expected one of: %s", name, f->name, valid);
        e = (qat_est)found;
    }
    if (!(set & (1u << e)))
        return qat_fail(QAT_EINPUT, "estimator '%s' does not apply to %s format '%s', expected one of: %s", NAMES[e],
                        is_weight ? "weight" : "activation", f->name, valid);
    if (!strcmp(scale, "lsq") && e != QAT_EST_LSQ)
        return qat_fail(QAT_EINPUT, "scale 'lsq' needs estimator lsq (format '%s'), expected scale rms or absmax with '%s'",
                        f->name, NAMES[e]);
    if (!strcmp(scale, "absmax") &&
        (f->val == QAT_VAL_VQ || f->val == QAT_VAL_NONE || f->noise || e == QAT_EST_LSQ))
        return qat_fail(QAT_EINPUT, "scale 'absmax' applies to int, ternary and fp4 grids only (format '%s'), expected rms",
                        f->name);
    *out = e;
    return QAT_OK;
}
