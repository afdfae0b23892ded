/*
 * scaling/law_chen.c — the QAT penalty law of Chen et al. ("Scaling Law for
 * Quantization-Aware Training", arXiv 2505.14302), docs/scaling-laws.md:
 *
 *     L_QAT(N, D, G) = L_fp(N, D) + δ(N, D, G),   δ = k·D^γD·(log₂ G)^γG / N^γN
 *
 * The penalty is additive on the loss (the paper's definition: the QAT loss
 * minus its full-precision counterpart). qat measures L_fp directly instead of
 * fitting a law to it: every quantized run is paired with its fp32/fp32 twin(s)
 * at the same N and D (the mean loss when several seeds are given), so the fit
 * of δ does not inherit the misfit of a Chinchilla law over a handful of fp32
 * points. One (k, γD, γN, γG) is fitted per W/A format pair (its @gG left out:
 * one per precision; G is the scale group of the weights (compress.weights.group,
 * or the format's @gG, or — for a per-row scale — the row length d).
 *
 * The fit: Huber (δ = 1e-3, as the other laws) on ln L̂ − ln L with
 * L̂ = L_fp,twin + δ̂, so a run whose measured penalty is ≤ 0 (noise) still
 * counts; δ̂ is exp(c + γD·x_D − γN·x_N + γG·x_G) on log-axes centred over the
 * pair's runs (c is then the log penalty at the design's centre, which keeps
 * the grid of starts independent of the units), L-BFGS from a grid of starts,
 * and a bootstrap over each pair's (N, D) cells — the runs that share a twin —
 * for percentile intervals.
 *
 * Identifiability is decided before the fit from the design, per pair: γD
 * needs two D at one (N, G); γN two N; γG two G at one N (else γG is held —
 * at 0, so k absorbs (log₂ G)^γG, or at --fix gammaG=V — and the note says
 * so); and the free columns (ln D, ln N, ln log₂ G) must not be collinear
 * (two sizes whose per-row G differ cannot tell γN from γG). Anything else is
 * QAT_EINPUT naming the axis and the runs that would cure it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/rng.h"
#if QAT_HAVE_MODEL
#include "model/llama.h"
#endif
#include "runlog/runlog.h"
#include "scaling/fit.h"
#include "scaling/lbfgs.h"
#include "scaling/svg.h"

#define SAME_LOG 1e-3 /* as identify.c: values whose logarithms differ by less count as one */
#define NPAR 4        /* c, γD, γN, γG */

static const char *const par_name[NPAR] = {"k", "gammaD", "gammaN", "gammaG"};

double qat_fit_chen_group(const qat_fit_run *r) {
    const char *g = strstr(r->wfmt, "@g");
    if (g && g[2] >= '1' && g[2] <= '9') return strtod(g + 2, NULL);
    if (!strcmp(r->wfmt, "fp32") || r->from_csv) return 0.0;
    char *yaml = qat_runlog_read_config(r->origin);
    double G = 0.0;
    if (yaml) {
        qat_config *c = qat_xmalloc(sizeof *c);
        if (!qat_config_load_string(yaml, r->origin, c)) {
            if (c->weights.group > 0) G = c->weights.group;
#if QAT_HAVE_MODEL
            else {
                qat_model_shape s;
                if (!qat_model_shape_from_config(c, &s)) G = s.dim; /* the input dim of most block linears */
            }
#endif
        }
        free(c);
    }
    free(yaml);
    qat_clear_error();
    return G;
}

/* One W/A pair's quantized runs, paired with their twins. */
typedef struct {
    char key[2 * QAT_FIT_FMT_LEN + 2]; /* "W/A" */
    int n;                             /* runs */
    int *run;                          /* index into the runs */
    double *lnD, *lnN, *lg;            /* ln D, ln N, ln log₂ G (0 when G unknown) */
    double *Lfp, *L;                   /* twin's (mean) loss, the run's loss */
    double *G;                         /* G (0 = unknown) */
    double mD, mN, mG;                 /* centres of the axes */
    unsigned char fixed[NPAR];         /* held: by --fix or (γG) by rule */
    double fixval[NPAR];               /* natural value of held exponents */
    char note[256];                    /* why γG is held (empty when free) */
    double theta[NPAR];                /* c, γD, γN, γG */
    double rmse;                       /* √mean(ln L̂ − ln L)² */
    int n_boot, n_dropped;             /* resamples used / dropped */
    double lo[NPAR], hi[NPAR];         /* 95% percentile interval (NaN without bootstrap) */
} chen_pair;

/* The data of one evaluation: a pair and run weights (bootstrap counts). */
typedef struct {
    const chen_pair *p;
    const double *w;
} chen_ctx;

