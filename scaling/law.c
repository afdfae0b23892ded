/*
 * scaling/law.c — the three laws of docs/scaling-laws.md as one parametrised prediction.
 *
 * A run's predicted log-loss is LSE(a − α·(ln N + ln ρ), b − β·ln D, e): the
 * log-sum-exp of the three terms of L = A·(Nρ)^-α + B·D^-β + E with A = e^a,
 * B = e^b, E = e^e. Computing it through the LSE keeps it finite for any θ the
 * optimiser tries (no overflow of A·N^-α at a = 25, α = 0) and makes the
 * gradient the softmax weights of the terms, which is exact and cheap.
 *
 * ln ρ is 0 (chinchilla), a free ln eff per format pair (decoupled, and effN
 * of the quartet law, whose prediction lives in law_quartet.c; fp32/fp32
 * pinned to 0), or Σ_terms ln L_t + C_t·ln tanh(F_t·x) with x = log_{1/4} gmse
 * (unified; L, F, C stored as logarithms so they stay positive).
 */
#include "scaling/fit.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

void qat_fit_runs_push(qat_fit_runs *rs, const qat_fit_run *r) {
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 64;
        rs->run = qat_xrealloc(rs->run, (size_t)rs->cap * sizeof *rs->run);
    }
    rs->run[rs->n++] = *r;
}

int qat_fit_check_range(const char *where, const char *what, int is_loss, double v) {
    double lo = is_loss ? 0 : 1, hi = is_loss ? QAT_FIT_MAX_LOSS : QAT_FIT_MAX_COUNT;
    int ok = isfinite(v) && (is_loss ? v > lo : v >= lo) && v < hi;
    if (ok) return QAT_OK;
    return qat_fail(QAT_EINPUT, "%s: %s %g is out of range: expected %g %s value < %g (%s)", where, what, v, lo,
                    is_loss ? "<" : "<=", hi,
                    is_loss ? "nats per token: the uniform guess over any real vocabulary costs under 30"
                            : "at least one parameter or token, below anything trained");
}

void qat_fit_runs_free(qat_fit_runs *rs) {
    free(rs->run);
    memset(rs, 0, sizeof *rs);
}

const char *qat_fit_law_name(qat_fit_law law) {
    static const char *names[QAT_FIT_NLAWS] = {"chinchilla", "decoupled", "unified", "quartet"};
    return names[law];
}

int qat_fit_law_parse(const char *s, qat_fit_law *law) {
    for (int k = 0; k < QAT_FIT_NLAWS; k++)
        if (!strcmp(s, qat_fit_law_name((qat_fit_law)k))) { *law = (qat_fit_law)k; return QAT_OK; }
    return qat_fail(QAT_EINPUT, "--law %s: unknown law, expected chinchilla, decoupled, unified, quartet or chen", s);
}

/* Our own copy of the JSON keys: the fit must build (and name types) even when
 * compress/ is not linked. They match qat_cap_type_name by docs/cli.md. */
const char *qat_fit_type_name(int type) {
    static const char *names[] = {"quant", "sparse", "vq"};
    return (type >= 0 && type < QAT_CAP_NTYPES) ? names[type] : "?";
}

int qat_fit_resolve_terms(qat_fit_runs *rs, const qat_fit_resolver *res) {
    for (int i = 0; i < rs->n; i++) {
        qat_fit_run *r = &rs->run[i];
        if (r->n_terms >= 0) continue;
        if (!res || !res->terms)
            return qat_fail(QAT_EINPUT, "%s: the unified law needs the capacity terms of '%s/%s', "
                            "but this qat was built without compress/", r->origin, r->wfmt, r->afmt);
        int nw = 0, na = 0;
        if (res->terms(r->wfmt, r->terms, QAT_FIT_MAX_TERMS, &nw))
            return qat_fail_context(QAT_EINPUT, "%s: weight format", r->origin);
        if (res->terms(r->afmt, r->terms + nw, QAT_FIT_MAX_TERMS - nw, &na))
            return qat_fail_context(QAT_EINPUT, "%s: activation format", r->origin);
        r->n_terms = nw + na;
    }
    return QAT_OK;
}

