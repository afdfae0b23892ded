/*
 * compress/aq.c — aq.h: fitting, encoding and the Gaussian MSE of learned
 * additive codebooks.
 *
 * The k-means is vq.c's (k-means++ seeding then Lloyd passes whose centroid
 * sums run serially in sample order), so a fit is a pure function of the data
 * and the seed, whatever the thread count. The beam search follows the
 * description of AQLM's src/beam_search_l2.py (_beam_search_update_codes_groupwise):
 * codebook by codebook, every hypothesis may swap that book's code for any
 * codeword; the best `beam` of all swaps survive. Scores are ‖r‖² − 2⟨r, c⟩ + ‖c‖²
 * over the residual r the other books leave, vectorised over codewords.
 */
#include "compress/aq.h"
#include "compress/gmse.h"
#include "compress/vq_search.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"

void qat_aq_books_init(qat_aq_books *b, int m, int bits, int g, float *cw) {
    QAT_ASSERT(m >= 1 && m <= QAT_AQ_MAX_BOOKS && bits >= 1 && bits <= QAT_AQ_MAX_BITS && g >= 1 && g <= QAT_AQ_MAX_GROUP);
    memset(b, 0, sizeof *b);
    b->m = m;
    b->k = 1 << bits;
    b->g = g;
    b->cw = cw;
    for (int i = 0; i < m; i++) {
        qat_vq_codebook *c = &b->book[i];
        c->d = g;
        c->k = b->k;
        c->cw = cw + (int64_t)i * b->k * g;
        c->soa = qat_xaligned(sizeof(float) * (size_t)(b->k * g));
        c->norm2 = qat_xaligned(sizeof(float) * (size_t)b->k);
    }
    qat_aq_books_refresh(b);
}

void qat_aq_books_free(qat_aq_books *b) {
    for (int i = 0; i < b->m; i++) {
        free(b->book[i].soa);
        free(b->book[i].norm2);
    }
    memset(b, 0, sizeof *b);
}

void qat_aq_books_refresh(qat_aq_books *b) {
    for (int i = 0; i < b->m; i++) qat_vq_refresh(&b->book[i]);
}

/* Beam search for one vector v (see the top of the file); codes in/out. */
static void beam_one(const qat_aq_books *b, const float *v, float *codes, int beam) {
    const int M = b->m, K = b->k, g = b->g;
    int hc[QAT_AQ_BEAM][QAT_AQ_MAX_BOOKS], nc[QAT_AQ_BEAM][QAT_AQ_MAX_BOOKS];
    float sc[QAT_AQ_BEAM];
    int ch[QAT_AQ_BEAM], ck[QAT_AQ_BEAM];
    float r[QAT_AQ_MAX_GROUP], dist[1 << QAT_AQ_MAX_BITS];
    if (beam > QAT_AQ_BEAM) beam = QAT_AQ_BEAM;
    if (beam < 1) beam = 1;
    int nh = 1;
    for (int i = 0; i < M; i++) hc[0][i] = (int)codes[i];
    for (int i = 0; i < M; i++) {
        const int keep = i == M - 1 ? 1 : beam;
        const qat_vq_codebook *book = &b->book[i];
        int n = 0;
        for (int h = 0; h < nh; h++) {
            for (int t = 0; t < g; t++) r[t] = v[t];
            for (int j = 0; j < M; j++) {
                if (j == i) continue;
                const float *c = b->cw + ((int64_t)j * K + hc[h][j]) * g;
                for (int t = 0; t < g; t++) r[t] -= c[t];
            }
            float rn = 0;
            for (int t = 0; t < g; t++) rn += r[t] * r[t];
            for (int k = 0; k < K; k++) dist[k] = book->norm2[k];
            for (int t = 0; t < g; t++) {
                const float m2 = -2.0f * r[t];
                const float *row = book->soa + (int64_t)t * K;
                for (int k = 0; k < K; k++) dist[k] += m2 * row[k];
            }
            for (int k = 0; k < K; k++) {
                float s = rn + dist[k];
                if (n == keep && !(s < sc[n - 1])) continue;
                int p = n < keep ? n++ : keep - 1; /* the slot freed at the end */
                while (p > 0 && s < sc[p - 1]) { /* strict: an earlier candidate wins a tie */
                    sc[p] = sc[p - 1], ch[p] = ch[p - 1], ck[p] = ck[p - 1];
                    p--;
                }
                sc[p] = s, ch[p] = h, ck[p] = k;
            }
        }
        for (int c = 0; c < n; c++) {
            memcpy(nc[c], hc[ch[c]], sizeof nc[c]);
            nc[c][i] = ck[c];
        }
        memcpy(hc, nc, sizeof(int) * QAT_AQ_MAX_BOOKS * (size_t)n);
        nh = n;
    }
    for (int i = 0; i < M; i++) codes[i] = (float)hc[0][i];
}