static double delta_hat(const chen_pair *p, const double *th, int i) {
    return exp(th[0] + th[1] * (p->lnD[i] - p->mD) - th[2] * (p->lnN[i] - p->mN) + th[3] * (p->lg[i] - p->mG));
}

static double objective(const double *th, double *g, void *vctx) {
    const chen_ctx *ctx = vctx;
    const chen_pair *p = ctx->p;
    double f = 0.0;
    memset(g, 0, NPAR * sizeof *g);
    for (int i = 0; i < p->n; i++) {
        double wi = ctx->w ? ctx->w[i] : 1.0, dr;
        if (wi == 0.0) continue;
        double d = delta_hat(p, th, i), Lh = p->Lfp[i] + d;
        /* a prediction at or below zero loss: a steep wall back (never from the grid's starts) */
        if (!(Lh > 1e-12)) Lh = 1e-12;
        double r = log(Lh) - log(p->L[i]);
        f += wi * qat_fit_huber(r, QAT_FIT_HUBER_DELTA, &dr);
        double s = wi * dr * d / Lh;
        g[0] += s;
        g[1] += s * (p->lnD[i] - p->mD);
        g[2] -= s * (p->lnN[i] - p->mN);
        g[3] += s * (p->lg[i] - p->mG);
    }
    for (int k = 1; k < NPAR; k++)
        if (p->fixed[k]) g[k] = 0.0;
    return f;
}

/* Best of the grid of starts (and `warm`, may be NULL) into th; returns the objective. */
static double fit_pair(const chen_pair *p, const double *w, const double *warm, int full_grid, double *th) {
    static const double gd[] = {-0.5, 0.0, 0.5, 1.0}, gn[] = {-0.5, 0.0, 0.5, 1.0, 2.0}, gg[] = {0.0, 0.5, 1.0, 2.0};
    /* c0: the log of the median positive measured penalty (the centre's penalty to first order) */
    double *pos = qat_xmalloc((size_t)p->n * sizeof *pos);
    int m = 0;
    for (int i = 0; i < p->n; i++)
        if (p->L[i] > p->Lfp[i]) pos[m++] = p->L[i] - p->Lfp[i];
    for (int a = 1; a < m; a++)
        for (int b = a; b > 0 && pos[b - 1] > pos[b]; b--) { double t = pos[b]; pos[b] = pos[b - 1]; pos[b - 1] = t; }
    double c0 = log(m ? pos[m / 2] : 1e-3);
    free(pos);
    chen_ctx ctx = {p, w};
    double best = INFINITY, x[NPAR], g[NPAR];
    for (int k = 0; k < NPAR; k++) th[k] = NAN; /* what a fit with no finite start leaves: the callers test best */
    int n_starts = full_grid ? 3 * 4 * 5 * 4 : 1;
    for (int s = 0; s <= n_starts; s++) {
        if (s == n_starts) {
            if (!warm) break;
            memcpy(x, warm, sizeof x);
        } else if (full_grid) {
            x[0] = c0 + (double)(s % 3 - 1);
            x[1] = gd[(s / 3) % 4];
            x[2] = gn[(s / 12) % 5];
            x[3] = gg[(s / 60) % 4];
        } else {
            x[0] = c0, x[1] = 0.5, x[2] = 0.5, x[3] = 1.0;
        }
        for (int k = 1; k < NPAR; k++)
            if (p->fixed[k]) x[k] = p->fixval[k];
        (void)g;
        double f = qat_lbfgs_minimize(NPAR, x, objective, &ctx, NULL, NULL);
        if (f < best) best = f, memcpy(th, x, sizeof x);
    }
    return best;
}

/* Natural value of parameter k under θ (k itself, or an exponent). */
static double natural(const chen_pair *p, const double *th, int k) {
    if (k) return th[k];
    return exp(th[0] - th[1] * p->mD + th[2] * p->mN - th[3] * p->mG);
}

/* Distinct values of v (log scale) among runs i with sel(i) (w > 0), at most 2 counted. */
static int distinct(const chen_pair *p, const double *v, const double *w, int i0, int same_n, int same_g) {
    double first = NAN;
    for (int i = 0; i < p->n; i++) {
        if (w && w[i] == 0.0) continue;
        if (same_n && fabs(p->lnN[i] - p->lnN[i0]) > SAME_LOG) continue;
        if (same_g && fabs(p->lg[i] - p->lg[i0]) > SAME_LOG) continue;
        if (isnan(first)) first = v[i];
        else if (fabs(v[i] - first) > SAME_LOG) return 2;
    }
    return isnan(first) ? 0 : 1;
}

