/*
 * compress/estimator_hooks.h — the hook functions the rows of estimator.c's table
 * point at (the struct they fill is qat_est_hooks in estimator.h). Only the table
 * and the files implementing hooks include this; the quantizer reaches the hooks
 * through the table alone.
 */
#ifndef QAT_COMPRESS_ESTIMATOR_HOOKS_H
#define QAT_COMPRESS_ESTIMATOR_HOOKS_H

#include <stdint.h>

#include "compress/estimator.h"

typedef struct qat_quantizer qat_quantizer; /* quantizer.h */

/* estimator_mask.c: estimators that only choose the mask the projection writes. */
void qat_trust_proj(qat_quantizer *q);
void qat_clip_proj(qat_quantizer *q);
void qat_masked_proj(qat_quantizer *q);
int qat_rbbm_check(qat_quantizer *q, int natural_group);
void qat_rbbm_proj(qat_quantizer *q);

/* estimator_lsq.c: the hooks of the lsq row (estimator.h). */
void qat_lsq_alloc(qat_quantizer *q);
void qat_lsq_release(qat_quantizer *q);
void qat_lsq_forward(qat_quantizer *q, float *y, int64_t rows);
void qat_lsq_step_grads(qat_quantizer *q, const float *gy, int64_t rows);
int64_t qat_lsq_params(qat_quantizer *q, float **value, float **grad);
void qat_lsq_state(qat_quantizer *q, int i, const char **name, float **data, int64_t *n);

/* estimator_pv.c: the hooks of the pv row. */
int qat_pv_check(qat_quantizer *q, int natural_group);
void qat_pv_alloc(qat_quantizer *q);
void qat_pv_release(qat_quantizer *q);
void qat_pv_forward(qat_quantizer *q, const float *x, float *y, int64_t rows);
void qat_pv_backward(qat_quantizer *q, const float *gy, int64_t rows);
void qat_pv_after_step(qat_quantizer *q, const float *w);
void qat_pv_state(qat_quantizer *q, int i, const char **name, float **data, int64_t *n);
/* The pieces of the V step, shared with the learned-codebook pv (estimator_aq.c):
 * move the buffer B into pv_rot; mark the top-τ groups of ‖B_g − Ŵ_g‖² in take
 * (one byte per pv_group); decay B toward Ŵ. */
void qat_pv_buffer_step(qat_quantizer *q, const float *w);
void qat_pv_top_groups(qat_quantizer *q, uint8_t *take);
void qat_pv_decay(qat_quantizer *q);

/* estimator_aq.c: the hooks estimator e runs with on a learned-codebook format
 * (format_table.c's aq row, est_hooks). */
const qat_est_hooks *qat_aq_est_hooks(qat_est e);

#endif
