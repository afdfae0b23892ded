/*
 * optim/schedule.h — the learning rate as a function of the step (docs/model.md).
 *
 * Schedules (QuEST's OneCycle): `cosine` ramps lr/100 → lr along a half cosine
 * over the warm-up steps, then decays lr → lr·min_lr_ratio along a half cosine;
 * `linear` ramps and decays linearly; `constant` ramps linearly and then holds.
 * All are pure functions of the step, so a resumed run continues bit for bit.
 *
 * Which one a run uses is cfg->schedule, the qat_schedule enum of core/config.h:
 * its names are listed there (core cannot include optim/), parsed once when the
 * config is loaded, and validated with the rest of it.
 */
#ifndef QAT_OPTIM_SCHEDULE_H
#define QAT_OPTIM_SCHEDULE_H

#include <stdint.h>

#include "core/config.h"

/* Learning rate at step (0-based) of total steps under cfg's schedule. */
double qat_lr_at(const qat_train_cfg *cfg, int64_t step, int64_t total);

#endif
