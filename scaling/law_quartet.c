/*
 * scaling/law_quartet.c — the quartet law of docs/scaling-laws.md (Castro et al.,
 * "Quartet: Native FP4 Training Can Be Optimal for Large Language Models", 2025):
 *
 *     L(N, D) = (A·(N·effN)^-α + B·(D·effD)^-β)^γ + E
 *
 * effN prices a forward scheme (the W/A format pair, the decoupled law's eff),
 * effD a backward scheme (compress.gradients.*, keyed by qat_fit_bwd_key); the
 * fp32/fp32 forward and the fp32 backward are the baselines, held at 1.
 *
 * Like the other laws it works on ln L̂ through log-sum-exps, so that no θ the
 * optimiser tries overflows:  S = LSE(a − α(ln N + ln effN), b − β(ln D + ln effD)),
 * ln L̂ = LSE(γ·S, e). The gradient is the chain of the two softmaxes. The paper
 * fits in stages (the baseline's six constants on bf16 runs, then each eff with
 * those held); qat fits all of them jointly on every run, as the decoupled law
 * does, so the quantized runs inform the shared constants too.
 *
 * The identifiability rules of the effs (counting, before the fit) live here
 * too: an eff is a multiplier of one axis, measured by how the loss of its
 * runs moves along that axis, so effN needs its forward scheme at two N or
 * more and effD its backward scheme at two D or more, and each family needs
 * its baseline (an fp32 run) or one value held, or it trades off against A or B.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#if QAT_HAVE_COMPRESS
#include "compress/gradq.h"
#endif
#include "scaling/fit.h"

void qat_fit_bwd_key(char out[QAT_FIT_FMT_LEN], const char *format, const char *rounding, int hadamard) {
    if (!format || !format[0] || !strcmp(format, "fp32")) {
        snprintf(out, QAT_FIT_FMT_LEN, "fp32");
        return;
    }
    char h[24] = "";
    if (hadamard > 1) snprintf(h, sizeof h, "@h%d", hadamard); /* a block of 1 is the identity */
    snprintf(out, QAT_FIT_FMT_LEN, "%.40s%s%s", format, rounding && !strcmp(rounding, "sr") ? "@sr" : "", h);
}

const char *qat_fit_run_bwd(const qat_fit_run *r) { return r->gfmt[0] ? r->gfmt : "fp32"; }

/* A backward scheme key split into what compress.gradients.* holds: the
 * trailing "@sr" and "@hB" modifiers (either order, each at most once) are
 * taken off s from the right, the rest is the format. 0 with *why NULL on
 * success; otherwise *why says what is wrong with the modifiers. */
static int split_scheme(const char *s, char fmt[QAT_FIT_FMT_LEN], int *sr, int *h, const char **why) {
    snprintf(fmt, QAT_FIT_FMT_LEN, "%s", s);
    *sr = 0, *h = 0, *why = NULL;
    for (char *at; (at = strrchr(fmt, '@'));) {
        if (!strcmp(at, "@sr")) {
            if (*sr) return *why = "@sr is given twice (each modifier once)", -1;
            *sr = 1;
        } else if (at[1] == 'h' && at[2] && strspn(at + 2, "0123456789") == strlen(at + 2)) {
            if (*h) return *why = "@hBLOCK is given twice (each modifier once)", -1;
            long b = at[2] == '0' || strlen(at + 2) > 7 ? -1 : strtol(at + 2, NULL, 10);
            if (b < 2 || (b & (b - 1)))
                return *why = "@hBLOCK needs BLOCK a power of two, at least 2, without leading zeros (no @h: no "
                              "rotation)", -1;
            *h = (int)b;
        } else {
            break; /* not a scheme modifier: part of the format (which then refuses it) */
        }
        *at = 0;
    }
    return 0;
}