void qat_aq_encode(const qat_aq_books *b, const float *x, int64_t n, float *codes, int beam) {
    const int M = b->m, g = b->g;
    if (M == 1) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) codes[i] = (float)qat_vq_nearest(&b->book[0], x + i * g);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) beam_one(b, x + i * g, codes + i * M, beam);
}

/* Per-coordinate MSE of codes for x. */
static double coded_mse(const qat_aq_books *b, const float *x, int64_t n, const float *codes) {
    const int g = b->g;
    double err = 0;
#pragma omp parallel for schedule(static) reduction(+ : err)
    for (int64_t i = 0; i < n; i++) {
        float y[QAT_AQ_MAX_GROUP];
        qat_aq_decode(b, codes + i * b->m, y);
        double e = 0;
        for (int t = 0; t < g; t++) {
            double d = (double)x[i * g + t] - y[t];
            e += d * d;
        }
        err += e;
    }
    return err / ((double)n * g);
}

/* Book i's codewords := the mean, over the vectors coded to each, of what the
 * other books leave (x minus their codewords); empty cells keep theirs. */
static void update_book(qat_aq_books *b, int i, const float *x, int64_t n, const float *codes, double *sums,
                        int64_t *counts) {
    const int M = b->m, K = b->k, g = b->g;
    memset(sums, 0, sizeof(double) * (size_t)(K * g));
    memset(counts, 0, sizeof(int64_t) * (size_t)K);
    for (int64_t v = 0; v < n; v++) {
        int k = (int)codes[v * M + i];
        counts[k]++;
        for (int t = 0; t < g; t++) {
            double s = x[v * g + t];
            for (int j = 0; j < M; j++)
                if (j != i) s -= b->cw[((int64_t)j * K + (int64_t)codes[v * M + j]) * g + t];
            sums[(int64_t)k * g + t] += s;
        }
    }
    for (int k = 0; k < K; k++)
        if (counts[k])
            for (int t = 0; t < g; t++) b->cw[((int64_t)i * K + k) * g + t] = (float)(sums[(int64_t)k * g + t] / counts[k]);
    qat_vq_refresh(&b->book[i]);
}

double qat_aq_fit(qat_aq_books *b, const float *x, int64_t n, uint64_t seed, float *codes) {
    const int M = b->m, K = b->k, g = b->g;
    float *res = qat_xmalloc(sizeof(float) * (size_t)(n * g));
    int *assign = qat_xmalloc(sizeof(int) * (size_t)n);
    double *d2 = qat_xmalloc(sizeof(double) * (size_t)n);
    double *sums = qat_xmalloc(sizeof(double) * (size_t)(K * g));
    int64_t *counts = qat_xmalloc(sizeof(int64_t) * (size_t)K);
    memcpy(res, x, sizeof(float) * (size_t)(n * g));
    for (int i = 0; i < M; i++) {
        qat_vq_codebook *c = &b->book[i];
        qat_rng rng = qat_rng_make(seed, 0xA0B00Cull + (uint64_t)i);
        qat_vq_kmeans_seed(c, res, n, &rng, d2);
        for (int it = 0; it < QAT_AQ_LLOYD; it++) qat_vq_lloyd_pass(c, res, n, assign, sums, counts);
        /* the codes of the final codebook, and the residual the next book fits */
#pragma omp parallel for schedule(static)
        for (int64_t v = 0; v < n; v++) {
            int k = qat_vq_nearest(c, res + v * g);
            codes[v * M + i] = (float)k;
            for (int t = 0; t < g; t++) res[v * g + t] -= c->cw[(int64_t)k * g + t];
        }
    }
    if (M > 1)
        for (int round = 0; round < 2; round++) {
            qat_aq_encode(b, x, n, codes, QAT_AQ_BEAM);
            for (int i = 0; i < M; i++) update_book(b, i, x, n, codes, sums, counts);
        }
    if (M > 1) qat_aq_encode(b, x, n, codes, QAT_AQ_BEAM); /* codes for the final books */
    double mse = coded_mse(b, x, n, codes);
    free(res), free(assign), free(d2), free(sums), free(counts);
    return mse;
}

/* ---- Gaussian MSE ------------------------------------------------------------ */

#define GMSE_SEED 0xA9C0DEB00Cull /* fixed: the books belong to the format */
#define GMSE_EVAL_TAG 0xE7A1ull  /* the evaluation draws' stream, never the fit's */
#define GMSE_CHUNK 32768         /* values per unit of the standard error, as gmse.c's tensors */