static int pair_cmp(const void *a, const void *b) { return strcmp(a, b); }

int qat_fit_problem_init(qat_fit_problem *p, qat_fit_law law, const qat_fit_runs *rs) {
    memset(p, 0, sizeof *p);
    if (rs->n < 1) return qat_fail(QAT_EINPUT, "no runs to fit");
    int n = rs->n;
    p->law = law;
    p->n = n;
    p->logN = qat_xmalloc((size_t)n * sizeof(double));
    p->logD = qat_xmalloc((size_t)n * sizeof(double));
    p->logL = qat_xmalloc((size_t)n * sizeof(double));
    p->pair_of = qat_xmalloc((size_t)n * sizeof(int));
    p->pair = qat_xcalloc((size_t)n, sizeof *p->pair);
    for (int i = 0; i < n; i++) {
        const qat_fit_run *r = &rs->run[i];
        QAT_ASSERT(r->N > 0 && r->D > 0 && r->loss > 0);
        p->logN[i] = log(r->N);
        p->logD[i] = log(r->D);
        p->logL[i] = log(r->loss);
        snprintf(p->pair[i], sizeof p->pair[i], "%s/%s", r->wfmt, r->afmt);
    }
    /* Distinct pairs, sorted, so parameter order does not depend on file order. */
    qsort(p->pair, (size_t)n, sizeof *p->pair, pair_cmp);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || strcmp(p->pair[m - 1], p->pair[i])) memmove(p->pair[m++], p->pair[i], sizeof *p->pair);
    p->n_pairs = m;
    p->pair_run = qat_xmalloc((size_t)m * sizeof(int));
    for (int k = 0; k < m; k++) p->pair_run[k] = -1;
    for (int i = 0; i < n; i++) {
        char key[sizeof *p->pair];
        snprintf(key, sizeof key, "%s/%s", rs->run[i].wfmt, rs->run[i].afmt);
        const char(*hit)[sizeof *p->pair] = bsearch(key, p->pair, (size_t)m, sizeof *p->pair, pair_cmp);
        QAT_ASSERT(hit);
        p->pair_of[i] = (int)(hit - p->pair);
        if (p->pair_run[p->pair_of[i]] < 0) p->pair_run[p->pair_of[i]] = i;
    }

    /* Parameter layout. */
    int np = law == QAT_LAW_QUARTET ? 6 : 5; /* quartet: gamma is θ[5] */
    p->eff_of_pair = qat_xmalloc((size_t)m * sizeof(int));
    for (int t = 0; t < QAT_CAP_NTYPES; t++) p->type_off[t] = -1;
    if (law == QAT_LAW_DECOUPLED || law == QAT_LAW_QUARTET) {
        for (int k = 0; k < m; k++)
            p->eff_of_pair[k] = strcmp(p->pair[k], "fp32/fp32") ? np++ : -1;
    } else {
        for (int k = 0; k < m; k++) p->eff_of_pair[k] = -1;
    }
    if (law == QAT_LAW_UNIFIED) {
        p->nt = qat_xcalloc((size_t)n, sizeof(int));
        p->tt = qat_xcalloc((size_t)n * QAT_FIT_MAX_TERMS, sizeof(int));
        p->tx = qat_xcalloc((size_t)n * QAT_FIT_MAX_TERMS, sizeof(double));
        int present[QAT_CAP_NTYPES] = {0};
        for (int i = 0; i < n; i++) {
            const qat_fit_run *r = &rs->run[i];
            if (r->n_terms < 0) {
                qat_fit_problem_free(p);
                return qat_fail(QAT_EINPUT, "%s: format '%s/%s' has no capacity terms (unresolved)",
                                r->origin, r->wfmt, r->afmt);
            }
            p->nt[i] = r->n_terms;
            for (int k = 0; k < r->n_terms; k++) {
                double g = r->terms[k].gmse;
                int t = (int)r->terms[k].type;
                if (t < 0 || t >= QAT_CAP_NTYPES || !(g < 1.0)) {
                    qat_fit_problem_free(p);
                    return qat_fail(QAT_EINPUT, "%s: capacity term %d of '%s/%s' has gmse %g "
                                    "(expected < 1) or an unknown type", r->origin, k, r->wfmt, r->afmt, g);
                }
                present[t] = 1;
                p->tt[i * QAT_FIT_MAX_TERMS + k] = t;
                /* log_{1/4} g = ln g / ln(1/4); an exact representation (g ≤ 0) is x = ∞, ρ = L. */
                p->tx[i * QAT_FIT_MAX_TERMS + k] = g > 0 ? log(g) / log(0.25) : INFINITY;
            }
        }
        /* The objective computes ln ρ once per pair, so a pair must mean one set of terms. */
        for (int i = 0; i < n; i++) {
            int j = p->pair_run[p->pair_of[i]];
            int same = p->nt[i] == p->nt[j];
            for (int k = 0; same && k < p->nt[i]; k++)
                same = p->tt[i * QAT_FIT_MAX_TERMS + k] == p->tt[j * QAT_FIT_MAX_TERMS + k] &&
                       rs->run[i].terms[k].gmse == rs->run[j].terms[k].gmse;
            if (!same) {
                qat_fit_problem_free(p);
                return qat_fail(QAT_EINPUT, "%s: format pair '%s/%s' has other capacity terms than in %s",
                                rs->run[i].origin, rs->run[i].wfmt, rs->run[i].afmt, rs->run[j].origin);
            }
        }
        for (int t = 0; t < QAT_CAP_NTYPES; t++)
            if (present[t]) { p->type_off[t] = np; np += 3; }
    }
    if (law == QAT_LAW_QUARTET) np = qat_fit_quartet_init(p, rs, np);
    p->np = np;
    p->name = qat_xcalloc((size_t)np, sizeof *p->name);
    p->is_log = qat_xcalloc((size_t)np, 1);
    p->fixed = qat_xcalloc((size_t)np, 1);
    p->fixval = qat_xcalloc((size_t)np, sizeof(double));
    p->why = qat_xcalloc((size_t)np, sizeof *p->why);
    static const char *base[5] = {"A", "alpha", "B", "beta", "E"};
    for (int k = 0; k < 5; k++) {
        snprintf(p->name[k], sizeof p->name[k], "%s", base[k]);
        p->is_log[k] = (k == QAT_FIT_A || k == QAT_FIT_B || k == QAT_FIT_E);
    }
    /* Quartet names say which multiplier an eff is (effN:W/A, effD:G), since a
     * backward key could read like a weight format. */
    const char *effn = law == QAT_LAW_QUARTET ? "effN:" : "";
    for (int k = 0; k < m; k++)
        if (p->eff_of_pair[k] >= 0) {
            snprintf(p->name[p->eff_of_pair[k]], sizeof p->name[0], "%s%s", effn, p->pair[k]);
            p->is_log[p->eff_of_pair[k]] = 1;
        }
    if (law == QAT_LAW_QUARTET) {
        snprintf(p->name[QAT_FIT_GAMMA], sizeof p->name[0], "gamma");
        /* ln γ, not γ: along the α–γ valley (runs that fix only α·γ) γ must
         * move by decades when α does, which a plain γ reached only in
         * hundreds of steps (docs/scaling-laws.md, the quartet law). */
        p->is_log[QAT_FIT_GAMMA] = 1;
        for (int j = 0; j < p->n_bwd; j++)
            if (p->effd_of_bwd[j] >= 0) {
                snprintf(p->name[p->effd_of_bwd[j]], sizeof p->name[0], "effD:%s", p->bwd[j]);
                p->is_log[p->effd_of_bwd[j]] = 1;
            }
    }
    for (int t = 0; t < QAT_CAP_NTYPES; t++)
        if (p->type_off[t] >= 0)
            for (int j = 0; j < 3; j++) {
                snprintf(p->name[p->type_off[t] + j], sizeof p->name[0], "%s_%c", qat_fit_type_name(t), "LFC"[j]);
                p->is_log[p->type_off[t] + j] = 1;
            }
    return QAT_OK;
}

