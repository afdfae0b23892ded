/*
 * compress/hadamard.h — block-diagonal orthonormal Walsh–Hadamard rotation.
 *
 * QuEST rotates every operand along its input dim with H = blockdiag(H_B, ...),
 * H_B the Sylvester Hadamard matrix scaled by 1/sqrt(B): orthonormal and
 * symmetric, so H·H = I and (xH)(WH)ᵀ = xWᵀ. The rotation Gaussianises rows
 * (outliers spread over the block), which is what makes RMS-scaled grids and the
 * Gaussian capacity numbers apply. Applied in place with the fast transform,
 * O(n log B) per row.
 */
#ifndef QAT_COMPRESS_HADAMARD_H
#define QAT_COMPRESS_HADAMARD_H

#include <stdint.h>
#include <string.h>

/* Resolve compress.*.hadamard for an operand with `cols` columns: -1 (auto) gives
 * min(128, largest power of two dividing cols); 0 gives 0 (off); otherwise the
 * value, which must be a power of two >= 2 dividing cols (else QAT_EINPUT). */
int qat_hadamard_block(int config_value, int64_t cols, int *block);

/* x ← x·H on one row of n elements (n a multiple of block), in place. */
void qat_hadamard_row(float *x, int64_t n, int block);

/* dst = the rotation of src, one row of n (dst and src distinct or equal): the
 * same numbers as a copy followed by qat_hadamard_row, in one pass over memory. */
void qat_hadamard_row_copy(const float *src, float *dst, int64_t n, int block);

/* g where keep != 0, +0 where keep == 0: the masked backward's select, written on
 * the bits so that compilers load g with plain loads. Written as keep ? g : 0 it
 * becomes a load masked by keep, which waits for keep: on rows coming cold from
 * a product such loads went out one after another, 2.8× slower per element. */
static inline float qat_kept_or_zero(float g, uint8_t keep) {
    uint32_t b;
    memcpy(&b, &g, sizeof b);
    b &= 0u - (uint32_t)(keep != 0);
    memcpy(&g, &b, sizeof g);
    return g;
}

/* The masked backward on one row: dst = (keep ⊙ src)·H, or dst += it when `add`
 * is set; keep[i] != 0 passes src[i], 0 passes +0 (keep NULL passes all). The same numbers as selecting
 * into a row, rotating it and then storing or adding, in one pass over memory.
 * `scratch` (n floats) is used only for blocks outside 16..1024. */
void qat_hadamard_row_masked(const float *src, const uint8_t *keep, float *dst, int64_t n, int block, int add,
                             float *scratch);

/* x ← x·H on every row of a (rows, cols) matrix, OpenMP over rows. */
void qat_hadamard_rows(float *x, int64_t rows, int64_t cols, int block);

#endif