/* The books of aqMxBgG fitted to Gaussian data, once per process per format. */
static struct {
    int m, bits, g;
    float *cw; /* (m, 2^bits, g) */
} bcache[64];
static int bcache_n;
static pthread_mutex_t bcache_lock = PTHREAD_MUTEX_INITIALIZER;

/* Fit the books on a fixed-seed sample: ~256 samples per codeword keep the fit
 * within about a percent of its population error, and a 256-codeword book fits
 * in a second or two. The same books every time, so the format is one quantizer
 * and only its measurement depends on the Monte Carlo's samples and seed. */
static float *fit_books(int m, int bits, int g) {
    const int K = 1 << bits;
    int64_t n = (int64_t)K * 256;
    if (n < 16384) n = 16384;
    if (n > 65536) n = 65536;
    float *x = qat_xmalloc(sizeof(float) * (size_t)(n * g));
    const uint64_t key = qat_hash3(GMSE_SEED, (uint64_t)(m * 4096 + bits * 64 + g), 1);
    for (int64_t i = 0; i < n * g; i++) x[i] = (float)qat_normal_at(key, (uint64_t)i);
    float *cw = qat_xcalloc((size_t)(m * K * g), sizeof(float));
    float *codes = qat_xcalloc((size_t)(n * m), sizeof(float));
    qat_aq_books b;
    qat_aq_books_init(&b, m, bits, g, cw);
    qat_aq_fit(&b, x, n, key, codes);
    qat_aq_books_free(&b);
    free(x), free(codes);
    return cw;
}

static const float *cached_books(int m, int bits, int g) {
    pthread_mutex_lock(&bcache_lock);
    const float *cw = NULL;
    for (int i = 0; i < bcache_n && !cw; i++)
        if (bcache[i].m == m && bcache[i].bits == bits && bcache[i].g == g) cw = bcache[i].cw;
    if (!cw) {
        float *fit = fit_books(m, bits, g); /* under the lock: one fit per format per process */
        cw = fit;
        if (bcache_n < 64) /* past 64 formats in one process each fit is kept, uncached (never freed) */
            bcache[bcache_n].m = m, bcache[bcache_n].bits = bits, bcache[bcache_n].g = g, bcache[bcache_n++].cw = fit;
    }
    pthread_mutex_unlock(&bcache_lock);
    return cw;
}

void qat_aq_gmse_mc(int m, int bits, int g, int64_t samples, uint64_t seed, double *gmse, double *se) {
    const int K = 1 << bits;
    const float *fitted = cached_books(m, bits, g);
    /* a private copy: the books' search layout is built next to the codewords */
    float *cw = qat_xmalloc(sizeof(float) * (size_t)(m * K * g));
    memcpy(cw, fitted, sizeof(float) * (size_t)(m * K * g));
    qat_aq_books b;
    qat_aq_books_init(&b, m, bits, g, cw);
    /* held-out draws: the error of the fitted books on the fit's own sample is
     * below their population error (k-means fits its sample), and could fall
     * below the optimum of any quantizer with that many codewords */
    const int64_t vpc = GMSE_CHUNK / g > 0 ? GMSE_CHUNK / g : 1; /* vectors per chunk */
    int64_t nc = (samples + vpc * g - 1) / (vpc * g);
    if (nc < 2) nc = 2; /* a standard error needs two */
    double *mse = qat_xcalloc((size_t)nc, sizeof(double));
#pragma omp parallel
    {
        float *x = qat_xmalloc(sizeof(float) * (size_t)(vpc * g));
        float *codes = qat_xmalloc(sizeof(float) * (size_t)(vpc * m));
#pragma omp for schedule(static)
        for (int64_t c = 0; c < nc; c++) {
            const uint64_t key = qat_hash3(seed, (uint64_t)c, GMSE_EVAL_TAG);
            for (int64_t i = 0; i < vpc * g; i++) x[i] = (float)qat_normal_at(key, (uint64_t)i);
            memset(codes, 0, sizeof(float) * (size_t)(vpc * m));
            qat_aq_encode(&b, x, vpc, codes, QAT_AQ_BEAM); /* nested: runs on this thread */
            double err = 0;
            for (int64_t v = 0; v < vpc; v++) {
                float y[QAT_AQ_MAX_GROUP];
                qat_aq_decode(&b, codes + v * m, y);
                for (int t = 0; t < g; t++) {
                    double d = (double)x[v * g + t] - y[t];
                    err += d * d;
                }
            }
            mse[c] = err / (double)(vpc * g);
        }
        free(x), free(codes);
    }
    qat_mc_mean_se(mse, nc, gmse, se);
    free(mse);
    qat_aq_books_free(&b);
    free(cw);
}
