/*
 * compress/gmse.c — exact and Monte-Carlo Gaussian MSE, and the survivors' α.
 *
 * Exact: scalar grids at unit RMS (the infinite-row limit the reference numbers use),
 * unstructured and N:M sparsity (grid.c). A kind whose format is more than its projection
 * has a Monte Carlo of its own (its row's gmse_mc: aq fits its books, then
 * measures them on held-out draws). Everything else goes through qat_proj_row on
 * tensors of 256 rows × 128 N(0,1) values, i.e. the very forward used in
 * training, including the finite-row RMS estimate and per-tensor top-k. Values
 * are drawn by counter (qat_normal_at), per-tensor errors are stored and summed
 * in tensor order, so the result does not depend on the thread count.
 *
 * Survivors' α (composites, estimators.md §6.3): the survivors of magnitude
 * pruning are the tails of the Gaussian, so their RMS is larger than the dense
 * RMS and the best clip in survivor-RMS units differs from the dense α*(b)
 * (≈1.30 instead of 1.49 for 2:4+int2). No table covers every SPARSE+VALUE pair,
 * so qat computes it: golden-section search of the composite's MC GMSE over α
 * with common random numbers (a fixed seed, so the objective is a deterministic
 * function of α), once per process per format.
 */
#include "compress/gmse.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "compress/format_table.h"
#include "compress/grid.h"
#include "core/error.h"
#include "core/rng.h"

#define MC_TENSOR_ROWS 256
#define ALPHA_SAMPLES ((int64_t)1 << 18)
#define ALPHA_SEED 0xA1FA5EEDull

/* Row length of the Monte Carlo: 128, stretched to a multiple of the format's
 * natural group (N:M's M, vq's d) and of a block format's scale block (intB@gG's
 * G) when those do not divide 128. A row shorter than the scale block would cut
 * every block at the row's end: int4@g256 was measured as int4@g128 (the same
 * GMSE at fewer bits). */
static int64_t mc_row_len(const qat_fmt *f) {
    int64_t g = qat_fmt_group(f), b = f->block > 0 ? f->block : 1;
    int64_t a = g, c = b; /* lcm(g, b) */
    while (c) {
        int64_t t = a % c;
        a = c, c = t;
    }
    g = g / a * b;
    return ((QAT_GMSE_ROW + g - 1) / g) * g;
}

void qat_proj_gmse_mc(const qat_proj *P, int64_t samples, uint64_t seed, double *g, double *se) {
    if (samples <= 0) samples = QAT_GMSE_DEFAULT_SAMPLES;
    const int64_t L = mc_row_len(&P->f);
    const int64_t chunk = MC_TENSOR_ROWS * L; /* the unit of the standard error */
    /* a tensor is one chunk, or as many as the format's per-tensor scale needs to be typical */
    const int64_t want = qat_fmt_traits_of(&P->f)->mc_values;
    const int64_t cpt = want > chunk ? (want + chunk - 1) / chunk : 1; /* chunks per tensor */
    const int64_t per = cpt * chunk, rows = cpt * MC_TENSOR_ROWS;
    int64_t nt = (samples + per - 1) / per;
    if (nt < 2) nt = 2; /* a standard error needs two tensors */
    const int64_t nc = nt * cpt;
    double *mse = qat_xcalloc((size_t)nc, sizeof(double));
    const int tiles = (P->f.mods & QAT_MOD_2D) != 0;
#pragma omp parallel
    {
        float *x = qat_xmalloc(sizeof(float) * (size_t)per);
        float *y = qat_xmalloc(sizeof(float) * (size_t)per);
        uint8_t *m = qat_xmalloc((size_t)L);
        float *tb = tiles ? qat_xmalloc(sizeof(float) * (size_t)(((rows + 15) / 16) * ((L + 15) / 16))) : NULL;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < nt; t++) {
            uint64_t key = qat_hash3(seed, (uint64_t)t, 0x6D5Eull);
            for (int64_t i = 0; i < per; i++) x[i] = (float)qat_normal_at(key, (uint64_t)i);
            memcpy(y, x, sizeof(float) * (size_t)per);
            qat_proj_seg seg;
            qat_proj_segment_stats_2d(P, y, rows, L, tb, 0, &seg, 0);
            for (int64_t r = 0; r < rows; r++) qat_proj_row_at(P, y + r * L, L, &seg, m, r);
            for (int64_t c = 0; c < cpt; c++) {
                double s = 0;
                for (int64_t i = c * chunk; i < (c + 1) * chunk; i++) {
                    double d = (double)x[i] - y[i];
                    s += d * d;
                }
                mse[t * cpt + c] = s / (double)chunk;
            }
        }
        free(x);
        free(y);
        free(m);
        free(tb);
    }
    qat_mc_mean_se(mse, nc, g, se);
    free(mse);
}

void qat_mc_mean_se(const double *x, int64_t n, double *mean, double *se) {
    double m = 0, var = 0;
    for (int64_t t = 0; t < n; t++) m += x[t];
    m /= (double)n;
    for (int64_t t = 0; t < n; t++) var += (x[t] - m) * (x[t] - m);
    var /= (double)(n - 1);
    *mean = m;
    *se = sqrt(var / (double)n);
}

