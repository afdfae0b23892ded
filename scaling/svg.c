/*
 * scaling/svg.c — the SVG writer behind the plots (see svg.h).
 *
 * Log axes put a labelled tick at every decade, and when the range spans less
 * than about two decades also at 2× and 5× (or at every integer multiple for
 * less than one), so a loss axis from 1.9 to 4 still gets readable ticks.
 * Text is XML-escaped: format names such as "2:4+int4" or "noise(int4)" pass
 * through unharmed.
 */
#include "scaling/svg.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "core/error.h"

const char *qat_svg_color(int i) {
    static const char *pal[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                "#56B4E9", "#000000", "#8C564B", "#7F7F7F", "#BCBD22"};
    return pal[((i % 10) + 10) % 10];
}

static void escaped(FILE *o, const char *t) {
    for (; *t; t++) {
        switch (*t) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        default: fputc(*t, o);
        }
    }
}

int qat_svg_begin(qat_svg *s, const char *path, const char *src, double W, double H, const char *title,
                  const char *subtitle) {
    memset(s, 0, sizeof *s);
    QAT_TRY(qat_out_begin(&s->file, path, QAT_OUT_AS(QAT_OUT_SVG), &src, src ? 1 : 0)); /* replaces an SVG only */
    s->out = qat_out_stream(&s->file);
    s->W = W;
    s->H = H;
    /* Room on the left for tick labels, on the right for the legend. */
    s->px0 = 80; s->px1 = W - 270; s->py0 = subtitle ? 62 : 48; s->py1 = H - 58;
    s->top = s->py0;
    FILE *o = s->out;
    fprintf(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%g\" height=\"%g\" "
               "viewBox=\"0 0 %g %g\" font-family=\"Helvetica, Arial, sans-serif\">\n", W, H, W, H);
    fprintf(o, "<rect x=\"0\" y=\"0\" width=\"%g\" height=\"%g\" fill=\"white\"/>\n", W, H);
    fprintf(o, "<defs><clipPath id=\"plotarea\"><rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\"/></clipPath></defs>\n",
            s->px0, s->py0, s->px1 - s->px0, s->py1 - s->py0);
    fprintf(o, "<text class=\"title\" x=\"%g\" y=\"26\" text-anchor=\"middle\" font-size=\"17\" font-weight=\"bold\">",
            (s->px0 + s->px1) / 2);
    escaped(o, title);
    fputs("</text>\n", o);
    if (subtitle) {
        fprintf(o, "<text class=\"subtitle\" x=\"%g\" y=\"45\" text-anchor=\"middle\" font-size=\"12\" fill=\"#444\">",
                (s->px0 + s->px1) / 2);
        escaped(o, subtitle);
        fputs("</text>\n", o);
    }
    return QAT_OK;
}

static const char *dash_attr(int dash) {
    static const char *pat[] = {"", " stroke-dasharray=\"6 4\"", " stroke-dasharray=\"1.5 3\"",
                                " stroke-dasharray=\"9 3 2 3\""};
    return pat[((dash % 4) + 4) % 4];
}

void qat_svg_tag(qat_svg *s, const char *cls, int group) {
    s->tag[0] = 0;
    if (!cls) return;
    if (group >= 0) snprintf(s->tag, sizeof s->tag, " class=\"%s\" data-group=\"%d\"", cls, group);
    else snprintf(s->tag, sizeof s->tag, " class=\"%s\"", cls);
}

static void clip_id(const qat_svg *s, char *buf, size_t n) {
    if (s->panel) snprintf(buf, n, "plotarea%d", s->panel);
    else snprintf(buf, n, "plotarea");
}

void qat_svg_panel(qat_svg *s, double py0, double py1) {
    s->panel++;
    s->py0 = py0;
    s->py1 = py1;
    char id[32];
    clip_id(s, id, sizeof id);
    fprintf(s->out, "<defs><clipPath id=\"%s\"><rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\"/></clipPath></defs>\n",
            id, s->px0, s->py0, s->px1 - s->px0, s->py1 - s->py0);
}

static double tx(const qat_svg *s, double x) {
    double a = s->xlog ? log10(x) : x, lo = s->xlog ? log10(s->xmin) : s->xmin, hi = s->xlog ? log10(s->xmax) : s->xmax;
    return s->px0 + (a - lo) / (hi - lo) * (s->px1 - s->px0);
}

