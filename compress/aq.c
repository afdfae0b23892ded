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

#define GMSE_SEED 0xA9C0DEB00Cull /* fixed: the number belongs to the format */

static struct {
    int m, bits, g;
    double gmse;
} gcache[64];
static int gcache_n;
static pthread_mutex_t gcache_lock = PTHREAD_MUTEX_INITIALIZER;

static double measure_gmse(int m, int bits, int g) {
    const int K = 1 << bits;
    /* ~256 samples per codeword: the fit is within about a percent of its
     * population error, and a 256-codeword book fits in a second or two */
    int64_t n = (int64_t)K * 256;
    if (n < 16384) n = 16384;
    if (n > 65536) n = 65536;
    const int64_t nt = 32768; /* fresh samples the error is measured on */
    float *x = qat_xmalloc(sizeof(float) * (size_t)(n * g));
    float *xt = qat_xmalloc(sizeof(float) * (size_t)(nt * g));
    const uint64_t key = qat_hash3(GMSE_SEED, (uint64_t)(m * 4096 + bits * 64 + g), 1);
    const uint64_t tkey = qat_hash3(GMSE_SEED, (uint64_t)(m * 4096 + bits * 64 + g), 2);
    for (int64_t i = 0; i < n * g; i++) x[i] = (float)qat_normal_at(key, (uint64_t)i);
    for (int64_t i = 0; i < nt * g; i++) xt[i] = (float)qat_normal_at(tkey, (uint64_t)i);
    float *cw = qat_xcalloc((size_t)(m * K * g), sizeof(float));
    float *codes = qat_xcalloc((size_t)(n * m), sizeof(float));
    float *tcodes = qat_xcalloc((size_t)(nt * m), sizeof(float));
    qat_aq_books b;
    qat_aq_books_init(&b, m, bits, g, cw);
    qat_aq_fit(&b, x, n, key, codes);
    qat_aq_encode(&b, xt, nt, tcodes, QAT_AQ_BEAM);
    double mse = coded_mse(&b, xt, nt, tcodes);
    qat_aq_books_free(&b);
    free(x), free(xt), free(cw), free(codes), free(tcodes);
    return mse;
}

double qat_aq_gmse(int m, int bits, int g) {
    pthread_mutex_lock(&gcache_lock);
    for (int i = 0; i < gcache_n; i++)
        if (gcache[i].m == m && gcache[i].bits == bits && gcache[i].g == g) {
            double v = gcache[i].gmse;
            pthread_mutex_unlock(&gcache_lock);
            return v;
        }
    double v = measure_gmse(m, bits, g); /* under the lock: one fit per format per process */
    if (gcache_n < 64) gcache[gcache_n].m = m, gcache[gcache_n].bits = bits, gcache[gcache_n].g = g,
                       gcache[gcache_n++].gmse = v;
    pthread_mutex_unlock(&gcache_lock);
    return v;
}
