/*
 * compress/quantizer_impl.h — the inside of a qat_quantizer, shared by the files
 * that implement it (quantizer.c orchestration, quantizer_rows.c the row passes,
 * estimator_mask.c, estimator_lsq.c and estimator_pv.c the hooks of the estimator
 * table). Calls run one way: quantizer.c → estimator table (estimator.c) →
 * estimator hooks → quantizer_rows.c.
 * Nothing outside compress/ includes this: the linear op only sees quantizer.h.
 */
#ifndef QAT_COMPRESS_QUANTIZER_IMPL_H
#define QAT_COMPRESS_QUANTIZER_IMPL_H

#include <stdint.h>

#include "compress/estimator.h"
#include "compress/format.h"
#include "compress/project.h"
#include "core/config.h"

typedef struct qat_quantizer qat_quantizer; /* quantizer.h (not included: no cycle) */

struct qat_quantizer {
    qat_compress_side side; /* the config it was made from */
    int is_weight;          /* weights (out, in) or activations (tokens, in) */
    int64_t max_rows, cols; /* operand bound and width */
    int segments;           /* equal row blocks for per-tensor statistics */
    uint64_t seed;          /* keys noise() draws */
    qat_fmt fmt;            /* parsed format */
    qat_est est;            /* backward rule in effect */
    const qat_est_hooks *hooks; /* its row of the estimator table */
    int block;              /* Hadamard block (0 = off) */
    int identity;           /* fp32 without Hadamard: forward copies, backward adds */
    qat_proj proj;          /* projection settings (alpha, mask rule, groups) */
    double noise_sd;        /* noise(F): sqrt(GMSE_F), noise sd in RMS units */
    int use_mask;           /* backward multiplies by mask */
    uint8_t *mask;          /* (max_rows, cols) backward mask / keep scratch */
    int64_t last_rows;      /* rows of the last forward */
    int nthreads;           /* OpenMP team size the scratch was sized for */
    float *rowbuf;          /* (nthreads, cols) backward scratch */
    qat_proj_seg row_seg;   /* the statistics-free segment of a row-by-row forward (qat_quantizer_rows_begin) */
    float *row_amax;        /* nvfp4 (1-D): (max_rows) absmax of each rotated row, for the tensor scale */
    float *tiles;           /* nvfp4@2d weights: (segments, ceil(seg_rows/16), ceil(cols/16)) tile scales */
    /* lsq */
    int64_t lsq_n;          /* learned steps: max_rows for weights, 1 for activations */
    float *lsq_s, *lsq_g;   /* (lsq_n) step sizes and their gradients */
    float lsq_init;         /* 1 once the steps were initialised from data */
    int lsq_qn, lsq_qp;     /* grid bounds Q_N = 2^(b−1), Q_P = 2^(b−1) − 1 */
    double lsq_gscale;      /* 1/sqrt(cols·max(Q_P,1)) */
    float *lsq_dqds;        /* (max_rows, cols) ∂q/∂s per element of the last forward */
    double *lsq_part;       /* (max_rows) per-row partial step gradients, summed in row order */
    /* pv */
    float *pv_what;         /* (max_rows, cols) Ŵ: current codes dequantized, rotated domain */
    float pv_init;          /* 1 once Ŵ holds the first full projection */
    float *pv_rot;          /* (max_rows, cols) rotated latent weights (scratch) */
    float *pv_new;          /* (max_rows, cols) their full projection (scratch) */
    float *pv_prio;         /* (groups) ‖B_g − Ŵ_g‖² (scratch) */
    uint8_t *pv_take;       /* (groups) 1 for the groups this V step re-projects (scratch) */
    int64_t pv_group;       /* group length along the input dim */
    double pv_tau;          /* fraction of groups re-projected per step */
    float *pv_buf;          /* (max_rows, cols) V-step buffer B, rotated domain (pv_lr > 0) */
    float *pv_v;            /* (max_rows, cols) its Adam second moment */
    float *pv_g;            /* (max_rows, cols) dL/dŴ summed since the last step (scratch) */
    float pv_t;             /* V steps taken (Adam bias correction) */
    double pv_lr, pv_beta2, pv_delta_decay; /* V-step Adam lr, beta2; buffer decay */
    struct qat_aq_state *aq; /* aqMxBgG: learned codebooks, scales and codes (estimator_aq.c) */
};

/* quantizer_rows.c: the row passes the estimators build on. */
/* Rotate rows of x into y (copy + in-place Hadamard), OpenMP over rows. */
void qat_quantizer_rotate(const qat_quantizer *q, const float *x, float *y, int64_t rows);
/* The full projection of already-rotated rows y in place, masks into q->mask. */
void qat_quantizer_project(qat_quantizer *q, float *y, int64_t rows);
/* The same with each row's absmax already known (row_amax, rows floats, or NULL):
 * the segments' tensor scales come from it instead of another pass, the same bits;
 * with yb, each projected row also goes to bf16 (core/bf16.h) while in cache. */
void qat_quantizer_project_rows(qat_quantizer *q, float *y, uint16_t *yb, int64_t rows, const float *row_amax);

#endif
