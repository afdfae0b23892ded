/*
 * compress/format_table.h — the kinds of format, one row each (ggml-style traits).
 *
 * Everything that differs between kinds of format is a field or a hook of its row:
 * how its stage is spelled (parse, print), which modifiers it takes, its storage
 * bits (scales included), its Gaussian MSE (closed form, a Monte Carlo of its
 * own, or neither for the Monte Carlo through the projection), its default value scale, the valid and default
 * estimators, whether the automatic Hadamard rotation is on, its natural group
 * along the input dim, its capacity type, for block formats its row
 * projection and, for a kind with trainable state (aq), the estimator hooks
 * that run on it. format.c (grammar), gmse.c, capacity.c, estimator.c, quantizer.c and
 * the model's Hadamard choice ask the row; none of them names a kind. Adding a
 * format is a row in format_table.c plus its projection (docs/formats.md, "Adding
 * a format").
 */
#ifndef QAT_COMPRESS_FORMAT_TABLE_H
#define QAT_COMPRESS_FORMAT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "compress/capacity.h"
#include "compress/estimator.h"
#include "compress/format.h"

typedef enum {
    QAT_STAGE_SPARSE = 1, /* spNN, N:M: may precede "+" VALUE */
    QAT_STAGE_VALUE,      /* intB, ternary, fp4, vqDxB (and aqMxBgG alone): may follow SPARSE "+", may be noise()d */
    QAT_STAGE_BLOCK       /* block-scaled formats: stand alone, take modifiers */
} qat_fmt_stage;

struct qat_proj;     /* project.h */
struct qat_proj_seg; /* project.h */

typedef struct {
    const char *kind;   /* name of the kind in messages ("int", "mx", ...) */
    const char *syntax; /* its line of the grammar (qat_fmt_grammar) */
    qat_fmt_stage stage;
    qat_val_kind val;   /* the value kind it parses to (QAT_VAL_NONE for sparsity rows) */
    qat_sp_kind sp;     /* the sparsity kind it parses to (QAT_SP_NONE for value rows) */
    /* Parse the stage [p, p+len): 1 = this kind (f filled), 0 = not this kind,
     * -1 = this kind but malformed (*why says how). */
    int (*parse)(const char *p, size_t len, qat_fmt *f, const char **why);
    unsigned mods;      /* QAT_MOD_* it accepts */
    /* Checks the modifiers together once parsed (0, or 1 with *why); may turn
     * f into another kind (intB + @gG = intB@gG). NULL = nothing to check. */
    int (*check)(qat_fmt *f, const char **why);
    /* Canonical spelling of the stage (without modifiers) into buf. */
    void (*print)(const qat_fmt *f, char *buf, size_t n);
    /* Value rows: storage bits per value including per-block scales (value_bits
     * ignored). Sparse rows: bits per parameter when survivors cost value_bits. */
    double (*bits)(const qat_fmt *f, double value_bits);
    double tensor_bits;  /* bits stored once per tensor, outside the per-value count (nvfp4's FP32 scale) */
    /* 1 and *g when the kind has a closed-form GMSE for f; NULL or 0 = Monte Carlo. */
    int (*gmse_exact)(const qat_fmt *f, double *g);
    /* A Monte Carlo of the kind's own, for a kind whose projection alone is not
     * the format (aq: its books are fitted first, then measured on held-out
     * draws): `samples` values keyed by `seed`, *se its standard error. NULL =
     * the Monte Carlo through the projection (gmse.c). */
    void (*gmse_mc)(const qat_fmt *f, int64_t samples, uint64_t seed, double *g, double *se);
    /* Default value scale in RMS units (α*(b), ternary a, fp4 k); NULL = none. */
    double (*alpha)(const qat_fmt *f);
    int64_t mc_values;  /* values per Monte-Carlo tensor (0 = 256 rows × 128): per-tensor scales need a typical tensor */
    qat_cap_type cap;   /* capacity type of its term */
    unsigned est_class; /* QAT_ESTF_* class: the estimators valid for it (estimator.c) */
    qat_est default_est;/* its default estimator */
    int rotates;        /* 1: compress.*.hadamard = -1 (auto) rotates it; 0: auto leaves it unrotated */
    /* Natural group along the input dim (N:M's M, vq's D); NULL = 1. The input
     * dim need not be a multiple of a block format's block (partial last block). */
    int (*group)(const qat_fmt *f);
    const char *frontier; /* formats of this kind the frontier prices besides the fitted ones, space-separated */
    /* Projection settings beyond qat_proj_setup's defaults: block formats set
     * P->row (their row projection), P->blk and P->tensor_stats. NULL = none. */
    void (*setup)(struct qat_proj *P, const qat_fmt *f);
    /* Kinds with learned state of their own (aq's codebooks): the hooks that run
     * estimator e on them in place of estimator.c's row; NULL = that row. */
    const qat_est_hooks *(*est_hooks)(qat_est e);
} qat_fmt_traits;

/* The row of f's value stage, else of its sparsity stage, else fp32's. */
const qat_fmt_traits *qat_fmt_traits_of(const qat_fmt *f);
/* The row of f's sparsity stage (NULL when dense). */
const qat_fmt_traits *qat_fmt_sparse_traits(const qat_fmt *f);

/* The whole table (for the grammar, the help and tests): *n rows. */
const qat_fmt_traits *qat_fmt_table(int *n);

/* Estimator class and default estimator of a whole format (noise() and composites included). */
unsigned qat_fmt_est_class(const qat_fmt *f);
qat_est qat_fmt_default_est(const qat_fmt *f);

/* Natural group of a whole format (the larger of its stages'). */
int qat_fmt_group(const qat_fmt *f);

/* Why a format cannot be one side of a product, or NULL when it can: `@2d` tiles a
 * weight matrix and `aqMxBgG` learns a weight tensor's codebooks, so neither is an
 * activation format (noise(aq…) only draws noise and goes anywhere). The one rule
 * behind the trainer's quantizer (compress/quantizer.c) and a fit CSV's act_format
 * column (scaling/csv.c). The phrase completes "format 'F': …". */
const char *qat_fmt_side_refusal(const qat_fmt *f, int is_weight);

/* The formats the frontier prices besides those in the data (every row's
 * `frontier`, table order): *n of them, static storage. */
const char *const *qat_fmt_frontier_candidates(int *n);

/* A non-negative decimal integer of at most 6 digits occupying exactly [p, end) into
 * *out: 1, or 0 when [p, end) is empty, too long or not all digits. The one number
 * reader of the grammar (stages and modifiers). */
int qat_fmt_parse_uint(const char *p, const char *end, int *out);

/* Bits per parameter of a parsed format and the per-tensor bits beside them. */
double qat_fmt_bits_parsed(const qat_fmt *f, double *tensor_bits);

#endif
