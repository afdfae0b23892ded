/*
 * optim/adamw.c — the AdamW update over parameter views.
 */
#include "adamw.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

void qat_adamw_init(qat_adamw *opt, qat_param_view *views, int n_views, const qat_train_cfg *cfg) {
    memset(opt, 0, sizeof *opt);
    opt->views = views;
    opt->n_views = n_views;
    for (int i = 0; i < n_views; i++) opt->n += views[i].n;
    opt->m = qat_xaligned((size_t)opt->n * sizeof(float));
    opt->v = qat_xaligned((size_t)opt->n * sizeof(float));
    memset(opt->m, 0, (size_t)opt->n * sizeof(float));
    memset(opt->v, 0, (size_t)opt->n * sizeof(float));
    opt->beta1 = cfg->beta1;
    opt->beta2 = cfg->beta2;
    opt->eps = cfg->eps;
    opt->weight_decay = cfg->weight_decay;
}

void qat_adamw_free(qat_adamw *opt) {
    free(opt->m);
    free(opt->v);
    memset(opt, 0, sizeof *opt);
}

static int64_t view_offset(const qat_adamw *opt, int i) {
    int64_t off = 0;
    for (int k = 0; k < i; k++) off += opt->views[k].n;
    return off;
}

float *qat_adamw_m(qat_adamw *opt, int i) { return opt->m + view_offset(opt, i); }
float *qat_adamw_v(qat_adamw *opt, int i) { return opt->v + view_offset(opt, i); }

void qat_adamw_step(qat_adamw *opt, double lr) {
    opt->t++;
    const float b1 = (float)opt->beta1, b2 = (float)opt->beta2, eps = (float)opt->eps;
    const float c1 = (float)(1.0 / (1.0 - pow(opt->beta1, (double)opt->t)));
    const float c2 = (float)(1.0 / (1.0 - pow(opt->beta2, (double)opt->t)));
    const float flr = (float)lr;
    int64_t off = 0;
    for (int i = 0; i < opt->n_views; i++) {
        qat_param_view *pv = &opt->views[i];
        float *p = pv->data;
        const float *g = pv->grad;
        float *m = opt->m + off, *v = opt->v + off;
        const float decay = pv->decay ? (float)(1.0 - lr * opt->weight_decay) : 1.0f;
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < pv->n; j++) {
            float gj = g[j];
            float mj = b1 * m[j] + (1.0f - b1) * gj;
            float vj = b2 * v[j] + (1.0f - b2) * gj * gj;
            m[j] = mj;
            v[j] = vj;
            p[j] = p[j] * decay - flr * (mj * c1) / (sqrtf(vj * c2) + eps);
        }
        off += pv->n;
    }
}

double qat_clip_grad_norm(qat_param_view *views, int n_views, double max_norm) {
    double total = 0;
    for (int i = 0; i < n_views; i++) {
        const float *g = views[i].grad;
        int64_t n = views[i].n;
        /* fixed 64 chunks per view, summed in order: the same bits at any thread count */
        double part[64];
#pragma omp parallel for schedule(static)
        for (int k = 0; k < 64; k++) {
            int64_t a = n * k / 64, b = n * (k + 1) / 64;
            double s = 0;
            for (int64_t j = a; j < b; j++) s += (double)g[j] * g[j];
            part[k] = s;
        }
        for (int k = 0; k < 64; k++) total += part[k];
    }
    double norm = sqrt(total);
    if (max_norm > 0 && isfinite(norm) && norm > max_norm) {
        float s = (float)(max_norm / (norm + 1e-6));
        for (int i = 0; i < n_views; i++) {
            float *g = views[i].grad;
#pragma omp parallel for schedule(static)
            for (int64_t j = 0; j < views[i].n; j++) g[j] *= s;
        }
    }
    return norm;
}
