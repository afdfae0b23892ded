/*
 * compress/sparse.h — magnitude selection for the sparsity formats.
 *
 * Top-k thresholds are found by radix selection on the bit patterns of |x|
 * (non-negative floats order like their bits), so a per-tensor threshold needs no
 * copy of the tensor, no sort, and gives the same answer for any thread count.
 */
#ifndef QAT_COMPRESS_SPARSE_H
#define QAT_COMPRESS_SPARSE_H

#include <stdint.h>

/* How many of n elements survive sparsity s (fraction zeroed): n − round(s·n). */
int64_t qat_sparse_keep_count(double s, int64_t n);

/* The k-th largest |x[i]| (1 <= k <= n); +inf for k <= 0. Exact. `parallel`
 * lets it spread the counting over OpenMP threads (use 0 inside a parallel region). */
float qat_sparse_kth_abs(const float *x, int64_t n, int64_t k, int parallel);

/* The keep rule for a threshold from qat_sparse_kth_abs: |x| >= thr, except that a
 * zero threshold keeps only non-zeros (so a tensor of zeros is not "all kept").
 * Ties at thr are all kept; with continuous values they have probability zero. */
static inline int qat_sparse_keeps(float ax, float thr) { return thr > 0.0f ? ax >= thr : ax > 0.0f; }

/* N:M on one row of n elements (n a multiple of m): keep[i] = 1 for the nn largest
 * |x| of each group of m consecutive elements (ties go to the lower index). */
void qat_sparse_nm_row(const float *x, uint8_t *keep, int64_t n, int nn, int m);

#endif
