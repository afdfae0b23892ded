/*
 * autograd/rope_kernels.h — the rotary embedding (HF rotate-half) of one head row,
 * forward and backward: the one formula behind qat_rope (ops_rope.c) and the
 * attention's fused rotation (ops_attention.c, attention_bf16.h), so both give the
 * same bits; and the rotated attention's entry point, which ops_rope.c calls.
 *
 * A head row of hd values is split in halves (x1, x2) of hd/2; co and si are the
 * row's hd/2 cosines and sines (rope_table in ops_rope.c):
 *     forward   o1 = x1·cos − x2·sin,   o2 = x2·cos + x1·sin
 *     backward  d1 = g1·cos + g2·sin,   d2 = g2·cos − g1·sin   (the transpose)
 */
#ifndef QAT_AUTOGRAD_ROPE_KERNELS_H
#define QAT_AUTOGRAD_ROPE_KERNELS_H

#include <stdint.h>

#include "ops.h"

/* Attention (ops_attention.c) on q and k rotated as each head is loaded, dq and dk
 * rotated back as they are stored. cs: the (T, hd/2) cos then (T, hd/2) sin table of
 * rope_table (ops_rope.c), kept alive by the tape. q, k, v: (B·T, C) column blocks;
 * returns (B·T, C). */
qat_tensor *qat_attention_rot(qat_tape *tp, qat_cols q, qat_cols k, qat_cols v, int64_t B, int64_t T, int heads,
                              const float *cs);

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
