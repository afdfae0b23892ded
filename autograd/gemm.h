/*
 * autograd/gemm.h — every matrix product in qat goes through here, to oneDNN.
 *
 * One call shape covers the linear layers (2-D) and attention (batched over
 * (B, H)): C = op(A)·op(B) (+ C). Transposes and head-interleaved layouts are
 * expressed as strides, and oneDNN reads the strides directly (a weight matrix
 * is reordered into its kernel's layout first: qat_gemm_set_packing below). A
 * primitive is built once per distinct shape/stride signature and cached; later
 * calls only swap data pointers, which keeps the steady-state training step free
 * of allocation and primitive creation.
 *
 * train.precision: bf16 (docs/config.md) runs the linear layers' products on
 * bf16 operands with f32 accumulation and an f32 result: the caller converts A
 * and B once (qat_to_bf16) and sets desc.bf16. Everything around the products
 * (master weights, optimizer, quantizers, norms, softmax) stays f32.
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
    int bf16;                         /* 1: A and B are bf16 (uint16_t) arrays; C stays f32 */
} qat_gemm_desc;

/* Run a product described by d on the given buffers (A, B float or, with d->bf16, uint16_t). */
void qat_gemm_run(const qat_gemm_desc *d, const void *A, const void *B, float *C);

/* The 2-D product of qat_gemm on bf16 operands (f32 accumulation, f32 C). */
void qat_gemm_bf16(int ta, int tb, int64_t M, int64_t N, int64_t K,
                   const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb,
                   float *C, int64_t ldc, int accumulate);

/* dst[i] = src[i] rounded to bf16 (round to nearest even), n values, in parallel. */
void qat_to_bf16(const float *src, uint16_t *dst, int64_t n);

/* 1 when oneDNN runs bf16 products natively on this CPU (effective ISA includes
 * avx512_core_bf16); writes the ISA name to isa (may be NULL). */
int qat_gemm_bf16_supported(const char **isa);

/* The plain 2-D case, BLAS-style with row-major leading dimensions:
 *   C(M,N) = op(A)·op(B) (+ C)   with op(A) = A (M,K) or Aᵀ for A (K,M) when ta,
 *                                 op(B) = B (K,N) or Bᵀ for B (N,K) when tb. */
void qat_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K,
              const float *A, int64_t lda, const float *B, int64_t ldb,
              float *C, int64_t ldc, int accumulate);

/* Either of the two above (bf16 selects), with the product scaled by alpha
 * (oneDNN's output scale, applied before accumulation): C = alpha·op(A)·op(B) (+ C). */
void qat_gemm_scaled(int bf16, int ta, int tb, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                     const void *B, int64_t ldb, float *C, int64_t ldc, int accumulate, float alpha);

/* Number of cached primitives (for tests of the cache) and release of all. */
int qat_gemm_cache_size(void);
void qat_gemm_shutdown(void);

/* B packing (autograd/gemm.c): B is reordered into the layout oneDNN's kernel
 * reads, once per call, instead of the kernel repacking it block by block; same
 * bits. Mode 0 never packs; 1 (the default) packs every 2-D bf16 product and an
 * f32 one with N <= M/4 (a weight matrix against the token rows); 2 packs every
 * 2-D product. The environment variable QAT_GEMM_PACK=0, 1 or 2 sets the mode
 * at start-up, for timing the choice (bench/README.md; another value warns and
 * keeps 1). Setting the mode drops the cache. qat_gemm_cache_packed: cached
 * primitives that pack. */
void qat_gemm_set_packing(int mode);
int qat_gemm_cache_packed(void);
/* Row split (autograd/gemm.c): with n = 2..8 threads, a 2-D product whose M is a
 * multiple of 16n runs as n one-thread products on M/n rows each, one per thread,
 * instead of oneDNN's own partition of the whole: mode 1, the default. The forward
 * and dX products keep their bits; the weight gradients' (A transposed) take
 * oneDNN's one-thread kernel, another summation order. Mode 0 never splits.
 * QAT_GEMM_SPLIT=0 or 1 sets the mode at start-up. */
void qat_gemm_set_split(int mode);
int qat_gemm_cache_split(void); /* cached primitives that split */

#endif
