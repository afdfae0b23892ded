/*
 * compress/format.h — a docs/formats.md format string, parsed once into a plain struct.
 *
 * Everything downstream (projections, GMSE, capacity, the quantizer, the model's
 * Hadamard choice) switches on this struct, and what differs between kinds of
 * format lives in one table (format_table.h: parse, print, bits, GMSE, projection,
 * estimators, default Hadamard, capacity type), so the grammar and the vocabulary
 * live in exactly one place and a typo is rejected up front with the grammar.
 *
 * A format is at most two stages: an optional sparsity stage (spNN or N:M) and an
 * optional value stage (intB, ternary, fp4, vqDxB, aqMxBgG), optionally wrapped in noise(),
 * or one block-scaled format (mxfp4, nvfp4, intB@gG, ...), followed by modifiers
 * "@MOD". "fp32" has neither; "sp50+int4" has both.
 */
#ifndef QAT_COMPRESS_FORMAT_H
#define QAT_COMPRESS_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "compress/blockfmt.h"
#include "core/config.h"

typedef enum {
    QAT_VAL_NONE = 0, /* values kept exactly (fp32, or the survivors of pure sparsity) */
    QAT_VAL_INT,      /* QuEST centred uniform grid, 2^b levels, no zero level */
    QAT_VAL_TERNARY,  /* {-a, 0, a} */
    QAT_VAL_FP4,      /* E2M1 levels at the Gaussian-optimal scale */
    QAT_VAL_VQ,       /* d-dim vectors on a Gaussian-optimal codebook */
    QAT_VAL_AQ,       /* aqMxBgG: G-dim groups on M learned additive codebooks (weights only) */
    /* block-scaled formats (one scale per block of the input dim; not composable) */
    QAT_VAL_MX,       /* OCP MX: minifloat elements, E8M0 scale per 32 */
    QAT_VAL_NVFP4,    /* E2M1 in blocks of 16, E4M3 block scale, FP32 tensor scale */
    QAT_VAL_INTG,     /* intB@gG: symmetric absmax int with a bf16 scale per group of G */
    QAT_VAL_COUNT     /* number of value kinds */
} qat_val_kind;

typedef enum {
    QAT_SP_NONE = 0,   /* dense */
    QAT_SP_MAGNITUDE,  /* unstructured magnitude top-k (spNN) */
    QAT_SP_NM,         /* N:M along the input dim */
    QAT_SP_COUNT       /* number of sparsity kinds */
} qat_sp_kind;

/* Modifiers "@MOD" (docs/formats.md "Format strings"), as bits of qat_fmt.mods
 * and of a kind's accepted set; listed in canonical order. */
enum {
    QAT_MOD_G = 1u << 0,    /* @gG: scale group of G along the input dim (turns intB into intB@gG) */
    QAT_MOD_CLIP = 1u << 1, /* @clip: MSE-optimal clip on the group's RMS (intB@gG) */
    QAT_MOD_46 = 1u << 2,   /* @46: four-over-six block scale choice (nvfp4) */
    QAT_MOD_2D = 1u << 3,   /* @2d: 16×16 weight blocks (nvfp4, weights only) */
    QAT_MOD_SR = 1u << 4,   /* @sr: stochastic rounding (unbiased below the top element; not MX maxima above 6X) */
    QAT_MOD_H = 1u << 5,    /* @hB: the Hadamard block applied before blocking */
};

typedef struct {
    char name[QAT_FMT_MAX]; /* the canonical spelling (qat_fmt_print), modifiers in canonical order ("sp50+int4", "nvfp4@46@2d") */
    int noise;              /* 1 for noise(F): the stages describe F, no rounding happens */
    qat_sp_kind sp;         /* sparsity stage */
    double sparsity;        /* spNN: fraction zeroed in (0, 1) */
    int nm_n, nm_m;         /* N:M: keep nm_n of every nm_m */
    qat_val_kind val;       /* value stage */
    int bits;               /* int, intB@gG: b in 1..8; vq: bits per dimension; block minifloats: element bits */
    int vq_dim;             /* vq: vector dimension d; aq: group length G */
    int aq_books;           /* aq: number of additive codebooks M (bits = log2 of each book's size) */
    qat_el_kind elem;       /* mx: element encoding (blockfmt.h) */
    int block;              /* block formats: elements per scale along the input dim (32, 16, G) */
    unsigned mods;          /* QAT_MOD_* present */
    int had;                /* @hB: the Hadamard block B (0 = no @h) */
} qat_fmt;

/* Parse `s` into *f. QAT_EINPUT with a message naming the problem and giving the
 * grammar when the string is not one of docs/formats.md. */
int qat_fmt_parse(const char *s, qat_fmt *f);

/* Human-readable list of the accepted formats (for error and help messages). */
const char *qat_fmt_valid_list(void);

/* The grammar of format strings, several lines (for `qat capacity --help`). */
const char *qat_fmt_grammar(void);

/* The canonical spelling of f into buf (n bytes); returns buf. */
char *qat_fmt_print(const qat_fmt *f, char *buf, size_t n);

/* 1 when the format leaves values untouched (fp32). */
static inline int qat_fmt_is_dense(const qat_fmt *f) {
    return !f->noise && f->sp == QAT_SP_NONE && f->val == QAT_VAL_NONE;
}

/* 1 for the block-scaled kinds (mx*, nvfp4, intB@gG). */
static inline int qat_fmt_is_block(const qat_fmt *f) { return f->val >= QAT_VAL_MX; }

/* One side's (format, hadamard) in canonical form: the canonical name, with a
 * block format's hadamard: B folded into its @hB and a hadamard that repeats
 * @hB turned into -1 (auto), so equal settings compare equal as text (resume).
 * *hadamard_out is the remaining hadamard setting. QAT_EINPUT when the format
 * does not parse. */
int qat_fmt_canonical_side(const char *format, int hadamard, char *out, size_t n, int *hadamard_out);

/* The format without its sparsity stage / without its value stage, as a struct
 * (used for the factorised capacity terms and for noise(F)'s variance). */
qat_fmt qat_fmt_value_part(const qat_fmt *f);
qat_fmt qat_fmt_sparse_part(const qat_fmt *f);

/* The Hadamard block one side of a product uses over `cols` inputs (0 = none),
 * from the side's compress.*.hadamard `configured` (-1 = auto) and the format:
 * auto is the format kind's default (min(128, largest power of two dividing
 * cols) for rounding grids, none for fp32, pure sparsity and the hardware block
 * formats) or its @hB. An explicit setting that contradicts @hB is QAT_EINPUT. */
int qat_fmt_hadamard(const qat_fmt *f, int configured, int64_t cols, int *block);

#endif
