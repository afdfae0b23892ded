/*
 * compress/capacity.c — capacity.h: a format's GMSE, capacity terms, ρ and bits.
 *
 * Bits per parameter (the denominator of the ρ/bits frontier):
 *  - uncompressed values count 16 bits (bf16: the precision QuEST's frontier
 *    compares against, eff·16/P), so fp32 → 16 and a sparse survivor → 16;
 *  - intB → B; ternary → log2(3) ≈ 1.585; fp4 → 4; vqDxB → B (the codebook is
 *    fixed by the format, so it is not stored per tensor); aqMxBgG → M·B/G (the
 *    codes; its learned codebooks depend on the layer's shape, docs/formats.md);
 *  - spNN keeps a fraction k = 1 − NN/100: 16·k value bits + 1 mask bit per
 *    parameter (a bitmap); N:M: 16·N/M + log2(C(M,N))/M (an index per group);
 *  - SPARSE+VALUE: the value bits apply to survivors only, plus the mask bits;
 *  - noise(F) → F's bits (it stands in for F);
 *  - per-row scales are amortised over the row and not counted;
 *  - block formats count every per-block scale: MX (32·b + 8)/32 (mxfp4 4.25),
 *    nvfp4 4 + 8/16 = 4.5 (4 + 8/256 with 16×16 tiles), intB@gG B + 16/G; a scale
 *    stored once per tensor (nvfp4's fp32) is reported beside them (tensor bits).
 * Each kind's rule is its row's `bits` in format_table.c.
 *
 * Capacity terms: a composite format contributes one term per stage (its sparse
 * GMSE and its value GMSE measured on their own), and ρ is their product
 * (the factorisation of the unified law). The terms come from the same Monte
 * Carlo (samples, seed) as the GMSE reported beside them: a single stage's term
 * is that very number, so ρ follows from the GMSE shown and more samples
 * sharpen both (ρ once came from a fixed default estimate whatever --samples).
 */
#include "compress/capacity.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "compress/format.h"
#include "compress/format_table.h"
#include "compress/gmse.h"
#include "core/error.h"

const qat_cap_params QAT_CAP_PUBLISHED = {1.0, 0.41, 1.39};

const char *qat_cap_type_name(qat_cap_type t) {
    switch (t) {
    case QAT_CAP_QUANT: return "quant";
    case QAT_CAP_SPARSE: return "sparse";
    case QAT_CAP_VQ: return "vq";
    default: return "?";
    }
}

double qat_cap_rho(qat_cap_params p, double gmse) {
    if (gmse <= 0.0) return p.L;
    if (gmse >= 1.0) return 0.0;
    double eff_bits = log(gmse) / log(0.25); /* log_{1/4} gmse > 0 */
    return p.L * pow(tanh(p.F * eff_bits), p.C);
}

/* ---- per-process cache of stage GMSEs (Monte-Carlo ones are costly) ---------- */

typedef struct {
    char key[QAT_FMT_MAX + 48]; /* stage name, samples, seed */
    double gmse;                /* that stage's GMSE under that Monte Carlo */
} term_entry;

static term_entry term_cache[128];
static int term_n;
static pthread_mutex_t term_lock = PTHREAD_MUTEX_INITIALIZER;

/* A stage's GMSE under the Monte Carlo (samples, seed) (0 = defaults), cached
 * per process: the fit's resolver asks for the same formats again and again. */
static double stage_gmse(const qat_fmt *stage, int64_t samples, uint64_t seed) {
    char key[QAT_FMT_MAX + 48], name[QAT_FMT_MAX];
    qat_fmt_print(stage, name, sizeof name);
    snprintf(key, sizeof key, "%s/%lld/%llu", name, (long long)samples, (unsigned long long)seed);
    pthread_mutex_lock(&term_lock);
    for (int i = 0; i < term_n; i++)
        if (!strcmp(term_cache[i].key, key)) {
            double g = term_cache[i].gmse;
            pthread_mutex_unlock(&term_lock);
            return g;
        }
    pthread_mutex_unlock(&term_lock);
    double g, se;
    qat_fmt_gmse_parsed(stage, samples, seed, &g, &se);
    pthread_mutex_lock(&term_lock);
    if (term_n < 128) {
        snprintf(term_cache[term_n].key, sizeof term_cache[term_n].key, "%s", key);
        term_cache[term_n].gmse = g;
        term_n++;
    }
    pthread_mutex_unlock(&term_lock);
    return g;
}

