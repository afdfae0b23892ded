/*
 * compress/gradq.h — the operands of the backward products, quantized
 * (compress.gradients.*, docs/formats.md "The backward pass").
 *
 * For a block linear y = x̂·Ŵᵀ the backward computes dX̂ = dY·Ŵ and dŴ = dYᵀ·x̂.
 * With a gradients format each product multiplies two operands quantized along its
 * INNER dimension, the dimension the GEMM sums over, because that is where a
 * low-precision GEMM shares its scales:
 *
 *     dX̂ (M,K) = Q(dY along N) · Q(Ŵ along N)        inner dim N (out features)
 *     dŴ (N,K) = Q(dY along M)ᵀ · Q(x̂ along M)       inner dim M (tokens)
 *
 * so dY is quantized twice (per token row, and along the token dimension), Ŵ along
 * its columns and x̂ along its columns. Each operand keeps its own (rows, cols)
 * row-major layout; "along rows" means each row is a vector of the inner dim,
 * "along columns" each column is. One pass per operand: a block of inner-dim
 * vectors is loaded (transposed when they are columns), optionally rotated,
 * quantized in groups and stored (as f32, or rounded to bf16 for a bf16 product).
 *
 * Rotation: with `hadamard` = B, both operands of a product are multiplied by
 * D·H along the inner dim (D random signs keyed by (seed, step, product), H the
 * block-diagonal orthonormal Walsh–Hadamard matrix), so (A·D·H)(Hᵀ·D·B) = A·B and
 * nothing needs undoing after the product.
 *
 * Block formats (mxfp4, mxfp6, mxfp8, nvfp4) round through compress/blockfmt.h. MX
 * follows Quartet's range matching: the E8M0 scale X comes from the block's absmax,
 * the elements rounded are ¾·x/X (so none exceeds the element maximum and sr stays
 * unbiased) and the product is multiplied by 16/9. NVFP4 keeps blockfmt's rule (its
 * sr margin 17/16) with the per-tensor scale taken from the operand's absmax.
 *
 * Rounding: rtn (nearest level) or sr (stochastic: E[q(x)] = x). The uniform of
 * element i of an operand is a counter hash of (key, i), i its index in the
 * operand with the inner dim fastest, and key = hash(seed, layer, step, operand):
 * the same bits whatever the thread count or schedule, so `--resume` is bit-exact.
 */
#ifndef QAT_COMPRESS_GRADQ_H
#define QAT_COMPRESS_GRADQ_H

#include <stdint.h>

#include "compress/blockfmt.h"
#include "compress/project.h"
#include "core/config.h"

/* Scale group along the inner dim of the scalar grids (int, ternary, fp4). */
#define QAT_GRADQ_GROUP 32
/* Largest Hadamard block of the backward (the rotation works on blocks in a 32 KB tile). */
#define QAT_GRADQ_MAX_HADAMARD 1024

/* The scalar grids of the backward (docs/formats.md "The backward pass", Grids), each
 * with the group's absmax a as its outermost level. */
typedef enum {
    QAT_GQ_INT = 0, /* intB, B >= 2, and ternary: the symmetric integer grid with zero, k·a/L, |k| <= L */
    QAT_GQ_SIGN,    /* int1: ±a (one bit has no zero level) */
    QAT_GQ_FP4      /* fp4: the E2M1 magnitudes × a/6 */
} qat_gradq_grid;

typedef enum {
    QAT_GQ_OFF = 0, /* fp32: the backward is unchanged */
    QAT_GQ_GRID,    /* a scalar grid of docs/formats.md, absmax scale per group of 32 */
    QAT_GQ_BLOCK    /* a block-scaled hardware format (mxfp4, mxfp8, nvfp4) */
} qat_gradq_kind;

typedef struct qat_gradq {
    char name[QAT_FMT_MAX]; /* compress.gradients.format as given */
    qat_gradq_kind kind;    /* off, grid or block */
    qat_proj P;             /* grid fp4: the format's projection with an absmax scale (its rtn goes through it) */
    qat_gradq_grid grid;    /* grid: which one */
    int L;                  /* grid QAT_GQ_INT: the largest code, levels k·a/L for |k| <= L
                               (intB: 2^(B−1) − 1, so int2 = ternary = {−a, 0, a}, int8 = ±127) */
    qat_blk blk;            /* block: the hardware format (compress/blockfmt.h), stochastic = sr */
    int group;              /* elements per scale along the inner dim */
    int sr;                 /* 1: stochastic rounding; 0: round to nearest */
    int hadamard;           /* rotation block along the inner dim; 0 = off */
    float prescale;         /* operands are rounded as prescale·x and read back as x (range
                               matching of the block formats, 3/4; 1 for the grids) */
} qat_gradq;

/* Parse compress.gradients.* into g. "fp32" gives kind QAT_GQ_OFF. A format that
 * cannot quantize a backward operand (sparsity, vq, noise) or an unknown name is
 * QAT_EINPUT naming the key and the accepted formats. */
int qat_gradq_init(qat_gradq *g, const qat_compress_grad *c);

/* 1 when the backward is quantized. */
static inline int qat_gradq_on(const qat_gradq *g) { return g && g->kind != QAT_GQ_OFF; }

/* QAT_EINPUT unless the Hadamard block divides an inner dim of `inner` elements
 * (what = the dimension's name for the message). */
int qat_gradq_check_inner(const qat_gradq *g, int64_t inner, const char *what);

enum { QAT_GQ_ALONG_ROWS = 0, QAT_GQ_ALONG_COLS = 1 };

/* One operand to quantize: exactly one of x/xb and one of y/yb is set. */
typedef struct {
    const float *x;       /* source (rows, cols) f32, or NULL */
    const uint16_t *xb;   /* source as bf16, or NULL */
    float *y;             /* destination (rows, cols) f32, or NULL */
    uint16_t *yb;         /* destination rounded to bf16, or NULL */
    int64_t rows, cols;   /* the operand's shape (row-major) */
    int along;            /* QAT_GQ_ALONG_ROWS: the inner dim is cols; ALONG_COLS: it is rows */
    uint64_t key;         /* stochastic-rounding key of this operand */
    uint64_t sign_key;    /* Hadamard sign key of the product (same for both operands) */
} qat_gradq_op;

/* Quantize one operand (OpenMP over blocks of inner-dim vectors, static schedule). */
void qat_gradq_run(const qat_gradq *g, const qat_gradq_op *op);

/* The factor a product of two quantized operands is multiplied by: 1/prescale². */
static inline float qat_gradq_product_scale(const qat_gradq *g) { return 1.0f / (g->prescale * g->prescale); }

/* The keys of operand `which` (1..4: dY rows, Ŵ, dY columns, x̂) and of the two
 * products' sign flips (5: dX̂, 6: dŴ) of the linear keyed by `layer_key` at `step`. */
uint64_t qat_gradq_key(uint64_t layer_key, int64_t step, int which);

/* A one-line description for logs: "int4 sr h32", "fp32". */
void qat_gradq_describe(const qat_gradq *g, char *buf, int n);

/* The accepted formats, for messages. */
const char *qat_gradq_valid_list(void);

#endif
