/*
 * scaling/svg.h — just enough SVG for scientific line/scatter plots: a frame
 * with linear or log axes, ticks and labels, polylines, markers, text, and a
 * legend. No dependency: the output is written by hand and is plain SVG 1.1
 * that browsers and rsvg render alike.
 *
 * Coordinates are data coordinates unless a function says "px". Every series
 * is wrapped in <g class="series" data-name="…"> so tests (and people reading
 * the file) can find one group per format.
 */
#ifndef QAT_SCALING_SVG_H
#define QAT_SCALING_SVG_H

#include <stdio.h>

#include "core/fsutil.h"

#define QAT_SVG_MAX_LEGEND 48

typedef enum { QAT_SVG_CIRCLE, QAT_SVG_SQUARE, QAT_SVG_TRIANGLE, QAT_SVG_DIAMOND } qat_svg_shape;

typedef struct {
    char label[96];
    const char *color;
    int line;              /* draw a line sample */
    int dash;              /* dashed line sample */
    int marker;            /* draw a marker sample */
    qat_svg_shape shape;
    int filled;
} qat_svg_legend_entry;

typedef struct {
    qat_out file;                    /* the output and its temporary (core/fsutil.h) */
    FILE *out;                       /* stream over the temporary */
    double W, H;                     /* canvas, px */
    double px0, px1, py0, py1;       /* plot area, px (py0 is the top) */
    double xmin, xmax, ymin, ymax;   /* data range */
    int xlog, ylog;
    int in_series;
    int n_legend;
    qat_svg_legend_entry legend[QAT_SVG_MAX_LEGEND];
} qat_svg;

/* Start a W×H drawing with a title (and optional subtitle) for `path`,
 * written to a temporary beside it (core/fsutil.h): QAT_EINPUT when `path` is
 * `src` (the file the figure is drawn from; may be NULL) or not a regular file. */
int qat_svg_begin(qat_svg *s, const char *path, const char *src, double W, double H, const char *title,
                  const char *subtitle);

/* Set the data ranges (log axes need positive ranges) and draw the frame,
 * grid, ticks, tick labels and axis labels. `xticks`/`yticks` may give explicit
 * tick positions (n > 0), otherwise 1-2-5 (linear) or decades (log) are used. */
void qat_svg_axes(qat_svg *s, double xmin, double xmax, int xlog, double ymin, double ymax, int ylog,
                  const char *xlabel, const char *ylabel, const double *xticks, int nx, const double *yticks, int ny);

void qat_svg_series_begin(qat_svg *s, const char *name);
void qat_svg_series_end(qat_svg *s);

/* Points outside the range are clipped by the plot area's clip path. */
void qat_svg_polyline(qat_svg *s, int n, const double *x, const double *y, const char *color, double width, int dash);
void qat_svg_marker(qat_svg *s, double x, double y, qat_svg_shape shape, const char *color, int filled, double size);
/* anchor: "start", "middle", "end"; offsets in px. */
void qat_svg_text(qat_svg *s, double x, double y, double dx, double dy, const char *anchor, double size,
                  const char *color, const char *text);

void qat_svg_legend_add(qat_svg *s, const qat_svg_legend_entry *e);

/* Draw the legend, close the document and rename it into place; an I/O
 * failure is QAT_ERUNTIME naming the path and leaves no partial file. */
int qat_svg_end(qat_svg *s);

/* The i-th colour of a palette readable by colour-blind viewers. */
const char *qat_svg_color(int i);

/* Nice limits: pad [lo, hi] for a log (×/÷ factor) or linear axis. */
void qat_svg_pad_range(double *lo, double *hi, int log_axis);

#endif
