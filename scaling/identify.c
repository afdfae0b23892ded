/*
 * scaling/identify.c — refuse (or pin down) the parameters a set of runs cannot tell.
 *
 * A least-squares optimiser always returns *a* minimum; when the data do not
 * determine a parameter it lands anywhere along a flat valley and prints it
 * with full confidence (six runs at one D gave B = 3.3e6, beta = 1.5). So
 * before fitting, the design is checked by counting, which is exact and lets
 * the message name the axis at fault (docs/scaling-laws.md, "What the data must
 * vary"):
 *
 *  1. Axes. Along an axis with k distinct values (values within 0.1 % count
 *     as one), differences between its values give k − 1 equations for its
 *     coefficient and exponent ((A, alpha) for N, (B, beta) for D); one more
 *     equation, the overall level, is shared by E and whatever the axes leave
 *     over. The fit is refused unless
 *         excess(N) + excess(D) + [E free] ≤ 1,
 *         excess(axis) = max(0, free params of the axis − (k − 1)).
 *     So one D value needs two of B, beta, E fixed; two D values need one.
 *  2. Decoupled effs are measured against fp32/fp32: with no such run (and no
 *     eff or A fixed) every eff trades off against A, and the fit is refused.
 *     A pair seen at one model size only is *not* refused: its eff is the
 *     horizontal shift of the fp32 curve that meets its loss, which the law
 *     determines (it just cannot be checked against a second size).
 *  3. Unified (L, F, C) of a type: each distinct GMSE among the type's terms
 *     (an exact term, GMSE 0, is one more value) gives one capacity value, so
 *     a type with k < 3 distinct GMSE values can fit only k of its three
 *     constants. The rest are held at the published Llama/C4 values, in the
 *     order L (ρ → 1 as GMSE → 0 is what an exact format means), then C, so
 *     F — where the curve bends — is fitted last. Then, if some combination
 *     of the types' L would shift every run's ln ρ alike (no run free of the
 *     type, e.g. no fp32 baseline) that L trades off against A; if a type's
 *     term counts are a multiple of another's, the two L trade off against
 *     each other; such L are held too. Held constants are announced on `note`,
 *     and the report prints and stores each one with its reason.
 *  4. Finally, more free parameters than distinct (N, D, format pair) points
 *     (quartet: format key W/A/G) is refused: no design of values can rescue that.
 *  Quartet effs (law_quartet.c): effN needs N to vary within its forward
 *     scheme, effD needs D to vary within its backward scheme, and each family
 *     needs its fp32 baseline (or one eff, or A / B, held); else refused naming
 *     the axis.
 *  5. After the fit (qat_fit_run_checked), a parameter the runs bound on one
 *     side only — the fit as good with it 1000 times further toward a bound —
 *     is held at the published value (capacity constants, when that fits as
 *     well) or at its fitted value, with whatever slid along with it on that
 *     flat profile (α and γ of the quartet law); see the block above
 *     qat_fit_run_checked.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "core/error.h"
#include "core/num.h"
#include "scaling/fit.h"

/* Published Llama/C4 capacity constants (docs/reference-numbers.md), kept here
 * as numbers because scaling/ may be built without compress/. */
static const double published[3] = {1.0, 0.41, 1.39}; /* L, F, C */

#define SAME_LOG 1e-3 /* values whose logarithms differ by less count as one */

/* Distinct values of v[0..n) (sorted copy into tmp, clustered by SAME_LOG;
 * +∞ is a value of its own); the first of each cluster is kept in tmp[0..k). */
static int distinct(const double *v, int n, double *tmp) {
    memcpy(tmp, v, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, qat_dbl_cmp);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (k == 0 || (isinf(tmp[i]) ? !isinf(tmp[k - 1]) : tmp[i] - tmp[k - 1] > SAME_LOG)) tmp[k++] = tmp[i];
    return k;
}

static const char *count_word(int k) { return k == 1 ? "one value" : "two values"; }

/* "(1e+10)" or "(1e+09, 1e+10)": the values of a log axis. */
static void list_values(char *out, size_t cap, const double *logv, int k) {
    size_t len = (size_t)snprintf(out, cap, "(");
    for (int j = 0; j < k && len < cap; j++)
        len += (size_t)snprintf(out + len, cap - len, "%s%.4g", j ? ", " : "", exp(logv[j]));
    if (len < cap) snprintf(out + len, cap - len, ")");
}

/* Rule 1: the N and D axes. */
static int check_axes(const qat_fit_problem *p) {
    double *tmp = qat_xmalloc((size_t)p->n * sizeof *tmp);
    const char *axis[2] = {"N", "D"};
    const double *logv[2] = {p->logN, p->logD};
    const int par[2][2] = {{QAT_FIT_A, QAT_FIT_ALPHA}, {QAT_FIT_B, QAT_FIT_BETA}};
    int excess[2], k[2], nfree[2];
    char vals[2][96];
    for (int a = 0; a < 2; a++) {
        k[a] = distinct(logv[a], p->n, tmp);
        list_values(vals[a], sizeof vals[a], tmp, k[a] < 2 ? k[a] : 2);
        nfree[a] = !p->fixed[par[a][0]] + !p->fixed[par[a][1]];
        excess[a] = nfree[a] - (k[a] - 1) > 0 ? nfree[a] - (k[a] - 1) : 0;
    }
    free(tmp);
    int freeE = !p->fixed[QAT_FIT_E];
    int need = excess[0] + excess[1] + freeE - 1; /* more parameters to fix */
    if (need <= 0) return QAT_OK;

    /* Name the axes at fault and the free parameters they govern. */
    char what[256] = "", names[128] = "", fixes[160] = "";
    int n_names = 0;
    const char *list[5];
    for (int a = 0; a < 2; a++) {
        if (!excess[a]) continue;
        size_t l = strlen(what);
        snprintf(what + l, sizeof what - l, "%s%s takes %s %s", l ? " and " : "", axis[a], count_word(k[a]), vals[a]);
        for (int j = 0; j < 2; j++)
            if (!p->fixed[par[a][j]]) list[n_names++] = p->name[par[a][j]];
    }
    int all = need >= n_names; /* fixing every named one is what it takes */
    if (!all && freeE) list[n_names++] = p->name[QAT_FIT_E];
    for (int j = 0; j < n_names; j++) {
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s%s", j == 0 ? "" : j == n_names - 1 ? " and " : ", ", list[j]);
        l = strlen(fixes);
        snprintf(fixes + l, sizeof fixes - l, "%s--fix %s=...", j == 0 ? "" : all ? " " : " or ", list[j]);
    }
    if (all)
        return qat_fail(QAT_EINPUT, "%s in the %d runs: %s %s not identifiable; fix %s with %s", what, p->n,
                        names, n_names > 1 ? "are" : "is", n_names > 1 ? "them" : "it", fixes);
    return qat_fail(QAT_EINPUT, "%s in the %d runs: %s are not all identifiable; fix %d of them (%s), "
                    "or add runs at more values", what, p->n, names, need, fixes);
}