/* The capacity terms of f under the Monte Carlo (samples, seed): one per stage.
 * A single stage's term is the GMSE of the format itself (noise(F): F's), so
 * when the caller already has that number (whole >= 0) it is used as it is,
 * not measured again; a composite's stages are measured on their own. */
static int terms_of(const qat_fmt *f, const char *fmt, int64_t samples, uint64_t seed, double whole,
                    qat_cap_term *terms, int max_terms, int *n_terms) {
    int n = 0;
    qat_cap_term t[2];
    const int composite = f->sp != QAT_SP_NONE && f->val != QAT_VAL_NONE;
    if (f->sp != QAT_SP_NONE) {
        qat_fmt s = qat_fmt_sparse_part(f);
        t[n].type = qat_fmt_sparse_traits(&s)->cap;
        t[n].gmse = !composite && whole >= 0 ? whole : stage_gmse(&s, samples, seed);
        n++;
    }
    if (f->val != QAT_VAL_NONE) {
        qat_fmt v = qat_fmt_value_part(f);
        t[n].type = qat_fmt_traits_of(&v)->cap;
        t[n].gmse = !composite && whole >= 0 ? whole : stage_gmse(&v, samples, seed);
        n++;
    }
    if (n > max_terms) return qat_fail(QAT_EINPUT, "format '%s' has %d capacity terms, room for %d", fmt, n, max_terms);
    for (int i = 0; i < n; i++) terms[i] = t[i];
    *n_terms = n;
    return QAT_OK;
}

int qat_fmt_capacity_terms(const char *fmt, qat_cap_term *terms, int max_terms, int *n_terms) {
    qat_fmt f;
    QAT_TRY(qat_fmt_parse(fmt, &f));
    return terms_of(&f, fmt, 0, 0, -1.0, terms, max_terms, n_terms);
}

int qat_fmt_gmse(const char *fmt, int64_t samples, uint64_t seed, double *gmse, double *stderr_out) {
    qat_fmt f;
    QAT_TRY(qat_fmt_parse(fmt, &f));
    double g, se;
    qat_fmt_gmse_parsed(&f, samples, seed, &g, &se);
    *gmse = g;
    if (stderr_out) *stderr_out = se;
    return QAT_OK;
}

int qat_fmt_estimate(const char *fmt, int64_t samples, uint64_t seed, const qat_cap_params params[QAT_CAP_NTYPES],
                     qat_fmt_est *e) {
    qat_fmt f;
    QAT_TRY(qat_fmt_parse(fmt, &f));
    memset(e, 0, sizeof *e);
    qat_fmt_gmse_parsed(&f, samples, seed, &e->gmse, &e->gmse_err);
    QAT_TRY(terms_of(&f, fmt, samples, seed, e->gmse, e->term, 2, &e->n_terms));
    e->rho = qat_cap_rho_terms(params, e->term, e->n_terms);
    return QAT_OK;
}

int qat_fmt_bits(const char *fmt, double *bits) {
    qat_fmt f;
    QAT_TRY(qat_fmt_parse(fmt, &f));
    *bits = qat_fmt_bits_parsed(&f, NULL);
    return QAT_OK;
}

double qat_cap_rho_terms(const qat_cap_params params[QAT_CAP_NTYPES], const qat_cap_term *t, int n) {
    double r = 1.0;
    for (int i = 0; i < n; i++) r *= qat_cap_rho(params[t[i].type], t[i].gmse);
    return r;
}

int qat_fmt_rho(const char *fmt, const qat_cap_params params[QAT_CAP_NTYPES], double *rho) {
    qat_cap_term t[4];
    int n;
    QAT_TRY(qat_fmt_capacity_terms(fmt, t, 4, &n));
    *rho = qat_cap_rho_terms(params, t, n);
    return QAT_OK;
}