int qat_fit_bwd_check(const char *where, const char *s, char out[QAT_FIT_FMT_LEN]) {
    size_t n = strlen(s);
    if (!strcmp(s, "fp32") || n == 0) {
        snprintf(out, QAT_FIT_FMT_LEN, "fp32");
        return QAT_OK;
    }
    if (n >= QAT_FIT_FMT_LEN)
        return qat_fail(QAT_EINPUT, "%s: backward scheme '%s' is longer than %d characters", where, s,
                        QAT_FIT_FMT_LEN - 1);
    char fmt[QAT_FIT_FMT_LEN];
    int sr, h;
    const char *why;
    split_scheme(s, fmt, &sr, &h, &why);
    if (!why && !strcmp(fmt, "fp32"))
        why = "the fp32 backward is the unquantized baseline and takes no @sr or @h (write fp32)";
    if (!why && !fmt[0]) why = "it names no format before its modifiers";
#if QAT_HAVE_COMPRESS
    /* The format, rounding and block through the trainer's own parser of
     * compress.gradients.* (compress/gradq.c): a key the trainer would refuse
     * (sp50, int4@g32, nvfp4@46, mxfp6e3m2, @h2048) cannot stand for a run. */
    char gwhy[1024];
    if (!why) {
        qat_compress_grad c = {.hadamard = h};
        snprintf(c.format, sizeof c.format, "%s", fmt);
        snprintf(c.rounding, sizeof c.rounding, "%s", sr ? "sr" : "rtn");
        qat_gradq g;
        if (qat_gradq_init(&g, &c)) {
            snprintf(gwhy, sizeof gwhy, "%s", qat_errmsg());
            why = gwhy;
        }
    }
#else
    (void)fmt;
#endif
    if (why)
        return qat_fail(QAT_EINPUT, "%s: backward scheme '%s' is not fp32 or FORMAT[@sr][@hBLOCK] as "
                        "compress.gradients.* takes it: %s", where, s, why);
    /* spelled as a run log's config gives it: FORMAT, then @sr, then @hB */
    qat_fit_bwd_key(out, fmt, sr ? "sr" : "rtn", h);
    return QAT_OK;
}

int qat_fit_quartet_fix_name(const char *where, const char *name, char *out, size_t n) {
    /* effD:G was matched by its letters, so an equal scheme spelt another way
     * (its modifiers in the other order) was "no parameter of that name" */
    if (strncmp(name, "effD:", 5)) {
        snprintf(out, n, "%s", name);
        return QAT_OK;
    }
    char key[QAT_FIT_FMT_LEN];
    QAT_TRY(qat_fit_bwd_check(where, name + 5, key));
    snprintf(out, n, "effD:%s", key);
    return QAT_OK;
}

int qat_fit_runs_mixed_bwd(const qat_fit_runs *rs, const char **a, const char **b) {
    for (int i = 1; i < rs->n; i++)
        if (strcmp(qat_fit_run_bwd(&rs->run[0]), qat_fit_run_bwd(&rs->run[i]))) {
            *a = qat_fit_run_bwd(&rs->run[0]);
            *b = qat_fit_run_bwd(&rs->run[i]);
            return 1;
        }
    return 0;
}

/* The --where options that select the runs of backward scheme `key` by their
 * stored config (the inverse of qat_fit_bwd_key). */
static void where_of_key(const char *key, char *out, size_t cap) {
    char fmt[QAT_FIT_FMT_LEN];
    int sr, h;
    const char *why;
    split_scheme(key, fmt, &sr, &h, &why); /* key passed qat_fit_bwd_check */
    if (!strcmp(fmt, "fp32"))
        snprintf(out, cap, "--where compress.gradients.format=fp32");
    else
        snprintf(out, cap, "--where compress.gradients.format=%s --where compress.gradients.rounding=%s "
                 "--where compress.gradients.hadamard=%d", fmt, sr ? "sr" : "rtn", h);
}

