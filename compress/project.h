/*
 * compress/project.h — the forward projection of one row onto a format.
 *
 * This is the single implementation of "what a format does to a tensor": the
 * training quantizer (quantizer.c) and the Monte-Carlo GMSE (gmse.c) both call
 * qat_proj_row, so the capacity numbers describe exactly the forward used in
 * training. The same pass also writes the estimator's backward mask, because the
 * mask needs x and q(x) side by side and a second pass would double the traffic.
 *
 * Rows are in the rotated domain already (Hadamard is the caller's job). Scales
 * are per scale unit: the whole row, or `group` consecutive elements.
 */
#ifndef QAT_COMPRESS_PROJECT_H
#define QAT_COMPRESS_PROJECT_H

#include <stdint.h>

#include "compress/format.h"
#include "compress/vq.h"

typedef enum {
    QAT_MASK_NONE = 0, /* no mask (ste, pv, fp32): every element passes */
    QAT_MASK_TRUST,    /* |q − x| <= T·RMS (scalar grids); ‖x_v‖ <= R·RMS per vector (vq) */
    QAT_MASK_CLIP,     /* |x| <= c·s (s = clip level) and kept */
    QAT_MASK_KEPT,     /* kept by the sparsity stage (the "masked" sparse backward) */
    QAT_MASK_RBBM      /* |x| < min(T_p, T_k) or |x| > max(T_p, T_k) */
} qat_mask_kind;

struct qat_proj_seg; /* below */

typedef struct qat_proj {
    qat_fmt f;                 /* the format (noise() is handled by the quantizer, not here) */
    double alpha;              /* value-stage scale in RMS units: int clip α, ternary a, fp4 k */
    int absmax;                /* scale rule absmax: outermost level = max|x| of the unit */
    int64_t group;             /* scale unit length; 0 = the whole row */
    int per_row_sparse;        /* spNN: top-k per row instead of the segment threshold */
    const qat_vq_codebook *cb; /* vq codebook (NULL otherwise) */
    qat_mask_kind mask;        /* which backward mask the pass writes */
    double mask_t;             /* trust: T in RMS units (<= 0: half the grid step / vq radius); clip: c */
    double rbbm_z;             /* rbbm: Φ⁻¹(0.5 + p), so T_p = RMS·rbbm_z */
    double fixed_rms;          /* > 0: use this RMS instead of measuring it (the infinite-row
                                  limit, for the Monte-Carlo GMSE of vq) */
    int reference;             /* 1: skip the single-precision fast paths (tests compare the two) */
    /* block formats (format_table.h rows with a `row` hook) */
    void (*row)(const struct qat_proj *P, float *v, int64_t n, const struct qat_proj_seg *seg, uint8_t *mask,
                int64_t row);          /* the kind's row projection; NULL = qat_proj_row */
    int tensor_stats;          /* 1: the segment statistics must see the whole segment first */
    qat_blk blk;               /* the block format's numerics (blockfmt.h) */
    uint64_t sr_key;           /* stochastic rounding key of this forward (seed, step) */
} qat_proj;

typedef struct qat_proj_seg {
    float thr;  /* spNN per-tensor threshold T_k (keep |x| >= thr) */
    double rms; /* RMS of the segment (rbbm's T_p) */
    float tensor_scale;  /* nvfp4: the segment's fp32 scale s_t (from its absmax) */
    const float *tiles;  /* nvfp4@2d: the segment's 16×16 tile scales, ceil(rows/16)·ceil(cols/16) */
    uint64_t index0;     /* stochastic rounding counter of the segment's first element in the tensor */
} qat_proj_seg;

/* qat_proj_setup (fill P with a format's default scales) is in gmse.h: the survivors'
 * α of composites is a Monte Carlo through qat_proj_row, so it sits one floor above. */

/* Per-segment statistics over n contiguous elements (the rows of one segment):
 * only spNN per-tensor needs them. `parallel`: may use OpenMP. */
void qat_proj_segment_stats(const qat_proj *P, const float *x, int64_t n, qat_proj_seg *seg, int parallel);

/* Project one row of n elements in place; writes the backward mask (0/1) into
 * mask[0..n) — always pass a buffer: it is also the keep scratch of sparse formats. */
void qat_proj_row(const qat_proj *P, float *v, int64_t n, const qat_proj_seg *seg, uint8_t *mask);

/* The generalisations every caller of a projection uses (blockproj.c; they
 * reduce to the two functions above for the scalar formats):
 * statistics of one segment of `rows` rows × `cols` (block formats need the shape;
 * 2-D tiles are written to `tiles`, ceil(rows/16)·ceil(cols/16) floats, NULL
 * otherwise), starting at element `index0` of the tensor; and the projection of
 * row `row` of that segment. */
void qat_proj_segment_stats_2d(const qat_proj *P, const float *x, int64_t rows, int64_t cols, float *tiles,
                               uint64_t index0, qat_proj_seg *seg, int parallel);
void qat_proj_row_at(const qat_proj *P, float *v, int64_t n, const qat_proj_seg *seg, uint8_t *mask, int64_t row);

/* The block formats' row projection (the `row` hook of their format_table.c rows). */
void qat_blkproj_row(const qat_proj *P, float *v, int64_t n, const qat_proj_seg *seg, uint8_t *mask, int64_t row);

#endif
