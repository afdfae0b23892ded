/*
 * compress/blockfmt.h — the numerics of the block-scaled hardware formats:
 * OCP MX (MXFP4/6/8), NVFP4 (with four-over-six and 16×16 2-D weight blocks) and
 * group-scaled symmetric INT (`intB@gG`, absmax or MSE-clipped).
 *
 * Pure functions, no allocation, no global state. The element minifloats (ExMy per
 * the OCP Microscaling Formats spec v1.0, its element data types) and their rounding are in the first
 * half; the block scale rules and the row projection the quantizer calls are in the
 * second. Everything is row-parallel: the only statistic that crosses rows is the
 * NVFP4 tensor scale (and the 2-D block scales), which the caller computes first with
 * the tensor-level helpers and then hands to every row. Stochastic rounding draws its
 * uniform for element i from a counter hash of (key, index0 + i), so a result does not
 * depend on the thread count or the order rows are visited.
 *
 * Units: "scale units" means units of the block's own element scale (the factor the
 * element grid is multiplied by: X for MX, s_b·s_t for NVFP4, s for INT). Rows are in
 * the rotated domain already (a Hadamard rotation is the caller's job). All values are
 * float (fp32) in and out; the scales are exactly the stored ones (E8M0, E4M3, fp32,
 * bf16), every rounding (scale and element) is decided on the exact quotient the
 * definition names, and the decode is rounded to fp32 once, so the output is what the
 * hardware format decodes to, correctly rounded.
 *
 * docs/formats.md ("Block-scaled formats") states the rules, sources and worked
 * examples; docs/reference-numbers.md has the published GMSE anchors these reproduce.
 */
#ifndef QAT_COMPRESS_BLOCKFMT_H
#define QAT_COMPRESS_BLOCKFMT_H

#include <stdint.h>

#include "core/rng.h"

/* ---------------------------------------------------------------- elements --- */

/* The element minifloats of OCP MX v1.0 (and E4M3 as the NVFP4 block scale). */
typedef enum {
    QAT_EL_E2M1 = 0, /* FP4: ±{0, .5, 1, 1.5, 2, 3, 4, 6}; no inf/NaN */
    QAT_EL_E2M3,     /* FP6: max 7.5; no inf/NaN */
    QAT_EL_E3M2,     /* FP6: max 28; no inf/NaN */
    QAT_EL_E4M3,     /* FP8 (OCP "fn"): max 448, no inf, S.1111.111 = NaN */
    QAT_EL_E5M2,     /* FP8: max 57344, IEEE-like ±inf and NaN */
    QAT_EL_COUNT
} qat_el_kind;

typedef struct {
    const char *name;  /* "e2m1", "e2m3", "e3m2", "e4m3", "e5m2" */
    int ebits, mbits;  /* exponent and mantissa field widths */
    int bias;          /* exponent bias: 1, 1, 3, 7, 15 */
    int emax;          /* exponent of the largest normal binade (OCP "emax_elem"): 2, 2, 4, 8, 15 */
    int emin;          /* exponent of the smallest normal binade, 1 − bias */
    float max;         /* largest finite magnitude: 6, 7.5, 28, 448, 57344 */
    float min_normal;  /* 2^emin */
    float min_sub;     /* smallest subnormal, 2^(emin − mbits) */
    float trust;       /* default mask T in scale units: half the largest gap of the grid
                          (1, 0.25, 2, 16, 4096) */
    int has_inf;       /* 1 for E5M2 only */
    int has_nan;       /* 1 for E4M3 and E5M2 */
} qat_minifloat;

/* The descriptor of kind k (static storage; k must be < QAT_EL_COUNT). */
const qat_minifloat *qat_minifloat_get(qat_el_kind k);

/* Round x onto the grid of f, to nearest with ties to even (on the mantissa bit),
 * subnormals kept, saturating: |x| > max (including ±inf) → ±max. NaN → NaN.
 * −0 stays −0. The result is the decoded value (exact in float). */
float qat_minifloat_rne(const qat_minifloat *f, float x);