int qat_fit_check_bwd(const qat_fit_runs *rs, qat_fit_law law) {
    const char *a, *b;
    if (law == QAT_LAW_QUARTET || !qat_fit_runs_mixed_bwd(rs, &a, &b)) return QAT_OK;
    /* every scheme, sorted and with its run count; the one kept is fp32 when
     * present (the baseline), else the one with the most runs */
    int n = rs->n, m = 0, keep = 0, any_csv = 0;
    const char **sch = qat_xcalloc((size_t)n, sizeof *sch);
    int *cnt = qat_xcalloc((size_t)n, sizeof *cnt);
    for (int i = 0; i < n; i++) {
        const char *g = qat_fit_run_bwd(&rs->run[i]);
        any_csv |= rs->run[i].from_csv;
        int j = 0;
        while (j < m && strcmp(sch[j], g)) j++;
        if (j == m) {
            int at = m++;
            while (at > 0 && strcmp(sch[at - 1], g) > 0) sch[at] = sch[at - 1], cnt[at] = cnt[at - 1], at--;
            sch[at] = g, cnt[at] = 0, j = at;
        }
        cnt[j]++;
    }
    for (int j = 0; j < m; j++)
        if (!strcmp(sch[keep], "fp32") ? 0 : (!strcmp(sch[j], "fp32") || cnt[j] > cnt[keep])) keep = j;
    char list[2048] = "", excl[2048] = "", where[512] = "";
    for (int j = 0; j < m; j++) {
        size_t l = strlen(list), e = strlen(excl);
        snprintf(list + l, sizeof list - l, "%s'%s' (%d run%s)", j ? ", " : "", sch[j], cnt[j], cnt[j] == 1 ? "" : "s");
        if (j != keep) snprintf(excl + e, sizeof excl - e, "%s--exclude '*/*/%s'", e ? " " : "", sch[j]);
    }
    if (!any_csv) where_of_key(sch[keep], where, sizeof where);
    int rc = qat_fail(QAT_EINPUT, "--law %s: the runs were trained with %d different backward schemes (%s; "
                      "compress.gradients.* or the CSV's grad_format), and the %s law has no term for the backward "
                      "pass; fit them with --law quartet (effD per backward scheme), or keep the '%s' runs only "
                      "with %s%s%s", qat_fit_law_name(law), m, list, qat_fit_law_name(law), sch[keep], excl,
                      where[0] ? ", or with " : "", where);
    free(sch);
    free(cnt);
    return rc;
}

static int str_cmp(const void *a, const void *b) { return strcmp(a, b); }

/* Sorted distinct strings of width w in place; returns their count. */
static int sort_unique(char *v, int n, size_t w) {
    qsort(v, (size_t)n, w, str_cmp);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || strcmp(v + (size_t)(m - 1) * w, v + (size_t)i * w)) memmove(v + (size_t)m++ * w, v + (size_t)i * w, w);
    return m;
}

static int index_of(const char *v, int m, size_t w, const char *key) {
    const char *hit = bsearch(key, v, (size_t)m, w, str_cmp);
    QAT_ASSERT(hit);
    return (int)((hit - v) / (ptrdiff_t)w);
}

