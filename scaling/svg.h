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
    int dash;              /* line pattern: 0 solid, 1 dashed, 2 dotted, 3 dash-dot */
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
    double top;                      /* py0 of the first plot area: the legend's top */
    int panel;                       /* clip path of the current plot area: 0 "plotarea", k "plotareaK" */
    char tag[96];                    /* extra attributes on every element drawn (qat_svg_tag) */
    int n_bad;                       /* points left out for a non-finite coordinate (noted under the figure) */
    int bad_range;                   /* an axis range was not finite and was replaced (noted too) */
} qat_svg;

/* Start a W×H drawing with a title (and optional subtitle) for `path`,
 * written to a temporary beside it (core/fsutil.h): QAT_EINPUT when `path` is
 * `src` (the file the figure is drawn from; may be NULL) or not a regular file. */
int qat_svg_begin(qat_svg *s, const char *path, const char *src, double W, double H, const char *title,
                  const char *subtitle);

/* Set the data ranges (log axes need positive ranges) and draw the frame,
 * grid, ticks, tick labels and axis labels (an upper panel passes xlabel NULL). `xticks`/`yticks` may give explicit
 * tick positions (n > 0), otherwise 1-2-5 (linear) or decades (log) are used. */
void qat_svg_axes(qat_svg *s, double xmin, double xmax, int xlog, double ymin, double ymax, int ylog,
                  const char *xlabel, const char *ylabel, const double *xticks, int nx, const double *yticks, int ny);

/* Start a second (third, ...) plot area below the first, from py0 to py1 px,
 * sharing the horizontal extent: call qat_svg_axes again for its ranges. A
 * residual panel under a figure is drawn this way. */
void qat_svg_panel(qat_svg *s, double py0, double py1);

/* Mark every element drawn from now on with class="CLS" and data-group="G"
 * (G < 0: no data-group), so a test or a reader can tie a curve, its markers
 * and their residuals together; CLS NULL clears the mark. */
void qat_svg_tag(qat_svg *s, const char *cls, int group);

void qat_svg_series_begin(qat_svg *s, const char *name);
void qat_svg_series_end(qat_svg *s);

/* Points outside the range are clipped by the plot area's clip path; dash as
 * in qat_svg_legend_entry. */
void qat_svg_polyline(qat_svg *s, int n, const double *x, const double *y, const char *color, double width, int dash);
void qat_svg_marker(qat_svg *s, double x, double y, qat_svg_shape shape, const char *color, int filled, double size);
/* A straight segment between two data points (a residual tick). */
void qat_svg_segment(qat_svg *s, double x1, double y1, double x2, double y2, const char *color, double width);
/* Text at a position in px, not clipped (notes under a figure). */
void qat_svg_text_px(qat_svg *s, double X, double Y, const char *anchor, double size, const char *color, const char *text);
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