/* Rule 2: decoupled effs need an anchor. */
static int check_eff_anchor(const qat_fit_problem *p) {
    if (p->fixed[QAT_FIT_A]) return QAT_OK;
    int example = -1;
    for (int k = 0; k < p->n_pairs; k++) {
        if (p->eff_of_pair[k] < 0 || p->fixed[p->eff_of_pair[k]]) return QAT_OK;
        if (example < 0) example = k;
    }
    return qat_fail(QAT_EINPUT, "no run is fp32/fp32 and no eff is fixed, in the %d runs: the effs are capacities "
                    "relative to fp32, so without it they all trade off against A and are not identifiable; add "
                    "fp32 runs, or fix one eff (e.g. --fix %s=...) or A", p->n, p->pair[example]);
}

/* Hold parameter k at the published constant j (0 L, 1 F, 2 C) with a reason. */
static void hold(qat_fit_problem *p, int k, int j, const char *why, FILE *note) {
    p->fixed[k] = QAT_FIT_BY_RULE;
    p->fixval[k] = log(published[j]);
    snprintf(p->why[k], sizeof p->why[k], "%s", why);
    if (note) fprintf(note, "qat: note: %s held at %g (published Llama/C4): %s\n", p->name[k], published[j], why);
}

/* Rank of the columns cols[c] (each of length n), by Gram-Schmidt on copies;
 * `use` selects columns, `ones` appends the all-ones column. */
static int rank_of(const double *cols, int n, int ncol, const int *use, int ones) {
    double *q = qat_xmalloc((size_t)(ncol + 1) * n * sizeof *q);
    int r = 0;
    for (int c = 0; c <= ncol; c++) {
        if (c < ncol ? !use[c] : !ones) continue;
        double *v = q + (size_t)r * n, norm0 = 0.0, norm = 0.0;
        for (int i = 0; i < n; i++) { v[i] = c < ncol ? cols[(size_t)c * n + i] : 1.0; norm0 += v[i] * v[i]; }
        for (int b = 0; b < r; b++) {
            const double *u = q + (size_t)b * n;
            double d = 0.0;
            for (int i = 0; i < n; i++) d += u[i] * v[i];
            for (int i = 0; i < n; i++) v[i] -= d * u[i];
        }
        for (int i = 0; i < n; i++) norm += v[i] * v[i];
        if (norm0 > 0 && norm > 1e-18 * norm0) {
            for (int i = 0; i < n; i++) v[i] /= sqrt(norm);
            r++;
        }
    }
    free(q);
    return r;
}

