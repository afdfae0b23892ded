/*
 * compress/format.h — a docs/formats.md format string, parsed once into a plain struct.
 *
 * Everything downstream (projections, GMSE, capacity, the quantizer) switches on
 * this struct rather than on strings, so the grammar lives in exactly one place
 * (format.c) and a typo is rejected up front with the list of valid formats.
 *
 * A format is at most two stages: an optional sparsity stage (spNN or N:M) and an
 * optional value stage (intB, ternary, fp4, vqDxB), optionally wrapped in noise().
 * "fp32" has neither; "sp50+int4" has both.
 */
#ifndef QAT_COMPRESS_FORMAT_H
#define QAT_COMPRESS_FORMAT_H

#include <stdint.h>

#include "core/config.h"

typedef enum {
    QAT_VAL_NONE = 0, /* values kept exactly (fp32, or the survivors of pure sparsity) */
    QAT_VAL_INT,      /* QuEST centred uniform grid, 2^b levels, no zero level */
    QAT_VAL_TERNARY,  /* {-a, 0, a} */
    QAT_VAL_FP4,      /* E2M1 levels at the Gaussian-optimal scale */
    QAT_VAL_VQ        /* d-dim vectors on a Gaussian-optimal codebook */
} qat_val_kind;

typedef enum {
    QAT_SP_NONE = 0,   /* dense */
    QAT_SP_MAGNITUDE,  /* unstructured magnitude top-k (spNN) */
    QAT_SP_NM          /* N:M along the input dim */
} qat_sp_kind;

typedef struct {
    char name[QAT_FMT_MAX]; /* the canonical string as given ("sp50+int4") */
    int noise;              /* 1 for noise(F): the stages describe F, no rounding happens */
    qat_sp_kind sp;         /* sparsity stage */
    double sparsity;        /* spNN: fraction zeroed in (0, 1) */
    int nm_n, nm_m;         /* N:M: keep nm_n of every nm_m */
    qat_val_kind val;       /* value stage */
    int bits;               /* int: b in 1..8; vq: bits per dimension */
    int vq_dim;             /* vq: vector dimension d */
} qat_fmt;

/* Parse `s` into *f. QAT_EINPUT with a message listing the valid formats when
 * the string is not one of docs/formats.md. */
int qat_fmt_parse(const char *s, qat_fmt *f);

/* Human-readable list of the accepted formats (for error and help messages). */
const char *qat_fmt_valid_list(void);

/* 1 when the format leaves values untouched (fp32). */
static inline int qat_fmt_is_dense(const qat_fmt *f) {
    return !f->noise && f->sp == QAT_SP_NONE && f->val == QAT_VAL_NONE;
}

/* The format without its sparsity stage / without its value stage, as a struct
 * (used for the factorised capacity terms and for noise(F)'s variance). */
qat_fmt qat_fmt_value_part(const qat_fmt *f);
qat_fmt qat_fmt_sparse_part(const qat_fmt *f);

#endif