void qat_fit_problem_free(qat_fit_problem *p) {
    free(p->logN); free(p->logD); free(p->logL); free(p->pair_of); free(p->pair);
    free(p->pair_run); free(p->eff_of_pair); free(p->nt); free(p->tt); free(p->tx);
    free(p->name); free(p->is_log); free(p->fixed); free(p->fixval); free(p->why);
    free(p->bwd); free(p->bwd_of); free(p->effd_of_bwd); free(p->key); free(p->key_pair); free(p->key_bwd);
    memset(p, 0, sizeof *p);
}

static int fix_one(qat_fit_problem *p, int k, double value) {
    /* Every parameter's range is (0, inf): A, B, E, effs, L, F, C are scales
     * (fitted as logs), alpha and beta decay exponents, gamma the quartet
     * law's positive power (fitted as its log too); a held value outside
     * would be fitted around. */
    if (!(value > 0))
        return qat_fail(QAT_EINPUT, "--fix %s=%g: %s is out of range, expected a number in (0, inf) (%s)", p->name[k],
                        value, p->name[k], !strcmp(p->name[k], "gamma") ? "a positive power" : p->is_log[k] ?
                        "a positive scale" : "a decay exponent");
    p->fixed[k] = QAT_FIT_BY_USER;
    p->why[k][0] = 0;
    p->fixval[k] = p->is_log[k] ? log(value) : value;
    return QAT_OK;
}