/* Rule 3: unified (L, F, C) per type. */
static void hold_capacity(qat_fit_problem *p, FILE *note) {
    int n = p->n;
    double *x = qat_xmalloc((size_t)n * QAT_FIT_MAX_TERMS * sizeof *x);
    double *tmp = qat_xmalloc((size_t)n * QAT_FIT_MAX_TERMS * sizeof *tmp);
    for (int t = 0; t < QAT_CAP_NTYPES; t++) {
        int o = p->type_off[t], m = 0;
        if (o < 0) continue;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < p->nt[i]; j++)
                if (p->tt[i * QAT_FIT_MAX_TERMS + j] == t) {
                    double v = p->tx[i * QAT_FIT_MAX_TERMS + j]; /* log_{1/4} gmse */
                    x[m++] = isinf(v) ? INFINITY : v * log(0.25); /* ln gmse, so SAME_LOG applies */
                }
        int k = distinct(x, m, tmp);
        int nfree = !p->fixed[o] + !p->fixed[o + 1] + !p->fixed[o + 2];
        if (nfree <= k) continue;
        char gm[96] = "", held[32] = "";
        for (int j = 0; j < k; j++) {
            size_t l = strlen(gm);
            snprintf(gm + l, sizeof gm - l, "%s%.4g", j ? ", " : "", isinf(tmp[j]) ? 0.0 : exp(tmp[j]));
        }
        static const int order[3] = {0, 2, 1}; /* L, then C, then F */
        int todo = nfree - k;
        for (int s = 0; s < 3 && todo > 0; s++)
            if (!p->fixed[o + order[s]]) {
                size_t l = strlen(held);
                snprintf(held + l, sizeof held - l, "%s%c", l ? " and " : "", "LFC"[order[s]]);
                p->fixed[o + order[s]] = QAT_FIT_BY_RULE; /* marked now, explained below */
                todo--;
            }
        char why[QAT_FIT_WHY_LEN];
        snprintf(why, sizeof why, "the %s formats show %d distinct GMSE value%s (%s), fewer than the %d free "
                 "constants of (L, F, C), so %s cannot be fitted", qat_fit_type_name(t), k, k == 1 ? "" : "s", gm,
                 nfree, held);
        for (int j = 0; j < 3; j++)
            if (p->fixed[o + j] == QAT_FIT_BY_RULE && !p->why[o + j][0]) hold(p, o + j, j, why, note);
    }
    free(x); free(tmp);

    /* The L's: column t holds, per run, how many terms of type t it has. */
    double *cols = qat_xcalloc((size_t)QAT_CAP_NTYPES * n, sizeof *cols);
    int use[QAT_CAP_NTYPES] = {0};
    for (int i = 0; i < n; i++)
        for (int j = 0; j < p->nt[i]; j++) cols[(size_t)p->tt[i * QAT_FIT_MAX_TERMS + j] * n + i] += 1.0;
    int r = 0;
    for (int t = 0; t < QAT_CAP_NTYPES; t++) {
        if (p->type_off[t] < 0 || p->fixed[p->type_off[t]]) continue;
        use[t] = 1;
        int r2 = rank_of(cols, n, QAT_CAP_NTYPES, use, 0);
        if (r2 > r) { r = r2; continue; }
        use[t] = 0;
        char why[QAT_FIT_WHY_LEN];
        snprintf(why, sizeof why, "every run holds %s terms in a fixed proportion to terms of the other fitted "
                 "types, so their L trade off against each other", qat_fit_type_name(t));
        hold(p, p->type_off[t], 0, why, note);
    }
    if (p->fixed[QAT_FIT_A] || r == 0 || rank_of(cols, n, QAT_CAP_NTYPES, use, 1) > r) {
        free(cols);
        return;
    }
    /* The all-ones column is in their span: a common shift of ln ρ is A's. Hold
     * the L whose removal breaks that, last type first. */
    for (int t = QAT_CAP_NTYPES - 1; t >= 0; t--) {
        if (!use[t]) continue;
        use[t] = 0;
        if (rank_of(cols, n, QAT_CAP_NTYPES, use, 1) > r - 1) {
            char why[QAT_FIT_WHY_LEN];
            snprintf(why, sizeof why, "no run is free of %s terms (no fp32/fp32 baseline), so L trades off "
                     "against A", qat_fit_type_name(t));
            hold(p, p->type_off[t], 0, why, note);
            break;
        }
        use[t] = 1;
    }
    free(cols);
}

/* Rule 4: free parameters against distinct points. */
static int check_points(const qat_fit_problem *p) {
    int pts = 0, nfree = 0;
    for (int k = 0; k < p->np; k++) nfree += !p->fixed[k];
    for (int i = 0; i < p->n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = p->pair_of[j] == p->pair_of[i] && (!p->bwd_of || p->bwd_of[j] == p->bwd_of[i]) &&
                   fabs(p->logN[j] - p->logN[i]) <= SAME_LOG &&
                   fabs(p->logD[j] - p->logD[i]) <= SAME_LOG;
        pts += !seen;
    }
    if (nfree <= pts) return QAT_OK;
    return qat_fail(QAT_EINPUT, "the %s law has %d free parameters but the %d runs give only %d distinct "
                    "(N, D, %s) points: the fit is not identifiable; add runs or hold parameters "
                    "with --fix NAME=VALUE", qat_fit_law_name(p->law), nfree, p->n, pts,
                    p->bwd_of ? "format key W/A/G" : "format pair");
}

/* Rule 0: a value held by --fix that no fit can build on. Held E at or above
 * a run's loss: every term of the law is positive, so L̂ > E at every run and
 * those runs cannot be reached (E = 5 over losses 2.3–3 once returned every
 * prediction 5 and every other constant "held, the data cannot tell it"). A
 * held A (B) below 0.1 % (the Huber δ) of every loss of the runs whose ρ is 1
 * (every run for B): with a decay exponent > 0, A·(N·ρ)^-α ≤ A there, so no
 * term falls with N and the fit blamed the losses ("the losses do not fall
 * with N in these runs"). Not for quartet's A and B, whose power γ can raise
 * them to any level. */
