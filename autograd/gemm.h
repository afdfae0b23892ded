/*
 * autograd/gemm.h — every matrix product in qat goes through here, to oneDNN.
 *
 * One call shape covers the linear layers (2-D) and attention (batched over
 * (B, H)): C = op(A)·op(B) (+ C). Transposes and head-interleaved layouts are
 * expressed as strides, so no operand is ever copied into a packed layout by us;
 * oneDNN reads the strides directly. A primitive is built once per distinct
 * shape/stride signature and cached; later calls only swap data pointers, which
 * keeps the steady-state training step free of allocation and primitive creation.
 */
#ifndef QAT_AUTOGRAD_GEMM_H
#define QAT_AUTOGRAD_GEMM_H

#include <stdint.h>

/* A batched product over up to two batch dimensions (b0, b1):
 *   C[i,j](M,N) = A[i,j](M,K) · B[i,j](K,N)  (+ C[i,j] when accumulate)
 * Every operand is addressed as base + i·s0 + j·s1 + row·rs + col·cs (floats),
 * so a transposed operand just swaps rs and cs. */
typedef struct {
    int64_t b0, b1, M, N, K;          /* batch sizes (1 when unused) and matrix sizes */
    int64_t a_s0, a_s1, a_rs, a_cs;   /* A strides: batch0, batch1, row (over M), col (over K) */
    int64_t b_s0, b_s1, b_rs, b_cs;   /* B strides: batch0, batch1, row (over K), col (over N) */
    int64_t c_s0, c_s1, c_rs, c_cs;   /* C strides: batch0, batch1, row (over M), col (over N) */
    int accumulate;                   /* 1: C += A·B (oneDNN sum post-op); 0: C = A·B */
    float alpha;                      /* scales the product (0 is taken as 1) */
} qat_gemm_desc;

/* Run a product described by d on the given buffers. */
void qat_gemm_run(const qat_gemm_desc *d, const float *A, const float *B, float *C);

/* The plain 2-D case, BLAS-style with row-major leading dimensions:
 *   C(M,N) = op(A)·op(B) (+ C)   with op(A) = A (M,K) or Aᵀ for A (K,M) when ta,
 *                                 op(B) = B (K,N) or Bᵀ for B (N,K) when tb. */
void qat_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K,
              const float *A, int64_t lda, const float *B, int64_t ldb,
              float *C, int64_t ldc, int accumulate);

/* Number of cached primitives (for tests of the cache) and release of all. */
int qat_gemm_cache_size(void);
void qat_gemm_shutdown(void);

#endif