/* 1 when some run's (N, G) group (or N group) shows two values of v. */
static int varies_within(const chen_pair *p, const double *v, const double *w, int same_g) {
    for (int i = 0; i < p->n; i++)
        if ((!w || w[i] > 0) && distinct(p, v, w, i, 1, same_g) == 2) return 1;
    return 0;
}

/* Distinct (N, D, G) penalty points among runs with w > 0 (all when w is NULL):
 * runs at one point (seeds, or a CSV row given twice) are one equation of the
 * law, however many they are. */
static int points(const chen_pair *p, const double *w) {
    int k = 0;
    for (int i = 0; i < p->n; i++) {
        if (w && w[i] == 0.0) continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = (!w || w[j] > 0) && fabs(p->lnN[j] - p->lnN[i]) <= SAME_LOG &&
                   fabs(p->lnD[j] - p->lnD[i]) <= SAME_LOG && fabs(p->lg[j] - p->lg[i]) <= SAME_LOG;
        k += !seen;
    }
    return k;
}

/* c (k) and the exponents not held. */
static int free_params(const chen_pair *p) {
    int n = 1;
    for (int k = 1; k < NPAR; k++) n += !p->fixed[k];
    return n;
}

/* Weighted Gram–Schmidt of the free columns after the intercept: the index
 * (1 D, 2 N, 3 G) of the first column the earlier ones explain, 0 when none. */
static int collinear(const chen_pair *p, const double *w) {
    const double *col[NPAR] = {NULL, p->lnD, p->lnN, p->lg};
    int n = p->n, nb = 0;
    double *basis = qat_xcalloc((size_t)(NPAR * n), sizeof *basis), sw = 0;
    for (int i = 0; i < n; i++) sw += w ? w[i] : 1.0;
    int bad = 0;
    for (int k = 1; k < NPAR && !bad; k++) {
        if (p->fixed[k]) continue;
        double *u = basis + (size_t)nb * n, mean = 0, norm0 = 0, norm = 0;
        for (int i = 0; i < n; i++) mean += (w ? w[i] : 1.0) * col[k][i];
        mean /= sw;
        for (int i = 0; i < n; i++) u[i] = col[k][i] - mean, norm0 += (w ? w[i] : 1.0) * u[i] * u[i];
        for (int b = 0; b < nb; b++) {
            const double *q = basis + (size_t)b * n;
            double dot = 0;
            for (int i = 0; i < n; i++) dot += (w ? w[i] : 1.0) * u[i] * q[i];
            for (int i = 0; i < n; i++) u[i] -= dot * q[i];
        }
        for (int i = 0; i < n; i++) norm += (w ? w[i] : 1.0) * u[i] * u[i];
        if (!(norm0 > 1e-12) || norm < 1e-6 * norm0) bad = k;
        else {
            for (int i = 0; i < n; i++) u[i] /= sqrt(norm);
            nb++;
        }
    }
    free(basis);
    return bad;
}