static int check_held_values(const qat_fit_problem *p) {
    double lo = INFINITY, hi = -INFINITY;
    int below = 0;
    if (p->fixed[QAT_FIT_E] == QAT_FIT_BY_USER) {
        double E = exp(p->fixval[QAT_FIT_E]);
        for (int i = 0; i < p->n; i++) {
            double L = exp(p->logL[i]);
            lo = fmin(lo, L), hi = fmax(hi, L);
            below += L <= E;
        }
        if (below == p->n)
            return qat_fail(QAT_EINPUT, "--fix E=%g is at or above every run's loss (the highest is %.4g): the law "
                            "predicts more than E for every run, so it can reach none of them; hold E below the "
                            "lowest loss (%.4g), or let it be fitted", E, hi, lo);
        if (below)
            return qat_fail(QAT_EINPUT, "--fix E=%g is at or above the loss of %d of the %d runs (the lowest is "
                            "%.4g): the law predicts more than E for every run, so it cannot reach those; hold E "
                            "below %.4g, or let it be fitted", E, below, p->n, lo, lo);
    }
    if (p->law == QAT_LAW_QUARTET) return QAT_OK;
    /* A held exponent so small that its term changes by less than 0.1 % of
     * the losses across the runs' N (D): the term is at most the highest
     * loss, so it moves by at most that times expo·ln(max/min) (alpha = 1e-9
     * once left B at inf and E at 0, all "held, the data cannot tell it"). */
    for (int expo = QAT_FIT_ALPHA; expo <= QAT_FIT_BETA; expo += QAT_FIT_BETA - QAT_FIT_ALPHA) {
        /* N·ρ, not N, under the laws with capacities: only chinchilla knows its range */
        if (p->fixed[expo] != QAT_FIT_BY_USER || (expo == QAT_FIT_ALPHA && p->law != QAT_LAW_CHINCHILLA)) continue;
        const double *x = expo == QAT_FIT_ALPHA ? p->logN : p->logD;
        double xlo = INFINITY, xhi = -INFINITY, llo = INFINITY, lhi = -INFINITY, v = p->fixval[expo];
        for (int i = 0; i < p->n; i++) {
            xlo = fmin(xlo, x[i]), xhi = fmax(xhi, x[i]);
            llo = fmin(llo, p->logL[i]), lhi = fmax(lhi, p->logL[i]);
        }
        double change = expm1(v * (xhi - xlo)) * exp(lhi - llo); /* of the lowest loss, at most */
        if (xhi - xlo > 1e-3 && change < QAT_FIT_HUBER_DELTA) {
            const char *ax = expo == QAT_FIT_ALPHA ? "N" : "D";
            return qat_fail(QAT_EINPUT, "--fix %s=%g: over the runs' %s (%.4g to %.4g) the %s term changes by at "
                            "most %.2g of the lowest loss whatever %s is (the term is below the highest loss, "
                            "%.4g), under the 0.1%% the fit resolves, so nothing in the law falls with %s; hold %s "
                            "at a decay the losses show, or let it be fitted", p->name[expo], v, ax, exp(xlo),
                            exp(xhi), ax, change, expo == QAT_FIT_ALPHA ? "A" : "B", exp(lhi), ax, p->name[expo]);
        }
    }
    for (int scale = QAT_FIT_A; scale <= QAT_FIT_B; scale += QAT_FIT_B - QAT_FIT_A) {
        if (p->fixed[scale] != QAT_FIT_BY_USER || p->fixed[scale + 1]) continue; /* exponent held: any level */
        double v = exp(p->fixval[scale]), low = INFINITY;
        for (int i = 0; i < p->n; i++) {
            int rho1 = scale == QAT_FIT_B || p->law == QAT_LAW_CHINCHILLA ||
                       (p->law == QAT_LAW_DECOUPLED ? p->eff_of_pair[p->pair_of[i]] < 0 : p->nt[i] == 0);
            if (rho1) low = fmin(low, exp(p->logL[i]));
        }
        if (isfinite(low) && v < QAT_FIT_HUBER_DELTA * low) {
            int a = scale == QAT_FIT_A;
            return qat_fail(QAT_EINPUT, "--fix %s=%g: the %s term %s is at most %s for any %s > 0, and %g is below "
                            "0.1%% of the loss of every run%s (the lowest is %.4g), so nothing in the law falls with "
                            "%s; hold %s on the scale of the losses' fall with %s, or let it be fitted", p->name[scale],
                            v, a ? "N" : "D", !a ? "B*D^-beta" : p->law == QAT_LAW_CHINCHILLA ? "A*N^-alpha" : "A*(N*rho)^-alpha", p->name[scale], a ? "alpha" : "beta",
                            v, a && p->law != QAT_LAW_CHINCHILLA ? " with rho = 1 (fp32/fp32)" : "", low, a ? "N" : "D",
                            p->name[scale], a ? "N" : "D");
        }
    }
    return QAT_OK;
}

int qat_fit_identify(qat_fit_problem *p, FILE *note) {
    QAT_TRY(check_held_values(p));
    QAT_TRY(check_axes(p));
    if (p->law == QAT_LAW_DECOUPLED) QAT_TRY(check_eff_anchor(p));
    if (p->law == QAT_LAW_UNIFIED) hold_capacity(p, note);
    if (p->law == QAT_LAW_QUARTET) QAT_TRY(qat_fit_quartet_identify(p));
    return check_points(p);
}

/* ---- Rule 5, after the fit: a parameter that only ran toward a bound ----------
 *
 * Counting (rules 1–4) cannot see a direction the data leave flat at the
 * optimum: two formats whose losses match fp32 put the tanh of their type on
 * its flat top, so quant_F runs to +∞ (9.4e85 was once printed as fitted) and
 * any C fits; exponents held by --fix can leave E nothing to explain, so it runs
 * to 0. So each free parameter is profiled: held 10, 100, then 1000 times away
 * from its fitted value toward a bound (ln-scale parameters toward 0 and ∞; α, β
 * toward 0 and up) with the others refitted from the previous step. If even
 * the last step fits as well as the optimum within the runs' noise (below),
 * the runs do not determine the parameter (the reason names the bound it
 * went toward: not_identified).
 *
 * "As well within the runs' noise" is the likelihood-ratio test of the held
 * value, on the sums of squared ln-residuals of the two fits:
 *
 *     SSE_held − SSE_free < χ²₁(0.95) · s²,   s² = SSE_free / (n − free),
 *
 * χ²₁(0.95) = 3.84, s ≥ 1e-5. Derivation: with ln L_i = ln L̂_i(θ) + ε_i, ε_i
 * independent N(0, σ²), twice the log-likelihood ratio of θ_k held against
 * free, the others refitted, is ΔSSE/σ², asymptotically χ²₁ (Wilks 1938; the
 * profile-likelihood region of nonlinear least squares, Bates & Watts 1988,
 * "Nonlinear Regression Analysis and Its Applications", §6.1; Seber & Wild
 * 1989, "Nonlinear Regression", §5.9), with σ² estimated by the free fit's
 * s². (The F form, ΔSSE/s² against F(1, n − free), has a larger 95 % point,
 * 4.54 at 15 degrees of freedom; χ²₁ refuses a hold slightly sooner.)
 *
 * It used to be the Huber objective f that was compared, Δf < 1.92·s² with
 * s² = 2f/(n − free). That is the same test while every residual is within
 * δ = 1e-3 (f = SSE/2), but real runs scatter by ~1 % and every residual is
 * then in Huber's linear part, f ≈ δ·Σ|r|. The likelihood-ratio test of an
 * M-estimator (Schrader & Hettmansperger 1980, Biometrika 67:93–101) is
 * 2Δf·E[ψ′]/E[ψ²] < χ²₁ with ψ(r) = clip(r, ±δ): for Gaussian noise of
 * σ ≫ δ, E[ψ²] ≈ δ² and E[ψ′] = P(|r| ≤ δ) ≈ 0.8·δ/σ, so the bound is
 * Δf < 2.4·δσ, while 1.92·2f/(n − free) ≈ 3.1·δσ·n/(n − free), 1.7 times
 * that at n = 20, five free parameters (Koenker & Bassett's LAD test,
 * 4·ΔΣ|r|/(σ√(2π)) < χ²₁, is the same limit). Twenty runs of a known law
 * with 1 % noise held E "as good at 1/1000 of its value" in 218 of 1000
 * noise seeds, some at ΔSSE/s² up to 13 (p ≈ 0.0003); now in 96, exactly
 * the seeds whose direct refit at E/1000 has ΔSSE/s² < 3.84
 * (tests/test_scaling_rule5.c). The robust form needs
 * the density of the residuals at 0 (E[ψ′], the share of runs within 0.1 %),
 * which a few dozen runs cannot estimate (about 1.6 of 20 fall there); the
 * squared residuals need only s². The fits themselves stay Huber fits: the
 * test reads the residuals they leave. */

