/*
 * compress/vq.h — Gaussian-optimal vector-quantization codebooks (vqDxB).
 *
 * A vqDxB weight row is rotated, divided by its RMS and cut into d-dim vectors,
 * each replaced by the nearest of K = 2^(d·b) codewords fitted to N(0, I_d). The
 * codebook is a fixed part of the format (zero storage per tensor), built once
 * per process by deterministic Lloyd/k-means (LBG splitting) on samples from a
 * fixed seed and cached, so every quantizer and `qat capacity` share it.
 */
#ifndef QAT_COMPRESS_VQ_H
#define QAT_COMPRESS_VQ_H

#include <math.h>
#include <stdint.h>

#include "core/cpu.h"
#include "core/rng.h"
#if QAT_CPU_X86
#include <immintrin.h>
#endif

typedef struct {
    int d;          /* vector dimension */
    int k;          /* number of codewords, 2^(d·b) */
    float *cw;      /* (k, d) codewords for unit-variance coordinates */
    float *soa;     /* (d, k) the same, transposed so the search vectorises over codewords */
    float *norm2;   /* (k) squared norms ‖c_j‖² */
    double radius;  /* default trust radius in RMS units: max‖c‖ + half the median nearest-neighbour gap */
    double fit_mse; /* per-coordinate MSE on the training samples (for diagnostics) */
} qat_vq_codebook;

/* The cached codebook for (d, bits); built on first use (thread-safe). d·bits <= 8. */
const qat_vq_codebook *qat_vq_get(int d, int bits);

/* The building blocks, shared with the learned codebooks of aq.h. */
/* Recompute soa and norm2 from cw (after cw changed). */
void qat_vq_refresh(qat_vq_codebook *cb);
/* One Lloyd pass over the n samples x (n, d): assign each to its nearest
 * codeword (into assign), then move every non-empty cell's codeword to its
 * mean (sums (k, d) and counts (k) are scratch), summed serially in sample
 * order so the codebook does not depend on the thread count. Returns the
 * per-coordinate MSE of the assignment. */
double qat_vq_lloyd_pass(qat_vq_codebook *cb, const float *x, int64_t n, int *assign, double *sums, int64_t *counts);
/* k-means++ seeding of all cb->k codewords from the samples x (n, d), drawing
 * from rng; d2 is (n) scratch. */
void qat_vq_kmeans_seed(qat_vq_codebook *cb, const float *x, int64_t n, qat_rng *rng, double *d2);

/* Index of the codeword nearest to v (d floats, already in RMS units); ties go
 * to the lower index. The AVX-512 path keeps 16 running minima in registers, which
 * is what makes k-means and the VQ forward fast enough; results are identical in
 * the choice rule (first minimum), possibly not in the last bit of the distance. */
#if QAT_CPU_X86
/* The AVX-512 search for k >= 16 (a multiple of 16), compiled by target attribute
 * and taken when the CPU has AVX-512 (core/cpu.h). */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))) static inline int
qat_vq_nearest_avx512(const qat_vq_codebook *cb, const float *v) {
    const int k = cb->k, d = cb->d;
    __m512 best = _mm512_set1_ps(INFINITY);
    __m512i bidx = _mm512_setzero_si512();
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i sixteen = _mm512_set1_epi32(16);
    for (int j = 0; j < k; j += 16) {
        __m512 acc = _mm512_loadu_ps(cb->norm2 + j);
        for (int t = 0; t < d; t++)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(-2.0f * v[t]), _mm512_loadu_ps(cb->soa + (int64_t)t * k + j), acc);
        __mmask16 lt = _mm512_cmp_ps_mask(acc, best, _CMP_LT_OQ);
        best = _mm512_mask_blend_ps(lt, best, acc);
        bidx = _mm512_mask_blend_epi32(lt, bidx, idx);
        idx = _mm512_add_epi32(idx, sixteen);
    }
    float m = _mm512_reduce_min_ps(best);
    __mmask16 eq = _mm512_cmp_ps_mask(best, _mm512_set1_ps(m), _CMP_EQ_OQ);
    /* lowest index among the lanes holding the minimum */
    __m512i cand = _mm512_mask_blend_epi32(eq, _mm512_set1_epi32(0x7FFFFFFF), bidx);
    return _mm512_reduce_min_epi32(cand);
}
#endif

static inline int qat_vq_nearest(const qat_vq_codebook *cb, const float *v) {
    const int k = cb->k, d = cb->d;
#if QAT_CPU_X86
    if (k >= 16 && qat_cpu_avx512()) return qat_vq_nearest_avx512(cb, v);
#endif
    float dist[256];
    for (int j = 0; j < k; j++) dist[j] = cb->norm2[j];
    for (int t = 0; t < d; t++) {
        const float vt = -2.0f * v[t];
        const float *row = cb->soa + (int64_t)t * k;
        for (int j = 0; j < k; j++) dist[j] += vt * row[j];
    }
    int bi = 0;
    float bd = dist[0];
    for (int j = 1; j < k; j++)
        if (dist[j] < bd) { bd = dist[j]; bi = j; }
    return bi;
}

#endif