static double ty(const qat_svg *s, double y) {
    double a = s->ylog ? log10(y) : y, lo = s->ylog ? log10(s->ymin) : s->ymin, hi = s->ylog ? log10(s->ymax) : s->ymax;
    return s->py1 - (a - lo) / (hi - lo) * (s->py1 - s->py0);
}

void qat_svg_pad_range(double *lo, double *hi, int log_axis) {
    if (log_axis) {
        double f = pow(*hi / *lo, 0.06);
        if (f < 1.05) f = 1.05;
        *lo /= f;
        *hi *= f;
    } else {
        double w = *hi - *lo;
        if (w <= 0) w = fabs(*hi) > 0 ? fabs(*hi) : 1.0;
        *lo -= 0.06 * w;
        *hi += 0.06 * w;
    }
}

/* Tick positions for one axis; returns how many (≤ cap). */
static int auto_ticks(double lo, double hi, int log_axis, double *t, int cap) {
    int n = 0;
    if (log_axis && log10(hi / lo) < 0.8) log_axis = 0; /* under a decade: linear ticks read better */
    if (log_axis) {
        double span = log10(hi / lo);
        static const double m125[] = {1, 2, 5}, all[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        const double *mult = span > 2.5 ? m125 : span > 0.9 ? m125 : all;
        int nm = span > 2.5 ? 1 : span > 0.9 ? 3 : 9;
        int step = span > 12 ? (int)ceil(span / 8) : 1;
        for (int e = (int)floor(log10(lo)); e <= (int)ceil(log10(hi)) && n < cap; e++) {
            if (step > 1 && e % step) continue;
            for (int k = 0; k < nm && n < cap; k++) {
                double v = mult[k] * pow(10.0, e);
                if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) t[n++] = v;
            }
        }
        return n;
    }
    double raw = (hi - lo) / 7, mag = pow(10.0, floor(log10(raw))), step = mag;
    if (raw / mag > 5) step = 10 * mag;
    else if (raw / mag > 2) step = 5 * mag;
    else if (raw / mag > 1) step = 2 * mag;
    for (double v = ceil(lo / step) * step; v <= hi + 1e-9 * step && n < cap; v += step)
        t[n++] = fabs(v) < 1e-12 * step ? 0.0 : v;
    return n;
}

/* Tick label: decades as 10^k (superscript), others in %g. */
static void tick_label(FILE *o, double v, int log_axis) {
    double e = log10(v);
    if (log_axis && fabs(e - round(e)) < 1e-9 && (fabs(e) >= 3)) {
        fprintf(o, "10<tspan dy=\"-6\" font-size=\"9\">%d</tspan>", (int)round(e));
        return;
    }
    fprintf(o, "%g", v);
}