#define PROFILE_STEPS 3 /* factors 10, 100, 1000 */
#define CHI2_1_95 3.841458820694124 /* χ²₁ 95 % point */

/* Σ (ln L̂_i − ln L_i)² over the runs at θ: what the test compares. */
static double sse_at(const qat_fit_problem *p, const double *theta) {
    double s = 0.0;
    for (int i = 0; i < p->n; i++) {
        double r = qat_fit_predict(p, theta, i, NULL, 0.0) - p->logL[i];
        s += r * r;
    }
    return s;
}

/* The rise of SSE that still counts as "as good": χ²₁(0.95)·s². */
static double profile_margin(const qat_fit_problem *p, double sse0) {
    int nfree = 0;
    for (int k = 0; k < p->np; k++) nfree += !p->fixed[k];
    int dof = p->n - nfree > 0 ? p->n - nfree : 1;
    double s2 = fmax(sse0 / dof, 1e-10);
    return CHI2_1_95 * s2;
}

/* θ_k held `dec` decades from its fitted value v0 (ln-scale: shifted by
 * dec·ln 10; α, β: multiplied by 10^dec). */
static double profile_value(const qat_fit_problem *p, int k, double v0, double dec) {
    return p->is_log[k] ? v0 + dec * log(10.0) : v0 * pow(10.0, dec);
}

/* The path along a valley can be too steep for one jump: with γ = 16, A held
 * 10 times smaller scales the power term by 10^-16, the refit starts where
 * only E is left, every gradient but E's vanishes, and L-BFGS stops there; an
 * α–γ valley (only α·γ determined) was reported as identified that way. So a
 * decade that is not reached in one jump is approached in halving parts, each
 * refitted from the last point reached, down to 1/64 decade and
 * PROFILE_FITS refits per decade. */
#define PROFILE_MIN_PART (1.0 / 64)
#define PROFILE_FITS 24

/* 1 when θ_k moved PROFILE_STEPS decades toward dir (−1 down, +1 up) still fits
 * within `margin` of sse0 (the free fit's SSE); *reach gets the natural value of the last step and
 * `end` (np values) the θ reached, whose other parameters say what moved along. */
static int flat_toward(const qat_fit_problem *p, const double *theta, int k, int dir, double sse0, double margin,
                       double *reach, double *end) {
    qat_fit_problem q = *p; /* shares the data; fixed/fixval are our own copies */
    q.fixed = qat_xmalloc((size_t)p->np);
    q.fixval = qat_xmalloc((size_t)p->np * sizeof *q.fixval);
    memcpy(q.fixed, p->fixed, (size_t)p->np);
    memcpy(q.fixval, p->fixval, (size_t)p->np * sizeof *q.fixval);
    q.fixed[k] = QAT_FIT_BY_USER;
    double *th = qat_xmalloc((size_t)p->np * sizeof *th), *tr = qat_xmalloc((size_t)p->np * sizeof *tr);
    memcpy(th, theta, (size_t)p->np * sizeof *th);
    double at = 0; /* decades reached */
    int flat = 1;
    for (int s = 1; s <= PROFILE_STEPS && flat; s++) {
        /* in one jump first (from the last decade), then in parts */
        double part = s - at;
        for (int fits = 0; at < s && part >= PROFILE_MIN_PART && fits < PROFILE_FITS; fits++) {
            double to = fmin(s, at + part);
            memcpy(tr, th, (size_t)p->np * sizeof *tr);
            q.fixval[k] = profile_value(p, k, theta[k], dir * to);
            double f = qat_fit_local(&q, tr, NULL), e = isfinite(f) ? sse_at(&q, tr) : NAN;
            if (isfinite(e) && e - sse0 <= margin) {
                memcpy(th, tr, (size_t)p->np * sizeof *th);
                at = to;
                part = fmin(1.0, 2 * part);
            } else {
                part = (fits == 0 ? 1.0 : part) / 2;
            }
        }
        flat = at >= s;
    }
    *reach = qat_fit_value(p, th, k);
    if (end) memcpy(end, th, (size_t)p->np * sizeof *end);
    free(th); free(tr); free(q.fixed); free(q.fixval);
    return flat;
}

