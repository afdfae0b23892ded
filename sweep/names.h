/*
 * sweep/names.h — naming a sweep's runs (names.c), for expand.c only: the
 * public half, qat_sweep_sanitize and qat_sweep_run_name, is in sweep.h.
 */
#ifndef QAT_SWEEP_NAMES_H
#define QAT_SWEEP_NAMES_H

#include "sweep/sweep.h"

/* Fill sw->names and sw->name_set ("name=NAME") for every run, from the base's
 * name, the grid labels and the seeds (sw->n_runs, axes and seeds set). */
void qat_sweep_make_names(qat_sweep *sw);

#endif