/* The identifiability rules of the file comment for one pair; QAT_EINPUT naming the axis. */
static int identify_pair(chen_pair *p, FILE *note) {
    const char *key = p->key;
    if (!p->fixed[1] && !varies_within(p, p->lnD, NULL, 1))
        return qat_fail(QAT_EINPUT, "--law chen: D takes one value at each model size in the %d '%s' runs: gammaD "
                        "is how the penalty moves with D at fixed N, so it is not identifiable; add '%s' runs (and "
                        "their fp32/fp32 twins) at another token budget for some N, or hold it with --fix gammaD=VALUE",
                        p->n, key, key);
    if (!p->fixed[2] && distinct(p, p->lnN, NULL, 0, 0, 0) < 2)
        return qat_fail(QAT_EINPUT, "--law chen: N takes one value (%.4g) in the %d '%s' runs: gammaN is how the "
                        "penalty falls with model size, so it is not identifiable; add '%s' runs (and their fp32/fp32 "
                        "twins) at another model size, or hold it with --fix gammaN=VALUE", exp(p->lnN[0]), p->n, key,
                        key);
    int g_known = 1;
    for (int i = 0; i < p->n; i++) g_known &= p->G[i] >= 2.0;
    if (!p->fixed[3] && !(g_known && varies_within(p, p->lg, NULL, 0))) {
        p->fixed[3] = QAT_FIT_BY_RULE;
        p->fixval[3] = 0.0;
        snprintf(p->note, sizeof p->note, "%s", g_known ? "G takes one value at each model size"
                                                       : "some runs have no known scale group G");
        if (note)
            fprintf(note, "qat: note: --law chen '%s': %s, so gammaG is not identifiable; held at 0 (k then "
                    "includes (log2 G)^gammaG; --fix gammaG=VALUE holds it elsewhere)\n", key, p->note);
    }
    int bad = collinear(p, NULL);
    if (bad)
        return qat_fail(QAT_EINPUT, "--law chen: in the %d '%s' runs, %s varies only together with %s, so %s is "
                        "not identifiable apart from %s; add runs that vary it alone (%s), or hold one with --fix "
                        "%s=VALUE", p->n, key, bad == 1 ? "D" : bad == 2 ? "N" : "G",
                        bad == 3 ? "N (and D)" : bad == 2 ? "D" : "N", par_name[bad], bad == 3 ? "gammaN" : "gammaD",
                        bad == 3 ? "two group sizes at one model size" : "another N at the same D",
                        par_name[bad]);
    /* Points, not runs: two seeds at one (N, D, G) are one equation. With no
     * more points than free parameters the law passes through every point
     * whatever the noise, and a point whose penalty is <= 0 sends k and an
     * exponent wherever the optimiser stops (2 cells once printed k 1.1e-146,
     * gammaN -28.9, and bootstrap "intervals" of zero width). */
    int free_k = free_params(p), pts = points(p, NULL);
    if (pts <= free_k) {
        char names[64] = "k";
        for (int k = 1; k < NPAR; k++)
            if (!p->fixed[k]) snprintf(names + strlen(names), sizeof names - strlen(names), ", %s", par_name[k]);
        return qat_fail(QAT_EINPUT, "--law chen: the %d '%s' runs give %d distinct (N, D, G) penalty point%s for %d "
                        "free parameters (%s): a fit needs at least one point more than its free parameters, else "
                        "the law passes through every point whatever the noise; add '%s' runs (and their fp32/fp32 "
                        "twins) at other N or D, or hold exponents with --fix gammaD|gammaN|gammaG=VALUE",
                        p->n, key, pts, pts == 1 ? "" : "s", free_k, names, key);
    }
    return QAT_OK;
}

static int dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bootstrap_pair(chen_pair *p, int B, uint64_t seed, int pair_index) {
    for (int k = 0; k < NPAR; k++) p->lo[k] = p->hi[k] = NAN;
    if (B <= 0) return;
    double *vals = qat_xmalloc((size_t)B * NPAR * sizeof *vals), *w = qat_xmalloc((size_t)p->n * sizeof *w);
    int *cell = qat_xmalloc((size_t)p->n * sizeof *cell), n_cells = 0;
    for (int i = 0; i < p->n; i++) {
        cell[i] = -1;
        for (int j = 0; j < i && cell[i] < 0; j++)
            if (fabs(p->lnN[j] - p->lnN[i]) <= SAME_LOG && fabs(p->lnD[j] - p->lnD[i]) <= SAME_LOG) cell[i] = cell[j];
        if (cell[i] < 0) cell[i] = n_cells++;
    }
    for (int b = 0; b < B; b++) {
        qat_rng rng = qat_rng_make(seed, (uint64_t)pair_index * 1000003u + (uint64_t)b);
        /* whole (N, D) cells are drawn: the runs of one cell share their fp32
         * twin's noise, so resampling them one by one would narrow the interval */
        memset(w, 0, (size_t)p->n * sizeof *w);
        for (int j = 0; j < n_cells; j++) {
            int c = (int)qat_rng_below(&rng, (uint64_t)n_cells);
            for (int i = 0; i < p->n; i++) w[i] += cell[i] == c;
        }
        /* a resample that cannot tell a free exponent is left out, not fitted */
        int ok = (p->fixed[1] || varies_within(p, p->lnD, w, 1)) && (p->fixed[2] || distinct(p, p->lnN, w, 0, 0, 0) == 2)
                 && (p->fixed[3] || varies_within(p, p->lg, w, 0)) && !collinear(p, w) && points(p, w) > free_params(p);
        if (!ok) { p->n_dropped++; continue; }
        double th[NPAR];
        if (!isfinite(fit_pair(p, w, p->theta, 0, th))) { p->n_dropped++; continue; } /* no finite fit: as unidentifiable */
        for (int k = 0; k < NPAR; k++) vals[(size_t)p->n_boot * NPAR + k] = natural(p, th, k);
        p->n_boot++;
    }
    double *col = qat_xmalloc((size_t)(p->n_boot ? p->n_boot : 1) * sizeof *col);
    /* fewer usable resamples than --bootstrap itself demands give "percentiles"
     * that are single extreme resamples: no interval then (the table says why) */
    for (int k = 0; k < NPAR && p->n_boot >= QAT_FIT_MIN_BOOTSTRAP; k++) {
        for (int b = 0; b < p->n_boot; b++) col[b] = vals[(size_t)b * NPAR + k];
        qsort(col, (size_t)p->n_boot, sizeof *col, dbl_cmp);
        p->lo[k] = col[(int)floor(0.025 * (p->n_boot - 1))];
        p->hi[k] = col[(int)ceil(0.975 * (p->n_boot - 1))];
    }
    free(col);
    free(vals);
    free(w);
    free(cell);
}