/* Moved along: free parameter j ≠ k changed by COMPANION_FACTOR or more (or
 * changed sign) on a flat profile of k. Then the runs do not tell j either,
 * only a combination of the two: with two backward schemes and β, E held, a
 * quartet fit had α and γ (and B) sliding together, α → 0 as γ → ∞. */
#define COMPANION_FACTOR 100.0

static int moved_along(const qat_fit_problem *p, const double *theta, const double *end, int j) {
    if (p->fixed[j]) return 0;
    if (p->is_log[j]) return fabs(end[j] - theta[j]) >= log(COMPANION_FACTOR);
    if (!(theta[j] > 0) || !(end[j] > 0)) return (theta[j] > 0) != (end[j] > 0);
    return fabs(log(end[j] / theta[j])) >= log(COMPANION_FACTOR);
}

/* Is free parameter k undetermined toward a bound (or both)? Fills why[] when
 * so. along (np values, may be NULL) receives, for each free parameter that
 * moved with k on a flat profile (moved_along), the value it moved to (NaN for
 * the others), and *along_k the value k was held at there; the reason names
 * them too. */
static int not_identified(const qat_fit_problem *p, const qat_fit_result *r, int k, double margin, char *why,
                          size_t cap, double *along, double *along_k) {
    if (along)
        for (int j = 0; j < p->np; j++) along[j] = NAN;
    double v = qat_fit_value(p, r->theta, k);
    if (!p->is_log[k] && !(v > 0)) {
        if (k == QAT_FIT_ALPHA || k == QAT_FIT_BETA)
            snprintf(why, cap, "%s = %.4g is not a decay exponent (expected > 0): the losses do not fall with %s "
                     "in these runs", p->name[k], v, k == QAT_FIT_ALPHA ? "N" : "D");
        else /* quartet's gamma */
            snprintf(why, cap, "%s = %.4g is not a positive power (expected > 0): the losses do not fall with N "
                     "and D together in these runs", p->name[k], v);
        return 1;
    }
    /* At its bound 0 already (E = 0, or 3.7e-299 as exp of a parameter that ran
     * to −700): held 1000 times smaller or larger it is still 0, and "as good
     * with E held at 0" said nothing. The fit put it at the bound: the runs show
     * no need for it, and the note says so instead of profiling. */
    if (v == 0 || (v > 0 && v < 1e-100)) {
        snprintf(why, cap, "%s = %.4g sits at its bound 0: the fit drove it there (below 1e-100), so these runs show "
                 "no need for it and do not determine its value", p->name[k], v);
        return 1;
    }
    /* Both directions: the first flat one is not enough to say where the
     * value went (an effD of 2.4e75, flat both ways, was once said to have
     * run toward 0). A direction is named only when it is the one the value
     * went: the only flat one, or, when both are flat, the side of the grid's
     * start range it ended on. */
    double reach[2] = {NAN, NAN}, sse0 = sse_at(p, r->theta);
    int flat[2];
    double *end = qat_xmalloc(2 * (size_t)p->np * sizeof *end);
    for (int j = 0; j < 2; j++)
        flat[j] = flat_toward(p, r->theta, k, j ? 1 : -1, sse0, margin, &reach[j], end + (size_t)j * p->np);
    if (!flat[0] && !flat[1]) {
        free(end);
        return 0;
    }
    /* what moved with it, on the first flat profile that moved anything:
     * "B (to 0.004251) and gamma (to 1.398e+04)" */
    char with[QAT_FIT_WHY_LEN / 2] = "";
    int d = -1, last = -1;
    for (int dd = 0; dd < 2 && d < 0; dd++)
        for (int j = 0; j < p->np && flat[dd]; j++)
            if (j != k && moved_along(p, r->theta, end + (size_t)dd * p->np, j)) d = dd;
    for (int j = 0; d >= 0 && j < p->np; j++)
        if (j != k && moved_along(p, r->theta, end + (size_t)d * p->np, j)) last = j;
    for (int j = 0, c = 0; d >= 0 && j < p->np; j++) {
        if (j == k || !moved_along(p, r->theta, end + (size_t)d * p->np, j)) continue;
        double to = qat_fit_value(p, end + (size_t)d * p->np, j);
        if (along) along[j] = to, *along_k = reach[d];
        size_t l = strlen(with);
        snprintf(with + l, sizeof with - l, "%s%s (to %.4g)", c++ == 0 ? "" : j == last ? " and " : ", ",
                 p->name[j], to);
    }
    free(end);
    double lo, hi;
    qat_fit_start_range(p, k, &lo, &hi);
    int side = r->theta[k] > hi ? 1 : r->theta[k] < lo ? 0 : -1; /* 1 above every start, 0 below, -1 within */
    int went = flat[0] && flat[1] ? side : flat[1] ? (side == 0 ? -1 : 1) : (side == 1 ? -1 : 0);
    const char *name = p->name[k];
    if (went >= 0 && !(flat[0] && flat[1]))
        snprintf(why, cap, "%s = %.4g ran toward its bound %s: the fit is as good (within the runs' noise) with "
                 "%s held at %.4g, %s, so the runs do not determine it", name, v, went ? "+inf" : "0", name,
                 reach[went], went ? "1000 times larger" : "1000 times smaller");
    else if (went >= 0)
        snprintf(why, cap, "%s = %.4g ran toward its bound %s: the fit is as good (within the runs' noise) with "
                 "%s held 1000 times smaller (%.4g) or 1000 times larger (%.4g), so the runs do not determine it",
                 name, v, went ? "+inf" : "0", name, reach[0], reach[1]);
    else if (flat[0] && flat[1])
        snprintf(why, cap, "%s = %.4g is not determined either way: the fit is as good (within the runs' noise) "
                 "with %s held 1000 times smaller (%.4g) or 1000 times larger (%.4g)", name, v, name, reach[0],
                 reach[1]);
    else /* flat only back toward the starts: the value went one way, the runs do not hold it there */
        snprintf(why, cap, "%s = %.4g is not determined: the fit is as good (within the runs' noise) with %s held "
                 "at %.4g, %s", name, v, name, reach[flat[1]], flat[1] ? "1000 times larger" : "1000 times smaller");
    if (with[0]) {
        size_t l = strlen(why);
        snprintf(why + l, cap - l, "; %s moved along with it, so only a combination of them is determined", with);
    }
    return 1;
}

