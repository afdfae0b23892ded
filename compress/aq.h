/*
 * compress/aq.h — learned additive codebooks (the aqMxBgG format, docs/formats.md).
 *
 * AQLM (Egiazarian et al. 2024) stores a weight as groups of G consecutive
 * inputs, each the sum of M codewords, one from each of M codebooks of K = 2^B
 * learned entries, times a per-output-row scale:
 *
 *     Ŵ[r, gG : gG+G] = s_r · Σ_m C_m[code(r, g, m)]
 *
 * This file holds what does not depend on the quantizer: fitting the books by
 * k-means (k-means++ seeding, fixed Lloyd passes; residual fitting for M > 1),
 * encoding vectors (nearest codeword for M = 1; beam search over the books for
 * M > 1, as AQLM's src/beam_search_l2.py), decoding, and the Gaussian MSE that
 * `qat capacity` reports. The codewords live in memory the caller owns (the
 * quantizer's trainable parameters), so the optimizer moves them in place; the
 * search layout of each book is refreshed from them before every encode.
 * Codes are kept as floats holding small integers (K <= 256): the checkpoint
 * stores float arrays, and every such integer is exact in a float.
 */
#ifndef QAT_COMPRESS_AQ_H
#define QAT_COMPRESS_AQ_H

#include <stdint.h>

#include "compress/vq.h"

#define QAT_AQ_MAX_BOOKS 4  /* M */
#define QAT_AQ_MAX_BITS 8   /* B: K = 2^B <= 256 codewords per book */
#define QAT_AQ_MAX_GROUP 32 /* G */
#define QAT_AQ_BEAM 8       /* beam of the init, the V step and the Gaussian MSE (AQLM's small beams) */
#define QAT_AQ_LLOYD 25     /* Lloyd passes per book at init */

typedef struct {
    int m, k, g;   /* books M, codewords per book K, group length G */
    float *cw;     /* (m, k, g) the codewords in row-scale units: the caller's memory */
    qat_vq_codebook book[QAT_AQ_MAX_BOOKS]; /* book i: cw view plus its own search layout */
} qat_aq_books;

/* Views over cw (not copied) with their search layout allocated. */
void qat_aq_books_init(qat_aq_books *b, int m, int bits, int g, float *cw);
void qat_aq_books_free(qat_aq_books *b);
/* Recompute the search layout after cw changed (optimizer step, fit). */
void qat_aq_books_refresh(qat_aq_books *b);

/* Fit the books to the n vectors x (n, g) and encode them into codes (n, m):
 * book 0 by k-means on x, book i on the residual left by books 0..i−1, each
 * with k-means++ seeding from the stream (seed) and QAT_AQ_LLOYD passes; for
 * M > 1 then two rounds of beam search (QAT_AQ_BEAM) and a centroid update of
 * each book given the others' codes. Returns the per-coordinate MSE. */
double qat_aq_fit(qat_aq_books *b, const float *x, int64_t n, uint64_t seed, float *codes);

/* Encode x (n, g) into codes (n, m), starting from the codes given (M > 1:
 * they are the first hypothesis, so the error never rises): M = 1 the nearest
 * codeword; M > 1 beam search of width `beam` that, book by book, replaces
 * one book's code in every hypothesis by every codeword and keeps the `beam`
 * best (1 at the last book). Rows are independent (OpenMP). */
void qat_aq_encode(const qat_aq_books *b, const float *x, int64_t n, float *codes, int beam);

/* The sum of the coded codewords (g floats) into out. */
static inline void qat_aq_decode(const qat_aq_books *b, const float *codes, float *out) {
    const int g = b->g;
    for (int t = 0; t < g; t++) out[t] = 0.0f;
    for (int i = 0; i < b->m; i++) {
        const float *c = b->cw + ((int64_t)i * b->k + (int64_t)codes[i]) * g;
        for (int t = 0; t < g; t++) out[t] += c[t];
    }
}

/* Gaussian MSE of aqMxBgG with unit row scale, a Monte Carlo: the books are
 * fitted by qat_aq_fit to fixed-seed N(0, I_g) samples (once per process per
 * format, thread-safe), and their error is measured on `samples` held-out
 * N(0, 1) values keyed by `seed` (a stream the fit never draws from), in
 * chunks of 32768 values; *se is the standard error across chunks (at least
 * two). The same for any thread count. */
void qat_aq_gmse_mc(int m, int bits, int g, int64_t samples, uint64_t seed, double *gmse, double *se);

#endif