void qat_svg_axes(qat_svg *s, double xmin, double xmax, int xlog, double ymin, double ymax, int ylog,
                  const char *xlabel, const char *ylabel, const double *xticks, int nx, const double *yticks, int ny) {
    /* A range that is not finite (or empty, or not positive on a log axis)
     * would put NaN into every coordinate: draw on a stand-in range instead
     * and say so under the figure (qat_svg_end). Callers check their data at
     * input; this only keeps the file well-formed whatever reaches here. */
    /* the decade span only counts on a log axis: a linear one may cross 0 */
    if (!(isfinite(xmin) && isfinite(xmax) && xmin < xmax && (!xlog || xmin > 0)) ||
        (xlog && !isfinite(log10(xmax) - log10(xmin))) || !isfinite(xmax - xmin))
        xmin = xlog ? 1 : 0, xmax = 10, s->bad_range = 1;
    if (!(isfinite(ymin) && isfinite(ymax) && ymin < ymax && (!ylog || ymin > 0)) ||
        (ylog && !isfinite(log10(ymax) - log10(ymin))) || !isfinite(ymax - ymin))
        ymin = ylog ? 1 : 0, ymax = 10, s->bad_range = 1;
    s->xmin = xmin; s->xmax = xmax; s->xlog = xlog;
    s->ymin = ymin; s->ymax = ymax; s->ylog = ylog;
    FILE *o = s->out;
    double t[64];
    /* x axis */
    int n = nx > 0 ? nx : auto_ticks(xmin, xmax, xlog, t, 64);
    const double *xt = nx > 0 ? xticks : t;
    fputs("<g class=\"axis x\" font-size=\"11\" fill=\"#222\">\n", o);
    for (int k = 0; k < n; k++) {
        if (xt[k] < xmin || xt[k] > xmax) continue;
        double X = tx(s, xt[k]);
        fprintf(o, "<line x1=\"%.2f\" y1=\"%g\" x2=\"%.2f\" y2=\"%g\" stroke=\"#e4e4e4\"/>", X, s->py0, X, s->py1);
        fprintf(o, "<line class=\"tick\" x1=\"%.2f\" y1=\"%g\" x2=\"%.2f\" y2=\"%g\" stroke=\"#222\"/>", X, s->py1, X, s->py1 + 5);
        fprintf(o, "<text x=\"%.2f\" y=\"%g\" text-anchor=\"middle\">", X, s->py1 + 19);
        tick_label(o, xt[k], xlog);
        fputs("</text>\n", o);
    }
    if (xlabel) {
        fprintf(o, "<text class=\"label\" x=\"%g\" y=\"%g\" text-anchor=\"middle\" font-size=\"13\">",
                (s->px0 + s->px1) / 2, s->py1 + 42);
        escaped(o, xlabel);
        fputs("</text>\n", o);
    }
    fputs("</g>\n", o);
    /* y axis */
    n = ny > 0 ? ny : auto_ticks(ymin, ymax, ylog, t, 64);
    const double *yt = ny > 0 ? yticks : t;
    fputs("<g class=\"axis y\" font-size=\"11\" fill=\"#222\">\n", o);
    for (int k = 0; k < n; k++) {
        if (yt[k] < ymin || yt[k] > ymax) continue;
        double Y = ty(s, yt[k]);
        fprintf(o, "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"#e4e4e4\"/>", s->px0, Y, s->px1, Y);
        fprintf(o, "<line class=\"tick\" x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"#222\"/>", s->px0 - 5, Y, s->px0, Y);
        fprintf(o, "<text x=\"%g\" y=\"%.2f\" text-anchor=\"end\">", s->px0 - 8, Y + 4);
        tick_label(o, yt[k], ylog);
        fputs("</text>\n", o);
    }
    fprintf(o, "<text class=\"label\" x=\"18\" y=\"%g\" text-anchor=\"middle\" font-size=\"13\" "
               "transform=\"rotate(-90 18 %g)\">", (s->py0 + s->py1) / 2, (s->py0 + s->py1) / 2);
    escaped(o, ylabel);
    fputs("</text>\n</g>\n", o);
    fprintf(o, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#222\"/>\n", s->px0, s->py0,
            s->px1 - s->px0, s->py1 - s->py0);
}

void qat_svg_series_begin(qat_svg *s, const char *name) {
    fputs("<g class=\"series\" data-name=\"", s->out);
    escaped(s->out, name);
    char id[32];
    clip_id(s, id, sizeof id);
    fprintf(s->out, "\" clip-path=\"url(#%s)\">\n", id);
    s->in_series = 1;
}

void qat_svg_series_end(qat_svg *s) {
    fputs("</g>\n", s->out);
    s->in_series = 0;
}

/* A point whose pixel position is finite (a non-finite coordinate is never
 * written: it is left out and counted, and qat_svg_end notes how many). */
static int drawable(qat_svg *s, double x, double y) {
    int ok = isfinite(x) && isfinite(y) && (!s->xlog || x > 0) && (!s->ylog || y > 0) && isfinite(tx(s, x)) &&
             isfinite(ty(s, y));
    if (!ok && !(s->xlog && isfinite(x) && x <= 0) && !(s->ylog && isfinite(y) && y <= 0)) s->n_bad++;
    return ok;
}

void qat_svg_polyline(qat_svg *s, int n, const double *x, const double *y, const char *color, double width, int dash) {
    int open = 0;
    for (int i = 0; i < n; i++) {
        if (!drawable(s, x[i], y[i])) { /* a gap: end this piece */
            if (open) fputs("\"/>\n", s->out);
            open = 0;
            continue;
        }
        if (!open) {
            fprintf(s->out, "<polyline%s fill=\"none\" stroke=\"%s\" stroke-width=\"%g\"%s points=\"", s->tag, color,
                    width, dash_attr(dash));
            open = 1;
        }
        fprintf(s->out, "%.2f,%.2f ", tx(s, x[i]), ty(s, y[i]));
    }
    if (open) fputs("\"/>\n", s->out);
}

static void marker_px(FILE *o, const char *tag, double X, double Y, qat_svg_shape shape, const char *color, int filled,
                      double r) {
    const char *fill = filled ? color : "white";
    switch (shape) {
    case QAT_SVG_SQUARE:
        fprintf(o, "<rect%s x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" stroke=\"%s\" stroke-width=\"1.3\"/>\n",
                tag, X - r, Y - r, 2 * r, 2 * r, fill, color);
        break;
    case QAT_SVG_TRIANGLE:
        fprintf(o, "<polygon%s points=\"%.2f,%.2f %.2f,%.2f %.2f,%.2f\" fill=\"%s\" stroke=\"%s\" stroke-width=\"1.3\"/>\n",
                tag, X, Y - 1.2 * r, X - 1.1 * r, Y + 0.8 * r, X + 1.1 * r, Y + 0.8 * r, fill, color);
        break;
    case QAT_SVG_DIAMOND:
        fprintf(o, "<polygon%s points=\"%.2f,%.2f %.2f,%.2f %.2f,%.2f %.2f,%.2f\" fill=\"%s\" stroke=\"%s\" stroke-width=\"1.3\"/>\n",
                tag, X, Y - 1.3 * r, X + 1.3 * r, Y, X, Y + 1.3 * r, X - 1.3 * r, Y, fill, color);
        break;
    default:
        fprintf(o, "<circle%s cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"%s\" stroke=\"%s\" stroke-width=\"1.3\"/>\n", tag,
                X, Y, r, fill, color);
    }
}

void qat_svg_marker(qat_svg *s, double x, double y, qat_svg_shape shape, const char *color, int filled, double size) {
    if (!drawable(s, x, y)) return;
    marker_px(s->out, s->tag, tx(s, x), ty(s, y), shape, color, filled, size);
}

void qat_svg_segment(qat_svg *s, double x1, double y1, double x2, double y2, const char *color, double width) {
    if (!drawable(s, x1, y1) || !drawable(s, x2, y2)) return;
    fprintf(s->out, "<line%s x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"%g\"/>\n", s->tag,
            tx(s, x1), ty(s, y1), tx(s, x2), ty(s, y2), color, width);
}

void qat_svg_text_px(qat_svg *s, double X, double Y, const char *anchor, double size, const char *color, const char *text) {
    fprintf(s->out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\" font-size=\"%g\" fill=\"%s\">", X, Y, anchor, size,
            color);
    escaped(s->out, text);
    fputs("</text>\n", s->out);
}

void qat_svg_text(qat_svg *s, double x, double y, double dx, double dy, const char *anchor, double size,
                  const char *color, const char *text) {
    if (!drawable(s, x, y)) return;
    fprintf(s->out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\" font-size=\"%g\" fill=\"%s\">", tx(s, x) + dx,
            ty(s, y) + dy, anchor, size, color);
    escaped(s->out, text);
    fputs("</text>\n", s->out);
}

void qat_svg_legend_add(qat_svg *s, const qat_svg_legend_entry *e) {
    if (s->n_legend < QAT_SVG_MAX_LEGEND) s->legend[s->n_legend++] = *e;
}

int qat_svg_end(qat_svg *s) {
    FILE *o = s->out;
    if (s->in_series) qat_svg_series_end(s);
    if (s->bad_range || s->n_bad) {
        char note[160];
        snprintf(note, sizeof note, "note: %d point%s with a non-finite coordinate left out%s", s->n_bad,
                 s->n_bad == 1 ? "" : "s", s->bad_range ? "; an axis range was not finite and is a stand-in" : "");
        qat_svg_text_px(s, 12, s->H - 6, "start", 10, "#b00", note);
    }
    double x = s->px1 + 16, y = s->top + 6;
    fprintf(o, "<g class=\"legend\" font-size=\"11.5\">\n");
    fprintf(o, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%d\" fill=\"white\" stroke=\"#bbb\"/>\n", x - 6, y - 4,
            s->W - x - 6, 8 + 18 * s->n_legend);
    for (int k = 0; k < s->n_legend; k++) {
        const qat_svg_legend_entry *e = &s->legend[k];
        double Y = y + 10 + 18 * k;
        if (e->line)
            fprintf(o, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", x, Y,
                    x + 26, Y, e->color, dash_attr(e->dash));
        if (e->marker) marker_px(o, "", x + 13, Y, e->shape, e->color, e->filled, 4);
        fprintf(o, "<text x=\"%g\" y=\"%g\">", x + 33, Y + 4);
        escaped(o, e->label);
        fputs("</text>\n", o);
    }
    fputs("</g>\n</svg>\n", o);
    s->out = NULL;
    return qat_out_commit(&s->file);
}