static void pair_free(chen_pair *p) {
    free(p->run); free(p->lnD); free(p->lnN); free(p->lg); free(p->Lfp); free(p->L); free(p->G);
}

static int before(const chen_pair *p, int i, int j) {
    if (fabs(p->lnN[i] - p->lnN[j]) > SAME_LOG) return p->lnN[i] < p->lnN[j];
    if (fabs(p->lnD[i] - p->lnD[j]) > SAME_LOG) return p->lnD[i] < p->lnD[j];
    return p->lg[i] < p->lg[j];
}

static void swap_runs(chen_pair *p, int i, int j) {
    double *col[] = {p->lnD, p->lnN, p->lg, p->Lfp, p->L, p->G};
    for (size_t c = 0; c < sizeof col / sizeof col[0]; c++) { double t = col[c][i]; col[c][i] = col[c][j]; col[c][j] = t; }
    int t = p->run[i]; p->run[i] = p->run[j]; p->run[j] = t;
}

/* fmt without its "@gG" modifier into out: the group is the law's G axis, so
 * int4@g32 and int4@g128 are one format family of one fitted pair. */
static const char *strip_group(char out[QAT_FIT_FMT_LEN], const char *fmt) {
    snprintf(out, QAT_FIT_FMT_LEN, "%s", fmt);
    char *g = strstr(out, "@g");
    if (g && g[2] >= '1' && g[2] <= '9') {
        char *e = g + 2;
        while (*e >= '0' && *e <= '9') e++;
        memmove(g, e, strlen(e) + 1);
    }
    return out;
}

/* The pairs of the runs: every non-fp32 W/A pair (@gG stripped), each run with its twin. */
static int build_pairs(const qat_fit_runs *rs, chen_pair **out, int *n_out) {
    int n = rs->n, np = 0, n_fp = 0;
    chen_pair *pp = qat_xcalloc((size_t)(n ? n : 1), sizeof *pp);
    for (int i = 0; i < n; i++) n_fp += !strcmp(rs->run[i].wfmt, "fp32") && !strcmp(rs->run[i].afmt, "fp32");
    for (int i = 0; i < n; i++) {
        const qat_fit_run *r = &rs->run[i];
        if (!strcmp(r->wfmt, "fp32") && !strcmp(r->afmt, "fp32")) continue;
        double sum = 0;
        int twins = 0;
        for (int j = 0; j < n; j++) {
            const qat_fit_run *t = &rs->run[j];
            if (strcmp(t->wfmt, "fp32") || strcmp(t->afmt, "fp32")) continue;
            if (fabs(log(t->N / r->N)) <= SAME_LOG && fabs(log(t->D / r->D)) <= SAME_LOG) sum += t->loss, twins++;
        }
        if (!twins) {
            for (int k = 0; k < np; k++) pair_free(&pp[k]);
            free(pp);
            return qat_fail(QAT_EINPUT, "--law chen: %s (%s/%s, N %.6g, D %.6g) has no fp32/fp32 twin at the same N "
                            "and D among the %d fp32/fp32 runs given: the penalty is its loss minus the twin's; add "
                            "that fp32 run or --exclude this one", r->origin, r->wfmt, r->afmt, r->N, r->D, n_fp);
        }
        char key[sizeof pp->key], w[QAT_FIT_FMT_LEN], a[QAT_FIT_FMT_LEN];
        snprintf(key, sizeof key, "%s/%s", strip_group(w, r->wfmt), strip_group(a, r->afmt));
        int k = 0;
        while (k < np && strcmp(pp[k].key, key)) k++;
        if (k == np) {
            /* sorted insert: the output order does not depend on the file order */
            k = np++;
            while (k > 0 && strcmp(pp[k - 1].key, key) > 0) pp[k] = pp[k - 1], k--;
            memset(&pp[k], 0, sizeof pp[k]);
            snprintf(pp[k].key, sizeof pp[k].key, "%s", key);
            pp[k].run = qat_xmalloc((size_t)n * sizeof(int));
            pp[k].lnD = qat_xmalloc((size_t)n * sizeof(double));
            pp[k].lnN = qat_xmalloc((size_t)n * sizeof(double));
            pp[k].lg = qat_xmalloc((size_t)n * sizeof(double));
            pp[k].Lfp = qat_xmalloc((size_t)n * sizeof(double));
            pp[k].L = qat_xmalloc((size_t)n * sizeof(double));
            pp[k].G = qat_xmalloc((size_t)n * sizeof(double));
        }
        chen_pair *p = &pp[k];
        int m = p->n++;
        p->run[m] = i;
        p->lnD[m] = log(r->D);
        p->lnN[m] = log(r->N);
        p->G[m] = qat_fit_chen_group(r);
        p->lg[m] = p->G[m] >= 2.0 ? log(log2(p->G[m])) : 0.0;
        p->Lfp[m] = sum / twins;
        p->L[m] = r->loss;
    }
    if (!np) {
        free(pp);
        return qat_fail(QAT_EINPUT, "--law chen: the %d runs are all fp32/fp32; the law fits the penalty of quantized "
                        "runs over their fp32 twins, so give quantized runs too", n);
    }
    for (int k = 0; k < np; k++) {
        chen_pair *p = &pp[k];
        for (int i = 0; i < p->n; i++) p->mD += p->lnD[i] / p->n, p->mN += p->lnN[i] / p->n, p->mG += p->lg[i] / p->n;
        /* runs by N, then D, then G: the table and the CSV read as a grid whatever the file order */
        for (int a = 1; a < p->n; a++)
            for (int b = a; b > 0 && before(p, b, b - 1); b--) swap_runs(p, b, b - 1);
    }
    *out = pp;
    *n_out = np;
    return QAT_OK;
}