/* Stochastic rounding: with a ≤ x < b the neighbouring grid points, returns b with
 * probability (x − a)/(b − a), else a, drawn by the uniform u ∈ [0, 1) (b iff
 * u < (x−a)/(b−a)); grid points map to themselves, so E[q(x)] = x on [−max, max].
 * Outside the grid it saturates to ±max (biased there, as in hardware). NaN → NaN. */
float qat_minifloat_sr(const qat_minifloat *f, float x, double u);

/* The uniform for stochastic rounding of element `index` under `key`: the index-th
 * output of a splitmix64 stream seeded by key (one hash per element, counter-based).
 * Callers make key from (seed, step, tensor) with qat_hash3 and pass a global
 * element index (e.g. row·cols + col) so rows are independent of the schedule.
 * qat_blk_row draws the same stream and keeps its top 24 bits (a float uniform). */
static inline double qat_blk_u01(uint64_t key, uint64_t index) {
    return qat_u64_to_unit(qat_hash64(key + index * 0x9E3779B97F4A7C15ull));
}

/* ------------------------------------------------------------ scale rules --- */

/* MX (OCP MX v1.0, the FP32-to-MX conversion): the shared E8M0 scale exponent of a block with absolute
 * maximum amax: floor(log2 amax) − el->emax, clamped to E8M0's [−127, 127].
 * amax = 0 (or an fp32 subnormal below 2^(−127+emax)) → −127 (all elements then
 * round to 0 or tiny values: X = 2^−127). Returns INT32_MIN when amax is NaN or ±inf:
 * the block's scale is the E8M0 NaN and every element of the block decodes to NaN
 * (an E8M0 NaN scale decodes its whole block as NaN; microxcaling's shared exponent
 * becomes NaN for a NaN or infinite amax in the same way). */
int qat_mx_scale_exp(float amax, const qat_minifloat *el);

/* NVFP4 per-tensor fp32 scale s_t = amax_tensor/(448·6) (NVIDIA arXiv 2509.25149).
 * amax = 0 → 1 (every block is zero anyway); NaN or ±inf → NaN (the whole tensor
 * becomes NaN, visibly). Four-over-six uses amax/(256·6) instead, so that its
 * scale-to-4 block scale (at most 256·6/4 = 384) never saturates E4M3, as Quartet
 * II's kernels do; qat_blk_tensor_scale picks the right one for a format. */
float qat_nvfp4_tensor_scale(float amax_tensor);

/* NVFP4 block scale as stored: E4M3_RNE(amax_block/(target·s_t)) of the exact ratio
 * (computed in double: one rounding, where fp32 (amax/target)/s_t took two), subnormals kept,
 * saturating at 448 (reachable only with target 4: four-over-six). target is 6 (the
 * standard rule) or 4 (four-over-six's alternative). A result of 0 means the block's
 * elements all become 0. NaN in → NaN. The element scale is the product with s_t. */
float qat_nvfp4_block_scale(float amax_block, float s_t, float target);

/* Group-scaled INT, absmax: s = bf16_RNE(amax/(2^(bits−1)−1)), bits ∈ [2, 8], one
 * rounding of the exact quotient, saturating at the largest finite bf16 0x1.fep127
 * (reached only with L = 1, int2). (qat_blk_row with stochastic rounding takes the next
 * bf16 up when this one is below amax/L, so that no element is clamped and E[q] = x
 * holds for the maximum too.) amax = 0 → 0 (the group is all zeros); NaN/inf → NaN.
 * Stored as bf16, so the returned float is exactly a bf16 value. Elements then round
 * to k = RNE(x/s) of the exact quotient, clamped to ±(2^(bits−1)−1) (s may be a little
 * below amax/L after the bf16 rounding), and decode to k·s with x's sign. */
float qat_int_group_scale(float amax, int bits);

/* The Gaussian-MSE-optimal clip c/RMS of the symmetric (2^bits − 1)-level grid
 * {k·c/L}, L = 2^(bits−1)−1, for bits 2..8 (index bits; 0 and 1 unused). Computed by
 * golden section on the exact grid GMSE (the computation is in minifloat.c's comment,
 * and the test recomputes it). Not QuEST's QAT_INT_ALPHA: that is the 2^b-level grid. */
extern const double QAT_INT_SYM_ALPHA[9];