/* Index into published[] of a unified capacity constant k, or -1. */
static int capacity_slot(const qat_fit_problem *p, int k) {
    for (int t = 0; t < QAT_CAP_NTYPES; t++)
        if (p->type_off[t] >= 0 && k >= p->type_off[t] && k < p->type_off[t] + 3) return k - p->type_off[t];
    return -1;
}

/* "alpha and beta" held by --fix, for the message. */
static void user_fixed(const qat_fit_problem *p, char *out, size_t cap) {
    out[0] = 0;
    for (int k = 0; k < p->np; k++)
        if (p->fixed[k] == QAT_FIT_BY_USER) {
            size_t l = strlen(out);
            snprintf(out + l, cap - l, "%s%s", l ? ", " : "", p->name[k]);
        }
}

/* Rule 5's hold of a parameter without a published value: at its fitted value. */
static void hold_fitted(qat_fit_problem *p, const qat_fit_result *r, int k, const char *why, FILE *note) {
    p->fixed[k] = QAT_FIT_BY_RULE;
    p->fixval[k] = r->theta[k];
    snprintf(p->why[k], sizeof p->why[k], "not identified, held at its fitted value: %.*s", (int)(sizeof p->why[k] - 48), why);
    if (note)
        fprintf(note, "qat: note: %s is not identified, held at its fitted value %.4g: %s; give --fix %s=VALUE "
                "to hold it elsewhere, or add runs that vary N and D more\n", p->name[k], qat_fit_value(p, r->theta, k),
                why, p->name[k]);
}

/* The passes of rule 5. Every refit after a hold starts from the grid *and*
 * from the previous pass's optimum (prev, np values): a hold at the fitted
 * value leaves that optimum feasible, so the refit can only end as good or
 * better. From the grid alone it can end in another basin: a constant held
 * outside the grid's range (ln A = 31 after A ran along the A–α ridge) leaves
 * no grid start near the old optimum, and the next holds then freeze the
 * constants of that worse basin (a 45-run quartet fit went from rmse(ln L)
 * 0.010 free to 0.151 after holding A at its own fitted value). */