static int apply_fix(chen_pair *pp, int np, const qat_fit_chen_opts *o) {
    for (int f = 0; f < o->n_fix; f++) {
        int k = 1;
        while (k < NPAR && strcmp(o->fix_name[f], par_name[k])) k++;
        if (k == NPAR)
            return qat_fail(QAT_EINPUT, "--fix %s=%g: --law chen holds gammaD, gammaN or gammaG (k is the scale of "
                            "the penalty and is always fitted)", o->fix_name[f], o->fix_value[f]);
        /* the same checks as every other law's --fix (scaling/law.c, fit_cli.c):
         * a NaN or inf was printed as the exponent, a second value silently won */
        if (!isfinite(o->fix_value[f]))
            return qat_fail(QAT_EINPUT, "--fix %s: value is not a finite number", o->fix_name[f]);
        for (int g = 0; g < f; g++)
            if (!strcmp(o->fix_name[g], o->fix_name[f]))
                return qat_fail(QAT_EINPUT, "--fix %s=%g: %s is already held by --fix %s=%g; give each parameter once",
                                o->fix_name[f], o->fix_value[f], o->fix_name[f], o->fix_name[g], o->fix_value[g]);
        /* an unknown G enters as log2 G = 1, where gammaG does nothing: holding
         * it would print a value the fit never used */
        for (int j = 0; k == 3 && j < np; j++) {
            int known = 0;
            for (int i = 0; i < pp[j].n; i++) known |= pp[j].G[i] >= 2.0;
            if (!known)
                return qat_fail(QAT_EINPUT, "--fix gammaG=%g: G (the weights' scale group size) is unknown for these runs "
                                "(pair %s); gammaG cannot be held, drop the --fix", o->fix_value[f], pp[j].key);
        }
        for (int j = 0; j < np; j++) pp[j].fixed[k] = QAT_FIT_BY_USER, pp[j].fixval[k] = o->fix_value[f];
    }
    return QAT_OK;
}

/* G as printed: "-" when the run's scale group is unknown. */
static const char *g_text(double G, char buf[32]) {
    if (G >= 2.0) snprintf(buf, 32, "%.17g", G);
    else snprintf(buf, 32, "-");
    return buf;
}

static void print_interval(FILE *out, const chen_pair *p, int k) {
    if (p->fixed[k]) fprintf(out, "  %-22s", p->fixed[k] == QAT_FIT_BY_USER ? "(held: --fix)" : "(held: rule)");
    else if (isnan(p->lo[k])) fprintf(out, "  %-22s", "");
    else fprintf(out, "  [%9.4g, %9.4g]  ", p->lo[k], p->hi[k]);
}

static int write_csv(const char *path, const qat_fit_runs *rs, const chen_pair *pp, int np,
                     const char *const *inputs, int n_inputs) {
    qat_out o;
    QAT_TRY(qat_out_begin(&o, path, 0, inputs, n_inputs));
    FILE *f = qat_out_stream(&o);
    fprintf(f, "pair,N,D,G,loss_fp32,loss,delta,delta_pred,resid\n");
    for (int k = 0; k < np; k++) {
        const chen_pair *p = &pp[k];
        for (int i = 0; i < p->n; i++) {
            const qat_fit_run *r = &rs->run[p->run[i]];
            double d = delta_hat(p, p->theta, i);
            char gb[32];
            fprintf(f, "%s,%.17g,%.17g,%s,%.17g,%.17g,%.17g,%.17g,%.17g\n", p->key, r->N, r->D, g_text(p->G[i], gb), p->Lfp[i],
                    p->L[i], p->L[i] - p->Lfp[i], d, log(p->Lfp[i] + d) - log(p->L[i]));
        }
    }
    return qat_out_commit(&o);
}

