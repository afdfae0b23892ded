/*
 * optim/adamw.h — AdamW and global gradient clipping.
 *
 * AdamW as in PyTorch (decoupled decay applied before the moment update):
 *     θ ← θ − lr·wd·θ                       (decay views only)
 *     m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
 *     θ ← θ − lr · (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + eps)
 * The moments of every view live in two flat buffers owned here, in view order,
 * which is also how they are checkpointed (/optim/m/NAME, /optim/v/NAME).
 * The learning rate each step uses comes from optim/schedule.h.
 */
#ifndef QAT_OPTIM_ADAMW_H
#define QAT_OPTIM_ADAMW_H

#include <stdint.h>

#include "core/config.h"
#include "param.h"

typedef struct {
    qat_param_view *views; /* borrowed from the model */
    int n_views;
    float *m, *v;          /* first and second moments, concatenated in view order */
    int64_t n;             /* total floats */
    int64_t t;             /* steps taken (bias correction) */
    double beta1, beta2, eps, weight_decay;
} qat_adamw;

void qat_adamw_init(qat_adamw *opt, qat_param_view *views, int n_views, const qat_train_cfg *cfg);
void qat_adamw_free(qat_adamw *opt);
/* One update of every view at learning rate lr. */
void qat_adamw_step(qat_adamw *opt, double lr);
/* Moments of view i (for checkpoints). */
float *qat_adamw_m(qat_adamw *opt, int i);
float *qat_adamw_v(qat_adamw *opt, int i);

/* Global L2 norm of all gradients (fixed-order double sum) and, when
 * max_norm > 0 and the norm exceeds it, rescaling to max_norm. Returns the
 * norm before clipping; NaN/Inf propagate so divergence is seen. */
double qat_clip_grad_norm(qat_param_view *views, int n_views, double max_norm);

#endif