static int checked_passes(qat_fit_problem *p, const qat_fit_opts *o, qat_fit_result *r, FILE *note, double *prev) {
    qat_fit_opts first = *o;
    first.bootstrap = 0;
    first.loo = 0;
    int last = -1;             /* capacity constant held by the previous pass, to confirm */
    double sse_free = 0, m_free = 0, rmse_free = 0; /* the fit before that hold */
    char fx[160];
    for (;;) {
        QAT_TRY(qat_fit_run_fit(p, &first, r));
        memcpy(prev, r->theta, (size_t)p->np * sizeof *prev);
        first.warm = prev; /* the caller's warm start is in prev's lineage: the first pass tried it */
        if (last >= 0) {
            /* Held at the published value: fine when that fits as well as the free
             * optimum did (the runs say nothing against it); when it fits worse,
             * the runs do say something, only not enough, and no value is ours to pick. */
            if (sse_at(p, r->theta) - sse_free > m_free) {
                user_fixed(p, fx, sizeof fx);
                int rc = qat_fail(QAT_EINPUT, "the %s fit of the %d runs%s%s%s: %s is not identified: %s; and the "
                                  "published %g does not fit these runs either (rmse(ln L) %.3g -> %.3g); hold it "
                                  "with --fix %s=VALUE, or add runs of formats with more distinct GMSE values",
                                  qat_fit_law_name(p->law), p->n, fx[0] ? " (with " : "", fx,
                                  fx[0] ? " held by --fix)" : "", p->name[last], p->why[last],
                                  exp(p->fixval[last]), rmse_free, r->rmse_log, p->name[last]);
                qat_fit_result_free(r);
                return rc;
            }
            if (note)
                fprintf(note, "qat: note: %s held at %g (published Llama/C4): %s\n", p->name[last],
                        exp(p->fixval[last]), p->why[last]);
            last = -1;
        }
        double margin = profile_margin(p, sse_at(p, r->theta));
        char why[QAT_FIT_WHY_LEN];
        /* Capacity constants first, in the order rule 3 holds them (L, C, F per
         * type): holding one changes what the others must explain, so refit. */
        static const int order[3] = {0, 2, 1};
        for (int t = 0; t < QAT_CAP_NTYPES && last < 0; t++)
            for (int s = 0; s < 3 && p->type_off[t] >= 0 && last < 0; s++) {
                int k = p->type_off[t] + order[s];
                if (p->fixed[k] || !not_identified(p, r, k, margin, why, sizeof why, NULL, NULL)) continue;
                hold(p, k, order[s], why, NULL);
                last = k;
            }
        if (last >= 0) {
            sse_free = sse_at(p, r->theta);
            m_free = margin;
            rmse_free = r->rmse_log;
            qat_fit_result_free(r);
            continue;
        }
        /* A, alpha, B, beta, E or an eff that only ran toward a bound has no
         * published value that belongs to these runs' data (nats/byte of this
         * corpus), so it is held where the fit put it and reported as not
         * identified: the table, JSON and FIT.h5 mark it held by rule with this
         * reason, the bootstrap does not vary it, and the others are refitted. A
         * fitted exponent <= 0 is no decay at all, so that one still refuses. */
        /* Exponents that came out ≤ 0 refuse the fit: name every one of them in
         * one message (one per run of qat was a cure-one-find-the-next loop). */
        {
            char names[512] = "", whys[1600] = "", fixes[512] = "";
            int bad = 0;
            for (int k = 0; k < p->np; k++) {
                if (p->fixed[k] || p->is_log[k] || capacity_slot(p, k) >= 0) continue;
                double v = qat_fit_value(p, r->theta, k);
                if (v > 0 || !not_identified(p, r, k, margin, why, sizeof why, NULL, NULL)) continue;
                size_t a = strlen(names), b = strlen(whys), c = strlen(fixes);
                snprintf(names + a, sizeof names - a, "%s%s", bad ? " and " : "", p->name[k]);
                snprintf(whys + b, sizeof whys - b, "%s%s", bad ? "; " : "", why);
                snprintf(fixes + c, sizeof fixes - c, "%s--fix %s=VALUE", bad ? " " : "", p->name[k]);
                bad++;
            }
            if (bad) {
                user_fixed(p, fx, sizeof fx);
                int rc = qat_fail(QAT_EINPUT, "the %s fit of the %d runs%s%s%s: %s %s not identified: %s; hold %s "
                                  "with %s, or add runs that vary N and D more",
                                  qat_fit_law_name(p->law), p->n, fx[0] ? " (with " : "", fx,
                                  fx[0] ? " held by --fix)" : "", names, bad > 1 ? "are" : "is", whys,
                                  bad > 1 ? "them" : "it", fixes);
                qat_fit_result_free(r);
                return rc;
            }
        }
        int held_one = 0;
        double *along = qat_xmalloc((size_t)p->np * sizeof *along), along_k = NAN;
        for (int k = 0; k < p->np && !held_one; k++) {
            if (p->fixed[k] || capacity_slot(p, k) >= 0 ||
                !not_identified(p, r, k, margin, why, sizeof why, along, &along_k))
                continue;
            double v = qat_fit_value(p, r->theta, k);
            if (!p->is_log[k] && !(v > 0)) {
                user_fixed(p, fx, sizeof fx);
                int rc = qat_fail(QAT_EINPUT, "the %s fit of the %d runs%s%s%s: %s is not identified: %s; hold it "
                                  "with --fix %s=VALUE, or add runs that vary N and D more",
                                  qat_fit_law_name(p->law), p->n, fx[0] ? " (with " : "", fx,
                                  fx[0] ? " held by --fix)" : "", p->name[k], why, p->name[k]);
                qat_fit_result_free(r);
                free(along);
                return rc;
            }
            hold_fitted(p, r, k, why, note);
            /* What slid along with it is no better determined: held with it, or
             * the next pass would report it as measured, with an interval as
             * narrow as the held value makes it (γ of an α–γ valley). */
            for (int j = 0; j < p->np; j++) {
                if (isnan(along[j]) || p->fixed[j] || capacity_slot(p, j) >= 0) continue;
                char whyj[QAT_FIT_WHY_LEN];
                snprintf(whyj, sizeof whyj, "%s = %.4g is not determined either: it moved along with %s, which is "
                         "not identified: the fit is as good (within the runs' noise) with %s held at %.4g and %s "
                         "refitted to %.4g, so the runs determine only a combination of them", p->name[j],
                         qat_fit_value(p, r->theta, j), p->name[k], p->name[k], along_k, p->name[j], along[j]);
                hold_fitted(p, r, j, whyj, note);
            }
            held_one = 1;
        }
        free(along);
        if (held_one) {
            qat_fit_result_free(r);
            continue;
        }
        break;
    }
    return QAT_OK;
}

/* ρ(0) = L: a fitted L above 1 prices an exact format of its type above fp32
 * (ρ = 1 by definition), and every high-bit format with it (int8 at 1.2 for
 * L = 1.21). The U-paper fits L too, so it is said, not changed. Up to 5 %
 * above 1 is left unsaid: runs drawn with L = 1 and 0.4 % noise fit it at
 * 0.990–1.014 (test_scaling_unified), which is the fit's noise, not a finding. */
static void note_L_above_1(const qat_fit_problem *p, const qat_fit_result *r, FILE *note) {
    for (int t = 0; t < QAT_CAP_NTYPES && note; t++) {
        int k = p->type_off[t];
        if (k < 0 || p->fixed[k]) continue;
        double L = qat_fit_value(p, r->theta, k);
        if (L > 1.05)
            fprintf(note, "qat: note: %s = %.4g is above 1: the law prices an exact %s format above fp32 (rho(0) = L), "
                    "and the formats of that type nearest to exact get rho > 1; --fix %s=1 holds it at an exact "
                    "format's capacity\n", p->name[k], L, qat_fit_type_name(t), p->name[k]);
    }
}

int qat_fit_run_checked(qat_fit_problem *p, const qat_fit_opts *o, qat_fit_result *r, FILE *note) {
    double t0 = omp_get_wtime();
    double *prev = qat_xmalloc((size_t)p->np * sizeof *prev);
    int rc = checked_passes(p, o, r, note, prev);
    if (!rc && o->bootstrap > 0) {
        /* The bootstrap reuses the full fit's other local optima: refit with
         * them, warm from the checked optimum so that the refit keeps it. */
        qat_fit_opts boot = *o;
        boot.warm = prev;
        qat_fit_result_free(r);
        rc = qat_fit_run_fit(p, &boot, r);
    } else if (!rc && o->loo) {
        r->loo_rmse_log = qat_fit_loo(p, r->theta);
    }
    free(prev);
    if (rc) return rc;
    note_L_above_1(p, r, note);
    r->seconds = omp_get_wtime() - t0;
    return QAT_OK;
}