int qat_fit_quartet_init(qat_fit_problem *p, const qat_fit_runs *rs, int np) {
    int n = rs->n;
    p->bwd = qat_xcalloc((size_t)n, sizeof *p->bwd);
    p->key = qat_xcalloc((size_t)n, sizeof *p->key);
    for (int i = 0; i < n; i++) {
        snprintf(p->bwd[i], sizeof p->bwd[i], "%s", qat_fit_run_bwd(&rs->run[i]));
        snprintf(p->key[i], sizeof p->key[i], "%s/%s", p->pair[p->pair_of[i]], p->bwd[i]);
    }
    /* pair[] is sorted already, so both orders are independent of file order */
    p->n_bwd = sort_unique((char *)p->bwd, n, sizeof *p->bwd);
    p->n_keys = sort_unique((char *)p->key, n, sizeof *p->key);
    p->bwd_of = qat_xmalloc((size_t)n * sizeof(int));
    p->key_pair = qat_xmalloc((size_t)p->n_keys * sizeof(int));
    p->key_bwd = qat_xmalloc((size_t)p->n_keys * sizeof(int));
    for (int i = 0; i < n; i++) {
        p->bwd_of[i] = index_of((char *)p->bwd, p->n_bwd, sizeof *p->bwd, qat_fit_run_bwd(&rs->run[i]));
        char key[QAT_FIT_KEY_LEN];
        snprintf(key, sizeof key, "%s/%s", p->pair[p->pair_of[i]], p->bwd[p->bwd_of[i]]);
        int k = index_of((char *)p->key, p->n_keys, sizeof *p->key, key);
        p->key_pair[k] = p->pair_of[i];
        p->key_bwd[k] = p->bwd_of[i];
    }
    p->effd_of_bwd = qat_xmalloc((size_t)p->n_bwd * sizeof(int));
    for (int j = 0; j < p->n_bwd; j++) p->effd_of_bwd[j] = strcmp(p->bwd[j], "fp32") ? np++ : -1;
    return np;
}

double qat_fit_quartet_log_effd(const qat_fit_problem *p, const double *theta, int j) {
    int k = p->effd_of_bwd[j];
    return k >= 0 ? theta[k] : 0.0;
}

/* Softmax of two: w[0], w[1]; returns the LSE. */
static double lse2(double u0, double u1, double w[2]) {
    double m = fmax(u0, u1), e0 = exp(u0 - m), e1 = exp(u1 - m), s = e0 + e1;
    w[0] = e0 / s;
    w[1] = e1 / s;
    return m + log(s);
}

double qat_fit_quartet_predict(const qat_fit_problem *p, const double *th, int i, double *grad, double scale) {
    int kn = p->eff_of_pair[p->pair_of[i]], kd = p->effd_of_bwd[p->bwd_of[i]];
    double xN = p->logN[i] + (kn >= 0 ? th[kn] : 0.0), xD = p->logD[i] + (kd >= 0 ? th[kd] : 0.0);
    double al = th[QAT_FIT_ALPHA], be = th[QAT_FIT_BETA], ga = exp(th[QAT_FIT_GAMMA]); /* θ holds ln γ */
    double s[2], w[2];
    double S = lse2(th[QAT_FIT_A] - al * xN, th[QAT_FIT_B] - be * xD, s); /* ln(A(N effN)^-α + B(D effD)^-β) */
    double Z = lse2(ga * S, th[QAT_FIT_E], w);                           /* ln L̂ */
    if (grad) {
        double c = scale * w[0] * ga; /* ∂Z/∂S */
        grad[QAT_FIT_A] += c * s[0];
        grad[QAT_FIT_ALPHA] -= c * s[0] * xN;
        grad[QAT_FIT_B] += c * s[1];
        grad[QAT_FIT_BETA] -= c * s[1] * xD;
        grad[QAT_FIT_GAMMA] += scale * w[0] * S * ga; /* ∂Z/∂ln γ */
        grad[QAT_FIT_E] += scale * w[1];
        if (kn >= 0) grad[kn] -= c * s[0] * al;
        if (kd >= 0) grad[kd] -= c * s[1] * be;
    }
    return Z;
}

double qat_fit_quartet_objective(const qat_fit_problem *p, const double *theta, const double *w, double *g) {
    if (g) memset(g, 0, (size_t)p->np * sizeof *g);
    double f = 0.0;
    for (int i = 0; i < p->n; i++) {
        double wi = w ? w[i] : 1.0, dr;
        if (wi == 0.0) continue;
        /* the gradient needs dr first: predict once without it, then add */
        double r = qat_fit_quartet_predict(p, theta, i, NULL, 0.0) - p->logL[i];
        f += wi * qat_fit_huber(r, QAT_FIT_HUBER_DELTA, &dr);
        if (g) qat_fit_quartet_predict(p, theta, i, g, wi * dr);
    }
    if (g)
        for (int k = 0; k < p->np; k++)
            if (p->fixed[k]) g[k] = 0.0;
    return f;
}

