/*
 * compress/estimator_mask.c — the hooks of the estimators that are only a choice
 * of backward mask, written by the projection in the forward's pass (project.h
 * qat_mask_kind): trust, clip, masked and rbbm. ste has no hooks at all.
 */
#include "compress/estimator_hooks.h"
#include "compress/grid.h"
#include "compress/quantizer_impl.h"
#include "core/error.h"

void qat_trust_proj(qat_quantizer *q) {
    q->proj.mask = QAT_MASK_TRUST;
    q->proj.mask_t = q->side.trust > 0 ? q->side.trust : 0;
}

void qat_clip_proj(qat_quantizer *q) {
    q->proj.mask = QAT_MASK_CLIP;
    q->proj.mask_t = q->side.clip_scale > 0 ? q->side.clip_scale : 1.0;
}

void qat_masked_proj(qat_quantizer *q) { q->proj.mask = QAT_MASK_KEPT; }

int qat_rbbm_check(qat_quantizer *q, int natural_group) {
    (void)natural_group;
    if (!(q->side.rbbm_p > 0.0 && q->side.rbbm_p < 0.5))
        return qat_fail(QAT_EINPUT, "rbbm_p %g is not valid, expected p in (0, 0.5)", q->side.rbbm_p);
    return QAT_OK;
}

void qat_rbbm_proj(qat_quantizer *q) {
    q->proj.mask = QAT_MASK_RBBM;
    q->proj.rbbm_z = qat_norm_ppf(0.5 + q->side.rbbm_p);
}
