/*
 * scaling/plot.h — the three figures of a fit, drawn from FIT.h5 alone.
 */
#ifndef QAT_SCALING_PLOT_H
#define QAT_SCALING_PLOT_H

#include <stdio.h>

#include "scaling/fit_h5.h"

typedef enum { QAT_PLOT_LAW, QAT_PLOT_CAPACITY, QAT_PLOT_FRONTIER } qat_plot_kind;

int qat_plot_kind_parse(const char *s, qat_plot_kind *k);

/* Draw `kind` of the fit into an SVG at `path`; `info` (may be NULL) gets a
 * short text summary (the frontier's best format per budget). `src` names the
 * fit file in error messages. */
int qat_fit_plot(const qat_fit_h5 *f, const char *src, qat_plot_kind kind, const char *path, FILE *info);

#endif