/* δ against D: the measured penalties (markers) and the law (lines), one
 * colour per pair, one marker shape per (N, G) of the pair. */
static int write_svg(const char *path, const chen_pair *pp, int np, const char *title) {
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int k = 0; k < np; k++)
        for (int i = 0; i < pp[k].n; i++) {
            double d = pp[k].L[i] - pp[k].Lfp[i];
            xmin = fmin(xmin, exp(pp[k].lnD[i])), xmax = fmax(xmax, exp(pp[k].lnD[i]));
            ymin = fmin(ymin, fmin(d, delta_hat(&pp[k], pp[k].theta, i)));
            ymax = fmax(ymax, fmax(d, delta_hat(&pp[k], pp[k].theta, i)));
        }
    ymin = fmin(ymin, 0.0);
    qat_svg_pad_range(&xmin, &xmax, 1);
    qat_svg_pad_range(&ymin, &ymax, 0);
    qat_svg s;
    QAT_TRY(qat_svg_begin(&s, path, NULL, 760, 520, title,
                          "markers: measured L - L(fp32 twin); lines: k*D^gammaD*(log2 G)^gammaG/N^gammaN"));
    qat_svg_axes(&s, xmin, xmax, 1, ymin, ymax, 0, "training tokens D", "penalty over fp32 (nats/token)", NULL, 0,
                 NULL, 0);
    int series = 0;
    for (int k = 0; k < np; k++) {
        const chen_pair *p = &pp[k];
        unsigned char *done = qat_xcalloc((size_t)p->n, 1);
        for (int i0 = 0; i0 < p->n; i0++) {
            if (done[i0]) continue;
            const char *color = qat_svg_color(series);
            qat_svg_shape shape = (qat_svg_shape)(series % 4);
            char name[160];
            if (p->G[i0] > 0) snprintf(name, sizeof name, "%s N=%.4g G=%g", p->key, exp(p->lnN[i0]), p->G[i0]);
            else snprintf(name, sizeof name, "%s N=%.4g (G unknown)", p->key, exp(p->lnN[i0]));
            qat_svg_series_begin(&s, name);
            double dlo = INFINITY, dhi = -INFINITY;
            for (int i = 0; i < p->n; i++) {
                if (fabs(p->lnN[i] - p->lnN[i0]) > SAME_LOG || fabs(p->lg[i] - p->lg[i0]) > SAME_LOG) continue;
                done[i] = 1;
                qat_svg_marker(&s, exp(p->lnD[i]), p->L[i] - p->Lfp[i], shape, color, 1, 5);
                dlo = fmin(dlo, p->lnD[i]), dhi = fmax(dhi, p->lnD[i]);
            }
            double x[41], y[41];
            for (int j = 0; j <= 40; j++) {
                double th[NPAR];
                memcpy(th, p->theta, sizeof th);
                double lnD = dlo + (dhi - dlo) * j / 40.0;
                x[j] = exp(lnD);
                y[j] = exp(th[0] + th[1] * (lnD - p->mD) - th[2] * (p->lnN[i0] - p->mN) + th[3] * (p->lg[i0] - p->mG));
            }
            qat_svg_polyline(&s, 41, x, y, color, 1.5, 0);
            qat_svg_series_end(&s);
            qat_svg_legend_entry e = {.color = color, .line = 1, .marker = 1, .shape = shape, .filled = 1};
            snprintf(e.label, sizeof e.label, "%.95s", name);
            qat_svg_legend_add(&s, &e);
            series++;
        }
        free(done);
    }
    return qat_svg_end(&s);
}