/* ---- identifiability of the effs (docs/scaling-laws.md, "What the data must vary") ---- */

#define SAME_LOG 1e-3 /* as identify.c: values whose logarithms differ by less count as one */

/* Distinct values of axis v over the runs with group[i] == g; the first value in *first. */
static int distinct_in(const qat_fit_problem *p, const double *v, const int *group, int g, int *runs, double *first) {
    double *seen = qat_xmalloc((size_t)p->n * sizeof *seen);
    int k = 0;
    *runs = 0;
    for (int i = 0; i < p->n; i++) {
        if (group[i] != g) continue;
        (*runs)++;
        int dup = 0;
        for (int j = 0; j < k && !dup; j++) dup = fabs(seen[j] - v[i]) <= SAME_LOG;
        if (!dup) seen[k++] = v[i];
    }
    *first = k ? exp(seen[0]) : NAN;
    free(seen);
    return k;
}

/* Rule q1: each free eff needs its own axis to vary within its scheme. */
static int check_within(const qat_fit_problem *p, int forward) {
    int groups = forward ? p->n_pairs : p->n_bwd;
    for (int g = 0; g < groups; g++) {
        int k = forward ? p->eff_of_pair[g] : p->effd_of_bwd[g];
        if (k < 0 || p->fixed[k]) continue;
        int runs;
        double v;
        int m = distinct_in(p, forward ? p->logN : p->logD, forward ? p->pair_of : p->bwd_of, g, &runs, &v);
        if (m >= 2) continue;
        const char *axis = forward ? "N" : "D";
        return qat_fail(QAT_EINPUT, "%s takes one value (%.4g) in the %d runs of the %s scheme '%s': %s is a "
                        "multiplier of %s, measured by how the loss of those runs moves along %s, so it is not "
                        "identifiable; add runs of '%s' at another %s (%s), or hold it with --fix %s=VALUE", axis, v,
                        runs, forward ? "forward" : "backward", forward ? p->pair[g] : p->bwd[g], p->name[k], axis,
                        axis, forward ? p->pair[g] : p->bwd[g], axis,
                        forward ? "model size" : "token budget", p->name[k]);
    }
    return QAT_OK;
}

/* Rule q2: effs are relative to the fp32 baseline of their family. */
static int check_anchor(const qat_fit_problem *p, int forward) {
    int scale = forward ? QAT_FIT_A : QAT_FIT_B;
    if (p->fixed[scale]) return QAT_OK;
    int groups = forward ? p->n_pairs : p->n_bwd, example = -1;
    for (int g = 0; g < groups; g++) {
        int k = forward ? p->eff_of_pair[g] : p->effd_of_bwd[g];
        if (k < 0 || p->fixed[k]) return QAT_OK;
        if (example < 0) example = k;
    }
    if (example < 0) return QAT_OK;
    return qat_fail(QAT_EINPUT, "no run has the %s baseline (%s) and no %s is fixed, in the %d runs: the %ss are "
                    "multipliers relative to it, so without it they all trade off against %s and are not "
                    "identifiable; add %s runs, or fix one (e.g. --fix %s=...) or %s",
                    forward ? "forward" : "backward", forward ? "fp32/fp32" : "fp32", forward ? "effN" : "effD", p->n,
                    forward ? "effN" : "effD", forward ? "A" : "B", forward ? "fp32/fp32" : "fp32-backward",
                    p->name[example], forward ? "A" : "B");
}

int qat_fit_quartet_identify(const qat_fit_problem *p) {
    QAT_TRY(check_anchor(p, 1));
    QAT_TRY(check_anchor(p, 0));
    QAT_TRY(check_within(p, 1));
    return check_within(p, 0);
}