/* ---- survivors' α cache ----------------------------------------------------- */

typedef struct {
    char key[QAT_FMT_MAX]; /* sparse+value part of the format */
    double alpha;          /* optimised survivors' α */
} alpha_entry;

static alpha_entry alpha_cache[64];
static int alpha_n;
static pthread_mutex_t alpha_lock = PTHREAD_MUTEX_INITIALIZER;

static double default_alpha(const qat_fmt *f) {
    const qat_fmt_traits *t = qat_fmt_traits_of(f);
    return t->alpha ? t->alpha(f) : 0.0;
}

static double composite_gmse_at(double alpha, const void *ctx) {
    qat_proj P;
    memset(&P, 0, sizeof P);
    P.f = *(const qat_fmt *)ctx;
    P.alpha = alpha;
    double g, se;
    qat_proj_gmse_mc(&P, ALPHA_SAMPLES, ALPHA_SEED, &g, &se);
    return g;
}

/* Golden section on [0.4, 1.6]·(the dense α) to 0.2 % of it (~15 steps; the cap is
 * never reached). */
static double optimise_alpha(const qat_fmt *f) {
    double a0 = default_alpha(f);
    return qat_golden_min(composite_gmse_at, f, 0.4 * a0, 1.6 * a0, 2e-3 * a0, 200);
}

double qat_fmt_value_alpha(const qat_fmt *f) {
    if (f->val == QAT_VAL_NONE || !qat_fmt_traits_of(f)->alpha) return 0.0;
    if (f->sp == QAT_SP_NONE) return default_alpha(f);
    /* key: the format without noise() so noise(sp50+int4) shares sp50+int4's α */
    qat_fmt core = *f;
    core.noise = 0;
    /* the sparsity by its canonical name: "sp%.6g" gave sp12.3456789 and
     * sp12.3456781 one key, so the second composite used the first one's α */
    char key[QAT_FMT_MAX];
    qat_fmt sp = qat_fmt_sparse_part(&core);
    qat_fmt_print(&sp, key, sizeof key);
    size_t kl = strlen(key);
    snprintf(key + kl, sizeof key - kl, "+%d/%d", (int)f->val, f->bits);
    pthread_mutex_lock(&alpha_lock);
    double out = -1;
    for (int i = 0; i < alpha_n; i++)
        if (!strcmp(alpha_cache[i].key, key)) out = alpha_cache[i].alpha;
    if (out < 0) {
        out = optimise_alpha(&core);
        if (alpha_n < 64) {
            snprintf(alpha_cache[alpha_n].key, sizeof alpha_cache[alpha_n].key, "%s", key);
            alpha_cache[alpha_n].alpha = out;
            alpha_n++;
        }
    }
    pthread_mutex_unlock(&alpha_lock);
    return out;
}

void qat_proj_setup(qat_proj *P, const qat_fmt *f) {
    memset(P, 0, sizeof *P);
    P->f = *f;
    P->alpha = qat_fmt_value_alpha(f);
    if (f->val == QAT_VAL_VQ) P->cb = qat_vq_get(f->vq_dim, f->bits);
    const qat_fmt_traits *t = qat_fmt_traits_of(f);
    if (t->setup) t->setup(P, f);
}

int qat_fmt_gmse_exact(const qat_fmt *f, double *g) {
    /* a composite has no closed form; a single stage has its row's, if any */
    if (f->sp != QAT_SP_NONE && f->val != QAT_VAL_NONE) return 0;
    const qat_fmt_traits *t = qat_fmt_traits_of(f);
    return t->gmse_exact ? t->gmse_exact(f, g) : 0;
}

void qat_fmt_gmse_parsed(const qat_fmt *f, int64_t samples, uint64_t seed, double *g, double *se) {
    /* noise(F) adds variance GMSE_F·RMS² by construction: its GMSE is F's */
    qat_fmt core = *f;
    core.noise = 0;
    if (qat_fmt_gmse_exact(&core, g)) {
        *se = 0.0;
        return;
    }
    if (!samples) samples = QAT_GMSE_DEFAULT_SAMPLES;
    if (!seed) seed = QAT_GMSE_DEFAULT_SEED;
    const qat_fmt_traits *t = qat_fmt_traits_of(&core);
    if (t->gmse_mc && core.sp == QAT_SP_NONE) {
        t->gmse_mc(&core, samples, seed, g, se);
        return;
    }
    qat_proj P;
    qat_proj_setup(&P, &core);
    /* vq's scale is the dense row RMS: take its infinite-row value 1, as the closed
     * forms of the scalar grids do (a measured RMS over 128 values makes the rows
     * slightly lighter-tailed and the GMSE ~1 % lower than the population value) */
    if (core.val == QAT_VAL_VQ) P.fixed_rms = 1.0;
    qat_proj_gmse_mc(&P, samples, seed, g, se);
}
