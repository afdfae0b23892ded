/*
 * optim/schedule.c — learning rate as a function of the step.
 *
 * `cosine` reproduces torch's OneCycleLR with anneal_strategy='cos',
 * div_factor=100 and final lr = lr·min_lr_ratio, as QuEST trains: a half-cosine
 * ramp from lr/100 up to lr over the first `warmup` fraction of steps, then a
 * half-cosine decay to the final lr at the last step. The schedule arrives as
 * an enum (parsed once with the config), so each step only switches on it.
 */
#include "schedule.h"

#include <math.h>

#include "core/error.h"

static double cos_anneal(double start, double end, double pct) {
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1.0);
}

double qat_lr_at(const qat_train_cfg *cfg, int64_t step, int64_t total) {
    double lr = cfg->lr, lo = lr / 100.0, fin = lr * cfg->min_lr_ratio;
    int64_t warm = (int64_t)floor(cfg->warmup * (double)total);
    if (total <= 1) return lr;
    if (step < warm) {
        double pct = warm > 1 ? (double)step / (double)(warm - 1) : 1.0;
        if (cfg->schedule == QAT_SCHEDULE_COSINE) return cos_anneal(lo, lr, pct);
        return lo + (lr - lo) * pct;
    }
    double span = (double)(total - 1 - warm);
    double pct = span > 0 ? (double)(step - warm) / span : 1.0;
    if (pct > 1) pct = 1;
    switch (cfg->schedule) {
    case QAT_SCHEDULE_COSINE: return cos_anneal(lr, fin, pct);
    case QAT_SCHEDULE_LINEAR: return lr + (fin - lr) * pct;
    case QAT_SCHEDULE_CONSTANT: return lr;
    }
    QAT_ASSERT(0); /* a validated config holds one of the three */
    return lr;
}