int qat_fit_chen(const qat_fit_runs *rs, const qat_fit_chen_opts *o, qat_fit_chen_result *res, FILE *out, FILE *note) {
    chen_pair *pp = NULL;
    int np = 0;
    QAT_TRY(build_pairs(rs, &pp, &np));
    int rc = apply_fix(pp, np, o);
    for (int k = 0; k < np && !rc; k++) rc = identify_pair(&pp[k], note);
    for (int k = 0; k < np && !rc; k++) {
        chen_pair *p = &pp[k];
        /* a finite but huge held exponent (--fix gammaD=1e308) overflows the
         * penalty at every start: no start is kept, and the table printed a
         * zero exponent the user never gave */
        if (!isfinite(fit_pair(p, NULL, NULL, 1, p->theta))) {
            char held[160] = "";
            for (int j = 1; j < NPAR; j++)
                if (p->fixed[j] == QAT_FIT_BY_USER)
                    snprintf(held + strlen(held), sizeof held - strlen(held), " --fix %s=%g", par_name[j],
                             p->fixval[j]);
            rc = qat_fail(QAT_EINPUT, "pair %s: the penalty k * D^gammaD * (log2 G)^gammaG / N^gammaN is not a finite "
                          "number at these runs with%s; hold a value of a plausible size", p->key,
                          held[0] ? held : " every start");
            break;
        }
        double ss = 0;
        for (int i = 0; i < p->n; i++) {
            double r = log(p->Lfp[i] + delta_hat(p, p->theta, i)) - log(p->L[i]);
            ss += r * r;
        }
        p->rmse = sqrt(ss / p->n);
        bootstrap_pair(p, o->bootstrap, o->seed, k);
    }
    if (!rc && res) {
        res->n_pairs = np;
        res->pair = qat_xcalloc((size_t)np, sizeof *res->pair);
        for (int k = 0; k < np; k++) {
            qat_fit_chen_pair *q = &res->pair[k];
            snprintf(q->key, sizeof q->key, "%s", pp[k].key);
            q->n = pp[k].n;
            q->n_boot = pp[k].n_boot;
            q->rmse_log = pp[k].rmse;
            for (int j = 0; j < NPAR; j++) {
                q->value[j] = natural(&pp[k], pp[k].theta, j);
                q->lo[j] = pp[k].lo[j], q->hi[j] = pp[k].hi[j];
                q->held[j] = pp[k].fixed[j];
            }
        }
    }
    if (!rc && o->csv) rc = write_csv(o->csv, rs, pp, np, o->inputs, o->n_inputs);
    if (!rc && o->svg) rc = write_svg(o->svg, pp, np, "Loss over the fp32 twin against D (Chen et al. law)");
    if (!rc && out) {
        fprintf(out, "law chen: L = L_fp32(N, D) + k * D^gammaD * (log2 G)^gammaG / N^gammaN (fp32 twin measured)\n");
        for (int k = 0; k < np; k++) {
            const chen_pair *p = &pp[k];
            fprintf(out, "\npair %s: %d runs, rmse(ln L) %.4g", p->key, p->n, p->rmse);
            if (o->bootstrap > 0)
                fprintf(out, ", %d of %d bootstrap resamples used (%d dropped: could not tell a free exponent)",
                        p->n_boot, o->bootstrap, p->n_dropped);
            if (o->bootstrap > 0 && p->n_boot < QAT_FIT_MIN_BOOTSTRAP)
                fprintf(out, "\n  no intervals: %d usable resample%s, fewer than the %d a 95%% percentile interval "
                        "needs (fewer give percentiles that are single extreme resamples); the (N, D) cells are too "
                        "few for a bootstrap: add runs at more N and D", p->n_boot, p->n_boot == 1 ? "" : "s",
                        QAT_FIT_MIN_BOOTSTRAP);
            fprintf(out, "\n  %-8s %12s  %-22s\n", "param", "value", "95% interval");
            for (int j = 0; j < NPAR; j++) {
                fprintf(out, "  %-8s %12.5g", par_name[j], natural(p, p->theta, j));
                print_interval(out, p, j);
                fputc('\n', out);
            }
            if (p->note[0]) fprintf(out, "  gammaG held at 0: %s\n", p->note);
            fprintf(out, "  %10s %12s %6s %9s %9s %9s %9s\n", "N", "D", "G", "L_fp32", "L", "delta", "pred");
            for (int i = 0; i < p->n; i++) {
                char gb[32];
                if (p->G[i] >= 2.0) snprintf(gb, sizeof gb, "%g", p->G[i]);
                else snprintf(gb, sizeof gb, "-"); /* the scale group is unknown */
                fprintf(out, "  %10.4g %12.4g %6s %9.4f %9.4f %9.4f %9.4f\n", exp(p->lnN[i]), exp(p->lnD[i]), gb,
                        p->Lfp[i], p->L[i], p->L[i] - p->Lfp[i], delta_hat(p, p->theta, i));
            }
        }
    }
    for (int k = 0; k < np; k++) pair_free(&pp[k]);
    free(pp);
    return rc;
}

void qat_fit_chen_result_free(qat_fit_chen_result *r) {
    free(r->pair);
    memset(r, 0, sizeof *r);
}
