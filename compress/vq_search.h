/*
 * compress/vq_search.h — the nearest-codeword search of vq.h's codebooks, inline
 * for the quantizer's inner loops (project.c, aq.c, vq.c's k-means).
 *
 * Apart from vq.h because it needs <immintrin.h>, whose AVX-512 part alone takes
 * ~0.35 s to parse: vq.h is included (through project.h and aq.h) by a third of
 * qat's files, and that parse was paid in each, ~7 s of a clean build's CPU.
 */
#ifndef QAT_COMPRESS_VQ_SEARCH_H
#define QAT_COMPRESS_VQ_SEARCH_H

#include <math.h>
#include <stdint.h>

#include "compress/vq.h"
#include "core/cpu.h"
#if QAT_CPU_X86
#include <immintrin.h>
#endif

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
