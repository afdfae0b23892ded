/*
 * autograd/rope_kernels.h — the rotary embedding (HF rotate-half) of one head row,
 * forward and backward: the one formula behind qat_rope (ops_attention.c) and the
 * bf16 attention's fused rotation (attention_bf16.h), so both give the same bits.
 *
 * A head row of hd values is split in halves (x1, x2) of hd/2; co and si are the
 * row's hd/2 cosines and sines (rope_table in ops_attention.c):
 *     forward   o1 = x1·cos − x2·sin,   o2 = x2·cos + x1·sin
 *     backward  d1 = g1·cos + g2·sin,   d2 = g2·cos − g1·sin   (the transpose)
 */
#ifndef QAT_AUTOGRAD_ROPE_KERNELS_H
#define QAT_AUTOGRAD_ROPE_KERNELS_H

#include <stdint.h>

static inline void qat_rope_half_fwd(float *restrict o1, float *restrict o2, const float *restrict x1,
                                     const float *restrict x2, const float *restrict co, const float *restrict si,
                                     int64_t half) {
#pragma omp simd
    for (int64_t j = 0; j < half; j++) {
        o1[j] = x1[j] * co[j] - x2[j] * si[j];
        o2[j] = x2[j] * co[j] + x1[j] * si[j];
    }
}

/* first: store (the first writer of these gradient columns); else accumulate */
static inline void qat_rope_half_back(float *restrict d1, float *restrict d2, const float *restrict g1,
                                      const float *restrict g2, const float *restrict co, const float *restrict si,
                                      int64_t half, int first) {
    if (first) {
#pragma omp simd
        for (int64_t j = 0; j < half; j++) {
            d1[j] = g1[j] * co[j] + g2[j] * si[j];
            d2[j] = g2[j] * co[j] - g1[j] * si[j];
        }
    } else {
#pragma omp simd
        for (int64_t j = 0; j < half; j++) {
            d1[j] += g1[j] * co[j] + g2[j] * si[j];
            d2[j] += g2[j] * co[j] - g1[j] * si[j];
        }
    }
}

#endif