int qat_fit_fix_targets(const qat_fit_problem *p, const char *name, int *idx) {
    for (int k = 0; k < p->np; k++)
        if (!strcmp(p->name[k], name)) {
            idx[0] = k;
            return 1;
        }
    /* L, F or C alone: that constant of every compression type present. */
    int hits = 0;
    if (p->law == QAT_LAW_UNIFIED && strlen(name) == 1 && strchr("LFC", name[0]))
        for (int t = 0; t < QAT_CAP_NTYPES; t++)
            if (p->type_off[t] >= 0) idx[hits++] = p->type_off[t] + (int)(strchr("LFC", name[0]) - "LFC");
    return hits;
}

int qat_fit_problem_fix(qat_fit_problem *p, const char *name, double value) {
    if (!isfinite(value)) return qat_fail(QAT_EINPUT, "--fix %s: value is not a finite number", name);
    int idx[QAT_CAP_NTYPES];
    int hits = qat_fit_fix_targets(p, name, idx);
    for (int j = 0; j < hits; j++) QAT_TRY(fix_one(p, idx[j], value));
    if (hits) return QAT_OK;
    char valid[1024] = "";
    for (int k = 0; k < p->np && strlen(valid) < 900; k++) {
        strcat(valid, k ? ", " : "");
        strncat(valid, p->name[k], 60);
    }
    return qat_fail(QAT_EINPUT, "--fix %s: no parameter of that name in the %s law; expected one of: %s%s",
                    name, qat_fit_law_name(p->law), valid, p->law == QAT_LAW_UNIFIED ? ", L, F, C" : "");
}

double qat_fit_value(const qat_fit_problem *p, const double *theta, int k) {
    return p->is_log[k] ? exp(theta[k]) : theta[k];
}