/* Group-scaled INT with the MSE clip: s = bf16_RNE(QAT_INT_SYM_ALPHA[bits]·rms/L),
 * rms the group's root mean square (qat_blk_row computes it in double), the product in
 * double, one rounding, saturating at 0x1.fep127. rms = 0 → 0; NaN/inf → NaN. */
float qat_int_clip_scale(float rms, int bits);

/* -------------------------------------------------------- block formats --- */

typedef enum {
    QAT_BLK_MX = 0, /* OCP MX: E8M0 scale per 32, elements `el` */
    QAT_BLK_NVFP4,  /* E2M1 elements, E4M3 scale per 16, fp32 tensor scale */
    QAT_BLK_INT     /* symmetric int `bits`, bf16 scale per `block` */
} qat_blk_kind;

typedef struct {
    qat_blk_kind kind; /* the scale rule */
    qat_el_kind el;    /* MX element format (NVFP4: E2M1, set by qat_blk_nvfp4; INT: unused) */
    int block;         /* elements per block along the row: MX 32, NVFP4 16, INT G */
    int bits;          /* INT: B in [2, 8] (MX/NVFP4: element bits, informational) */
    int int_clip;      /* INT: 1 = MSE-optimal clip on the group RMS instead of absmax */
    int four_over_six; /* NVFP4: per block also try scaling amax to 4, keep the lower SSE of
                          the two round-to-nearest results at the decoder's element scales
                          (scale_mul included, so 17/16 with stochastic rounding; ties: 6);
                          with stochastic rounding the chosen scale is then rounded
                          stochastically */
    int stochastic;    /* 1: stochastic element rounding (scales are always RNE) */
    float trust;       /* backward mask T in scale units; <= 0: the default (el->trust,
                          0.5 for INT: half the integer step) */
    float scale_mul;   /* MX and NVFP4: multiplies every element scale after the stored
                          scales are computed (NVFP4: folded into the fp32 tensor scale,
                          free in hardware; MX: makes X a non-power of two, for studies
                          only). <= 0: the default, 1, except NVFP4 with stochastic
                          rounding: 17/16, so that no element saturates after the E4M3
                          block scale rounds down (Quartet II's margin; keeps E[q] = x).
                          Quartet II's "scale_override" s maps to 17/16·s for NVFP4 and
                          to 4/3·s for MXFP4 (their 2^floor(log2 amax)/3·s). INT ignores it. */
} qat_blk;

/* Constructors with the spec defaults. */
qat_blk qat_blk_mx(qat_el_kind el);                 /* block 32 */
qat_blk qat_blk_nvfp4(int four_over_six);           /* block 16 */
qat_blk qat_blk_int(int bits, int group, int clip); /* group G along the row */

/* 0 when B is usable by qat_blk_row (block in [1, 256]; INT bits in [2, 8]; a known
 * element format; NVFP4 elements E2M1), else qat_fail(QAT_EINPUT, ...) naming the
 * field. Validate once, when parsing; qat_blk_row only asserts. */
int qat_blk_check(const qat_blk *B);

/* Bits per element including every block scale, not the per-tensor one:
 * MX 32·b+8 per 32 → mxfp4 4.25, mxfp6 6.25, mxfp8 8.25; NVFP4 4 + 8/16 = 4.5;
 * INT B + 16/G (int4@g32 4.5, int4@g128 4.125). */
double qat_blk_bits(const qat_blk *B);
/* Bits stored once per tensor (NVFP4's fp32 s_t: 32; otherwise 0). */
int qat_blk_tensor_bits(const qat_blk *B);
/* The mask threshold T actually used (resolves trust <= 0 to the default). */
float qat_blk_trust(const qat_blk *B);
/* The element-scale multiplier actually used (resolves scale_mul <= 0). */
float qat_blk_scale_mul(const qat_blk *B);

/* The tensor scale a row of format B needs in qat_blk_io.tensor_scale, from the
 * tensor's absmax: NVFP4 amax/(448·6), with four-over-six amax/(256·6) (zero and
 * non-finite amax as qat_nvfp4_tensor_scale); MX and INT: 1 (unused). This is the
 * scale the E4M3 block codes are computed against; the fp32 value a decoder
 * multiplies by is it times qat_blk_scale_mul(B). */
