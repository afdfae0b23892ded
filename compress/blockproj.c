/*
 * compress/blockproj.c — the block-scaled formats (mx*, nvfp4, intB@gG) as
 * projections of the quantizer and the Monte Carlo: the adapter between project.h
 * (rows, segments, masks, the stochastic-rounding key) and blockfmt.h (the
 * numerics, h-mx's). Also the two generalised entry points every caller of a
 * projection uses, so the quantizer and gmse.c never ask which kind they hold.
 *
 * Segments: NVFP4's fp32 tensor scale comes from the absmax of the segment — per
 * original tensor for weights (q, k, v of a fused [q; k; v] are three), the whole
 * (tokens, in) tensor for activations — and 2-D blocks take their 16×16 tile scales
 * from the same pre-pass. Everything else in a block format is row-local. The
 * stochastic-rounding counter of an element is its index in the tensor, so a row's
 * result does not depend on the thread that projects it.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "compress/project.h"
#include "core/error.h"

/* max|x| of n values with blockfmt's NaN/inf rule, in chunks so it can run in
 * parallel; max is order-free, so the result does not depend on the team. */
static float seg_absmax(const float *x, int64_t n, int parallel) {
    enum { CHUNK = 1 << 16 };
    int64_t nc = (n + CHUNK - 1) / CHUNK;
    if (!parallel || nc < 2) return qat_blk_absmax(x, n);
    float m = 0.0f;
    int nan = 0;
#pragma omp parallel for schedule(static) reduction(max : m) reduction(| : nan)
    for (int64_t c = 0; c < nc; c++) {
        int64_t len = c + 1 < nc ? CHUNK : n - c * CHUNK;
        float a = qat_blk_absmax(x + c * CHUNK, len);
        if (isnan(a)) nan = 1;
        else m = a > m ? a : m;
    }
    return nan ? NAN : m;
}

void qat_proj_segment_stats_2d(const qat_proj *P, const float *x, int64_t rows, int64_t cols, float *tiles,
                               uint64_t index0, qat_proj_seg *seg, int parallel) {
    if (!P->row) {
        qat_proj_segment_stats(P, x, rows * cols, seg, parallel);
        seg->tensor_scale = 1.0f;
        seg->tiles = NULL;
        seg->index0 = index0;
        return;
    }
    memset(seg, 0, sizeof *seg);
    seg->index0 = index0;
    seg->tensor_scale = 1.0f;
    if (!P->tensor_stats || rows * cols == 0) return;
    seg->tensor_scale = qat_blk_tensor_scale(&P->blk, seg_absmax(x, rows * cols, parallel));
    if (P->f.mods & QAT_MOD_2D) {
        QAT_ASSERT(tiles);
        qat_nvfp4_scales_2d(x, rows, cols, cols, seg->tensor_scale, tiles);
        seg->tiles = tiles;
    }
}

void qat_proj_row_at(const qat_proj *P, float *v, int64_t n, const qat_proj_seg *seg, uint8_t *mask, int64_t row) {
    if (P->row) P->row(P, v, n, seg, mask, row);
    else qat_proj_row(P, v, n, seg, mask);
}

void qat_blkproj_row(const qat_proj *P, float *v, int64_t n, const qat_proj_seg *seg, uint8_t *mask, int64_t row) {
    qat_blk B = P->blk;
    /* trust is relative to the block's own element scale (T in scale units) */
    B.trust = P->mask == QAT_MASK_TRUST && P->mask_t > 0 ? (float)P->mask_t : 0.0f;
    qat_blk_io io;
    memset(&io, 0, sizeof io);
    io.tensor_scale = seg->tensor_scale;
    if (seg->tiles) io.scales = seg->tiles + (row / 16) * ((n + 15) / 16);
    io.key = P->sr_key;
    io.index0 = seg->index0 + (uint64_t)row * (uint64_t)n;
    io.mask = P->mask == QAT_MASK_TRUST ? mask : NULL;
    io.no_sse = 1; /* the error sum is not read here: skip its in-order chain */
    qat_blk_row(&B, v, n, &io);
}