/* ln ρ of run i; with grad, adds scale·∂lnρ/∂θ. */
static double log_rho(const qat_fit_problem *p, const double *th, int i, double *grad, double scale) {
    if (p->law == QAT_LAW_CHINCHILLA) return 0.0;
    if (p->law == QAT_LAW_DECOUPLED || p->law == QAT_LAW_QUARTET) { /* quartet: ρ is effN */
        int k = p->eff_of_pair[p->pair_of[i]];
        if (k < 0) return 0.0;
        if (grad) grad[k] += scale;
        return th[k];
    }
    double s = 0.0;
    for (int j = 0; j < p->nt[i]; j++) {
        int o = p->type_off[p->tt[i * QAT_FIT_MAX_TERMS + j]];
        double x = p->tx[i * QAT_FIT_MAX_TERMS + j];
        s += th[o];
        if (grad) grad[o] += scale;
        if (isinf(x)) continue; /* exact: tanh = 1 */
        double F = exp(th[o + 1]), C = exp(th[o + 2]);
        double z = F * x;
        double t = tanh(z);
        if (t < 1e-300) t = 1e-300; /* ρ → 0 only as gmse → 1; keep the log finite */
        double lt = log(t);
        s += C * lt;
        if (grad) {
            /* d ln tanh z / d ln F = z·(1 − t²)/t; d(C·lt)/d ln C = C·lt. */
            grad[o + 1] += scale * C * z * (1.0 - t * t) / t;
            grad[o + 2] += scale * C * lt;
        }
    }
    return s;
}

double qat_fit_log_rho(const qat_fit_problem *p, const double *theta, int i) {
    return log_rho(p, theta, i, NULL, 0.0);
}

double qat_fit_cap_rho(const qat_fit_problem *p, const double *theta, int type, double gmse) {
    int o = p->type_off[type];
    if (o < 0) return NAN;
    if (gmse >= 1.0) return 0.0;
    double L = exp(theta[o]);
    if (gmse <= 0.0) return L;
    return L * pow(tanh(exp(theta[o + 1]) * log(gmse) / log(0.25)), exp(theta[o + 2]));
}

double qat_fit_predict_given_rho(const qat_fit_problem *p, const double *th, int i, double lr, double w[3]) {
    double u[3] = {th[QAT_FIT_A] - th[QAT_FIT_ALPHA] * (p->logN[i] + lr), th[QAT_FIT_B] - th[QAT_FIT_BETA] * p->logD[i],
                   th[QAT_FIT_E]};
    double mx = fmax(u[0], fmax(u[1], u[2]));
    double e[3], sum = 0.0;
    for (int k = 0; k < 3; k++) { e[k] = exp(u[k] - mx); sum += e[k]; }
    if (w)
        for (int k = 0; k < 3; k++) w[k] = e[k] / sum; /* softmax = ∂LSE/∂u_k */
    return mx + log(sum);
}

double qat_fit_predict(const qat_fit_problem *p, const double *th, int i, double *grad, double scale) {
    if (p->law == QAT_LAW_QUARTET) return qat_fit_quartet_predict(p, th, i, grad, scale);
    double lr = log_rho(p, th, i, NULL, 0.0), w[3];
    double lse = qat_fit_predict_given_rho(p, th, i, lr, w);
    if (grad) {
        grad[QAT_FIT_A] += scale * w[0];
        grad[QAT_FIT_ALPHA] -= scale * w[0] * (p->logN[i] + lr);
        grad[QAT_FIT_B] += scale * w[1];
        grad[QAT_FIT_BETA] -= scale * w[1] * p->logD[i];
        grad[QAT_FIT_E] += scale * w[2];
        if (p->law != QAT_LAW_CHINCHILLA) log_rho(p, th, i, grad, -scale * w[0] * th[QAT_FIT_ALPHA]);
    }
    return lse;
}

void qat_fit_log_rho_grad(const qat_fit_problem *p, const double *theta, int i, double *grad, double scale) {
    log_rho(p, theta, i, grad, scale);
}