float qat_blk_tensor_scale(const qat_blk *B, float amax_tensor);

/* Per-call inputs and optional outputs of qat_blk_row. Zero-initialise and fill
 * what applies. */
typedef struct {
    float tensor_scale;  /* NVFP4: s_t from qat_blk_tensor_scale (required; ignored otherwise) */
    const float *scales; /* NULL, or this row's precomputed stored block scales, one per
                            block of the row (2-D NVFP4: the row's block-row from
                            qat_nvfp4_scales_2d); overrides the row's own scale rule and
                            four-over-six. Same units as scale_out. */
    uint64_t key;        /* stochastic rounding key (see qat_blk_u01) */
    uint64_t index0;     /* stochastic rounding counter of v[0] */
    uint8_t *mask;       /* NULL, or n bytes: mask[i] = |q_i − x_i| <= T·s_block(i), s_block
                            the element scale of i's block (0 in NaN blocks) */
    float *scale_out;    /* NULL, or ceil(n/block) floats: the stored scale of each block
                            (MX: 2^e, or NaN; NVFP4: the E4M3 value, without s_t; INT: s) */
    int no_sse;          /* 1: the caller ignores the return value; qat_blk_row returns 0
                            (NaN for a NaN block) and skips the in-order error sum;
                            the projection itself is unchanged bit for bit */
} qat_blk_io;

/* Project one row of n elements in place onto format B, in blocks of B->block
 * consecutive elements starting at v[0]; a final partial block (n % block) gets its
 * own scale from its own elements. Writes io->mask and io->scale_out when given.
 * Returns the sum of squared errors Σ(q_i − x_i)² over the row (in double; NaN when a
 * block is NaN). n >= 0; v may contain NaN/inf (see the scale rules above). */
double qat_blk_row(const qat_blk *B, float *v, int64_t n, const qat_blk_io *io);
/* (Asserts — aborts on — a block size outside [1, 256], INT bits outside [2, 8], and an
 * NVFP4 tensor_scale <= 0: the caller forgot qat_blk_tensor_scale.) */

/* ---------------------------------------------------------- tensor level --- */

/* max |x_i| over n values; NaN if any is NaN, +inf if any is ±inf. */
float qat_blk_absmax(const float *x, int64_t n);

/* 2-D NVFP4 block scales for a (rows, cols) matrix w with leading dimension ld:
 * tiles of 16 rows × 16 cols share one stored E4M3 scale E4M3(amax_tile/(6·s_t));
 * partial tiles at the bottom/right edges get their own. Writes
 * ceil(rows/16)·ceil(cols/16) floats row-major into sb; row r then uses
 * sb + (r/16)·ceil(cols/16) as qat_blk_io.scales. */
void qat_nvfp4_scales_2d(const float *w, int64_t rows, int64_t cols, int64_t ld, float s_t, float *sb);

/* Monte-Carlo relative MSE of format B, measured the way Quartet II measures it
 * (notebooks/unbiasedness.ipynb): x is a (rows, cols) matrix of N(0,1) values from
 * qat_normal_at(seed, i); with row_scale_log2 > 0, row r is multiplied by
 * 2^(row_scale_log2·r/(rows−1)) (their "row-scaled" data uses rows of 128 and 8, i.e.
 * scales 1..256); with hadamard > 0 each row is rotated by the orthonormal
 * Hadamard of that block (compress/hadamard.h) before quantization (the error is
 * measured in the rotated domain: the rotation is orthonormal). The tensor scale
 * comes from the whole matrix's absmax; 2-D NVFP4 (square = 1) takes 16×16 tiles.
 * Returns the mean over rows of Σ(q−x)²/Σx² and its standard error in *se (may be
 * NULL). Effective bits are −log2(result)/2. Allocates rows·cols floats; OpenMP
 * over rows, the same result for any thread count. Returns NaN on allocation
 * failure (with qat_fail). */
double qat_blk_mc_relmse(const qat_blk *B, int64_t rows, int64_t cols, uint64_t seed, double row_scale_log2,
                         int hadamard, int square, double *se);

#endif
