/*
 * model/presets.c — the s1…s8 ladder of model sizes, and counting.
 *
 * The presets roughly double the non-embedding parameter count N from ~27K to
 * ~3.2M, growing width and depth together, with head dimension 16 up to s5 and
 * 32 above, so a sweep over them spans two decades of N on a 2-core machine.
 * configs/models/sN.yaml spell out the same numbers (a test checks they agree).
 */
#include <string.h>

#include "core/error.h"
#include "llama.h"

typedef struct {
    const char *name;
    int layers, dim, heads;
} preset;

static const preset PRESETS[] = {
    {"s1", 2, 32, 2},  /*    26,784 */
    {"s2", 2, 48, 3},  /*    55,536 */
    {"s3", 2, 64, 4},  /*   106,816 */
    {"s4", 3, 80, 5},  /*   238,640 */
    {"s5", 4, 96, 6},  /*   443,232 */
    {"s6", 4, 128, 4}, /*   803,968 */
    {"s7", 5, 160, 5}, /* 1,588,960 */
    {"s8", 4, 256, 8}, /* 3,213,568 */
};

/* h = 32·ceil((8d/3)/32) = 32·ceil(8d/96), in integers. */
int qat_model_hidden(int dim) { return 32 * ((8 * dim + 95) / 96); }

int qat_model_preset(const char *name, qat_model_shape *out) {
    for (size_t i = 0; i < sizeof PRESETS / sizeof *PRESETS; i++) {
        if (strcmp(PRESETS[i].name, name) != 0) continue;
        memset(out, 0, sizeof *out);
        out->layers = PRESETS[i].layers;
        out->dim = PRESETS[i].dim;
        out->heads = PRESETS[i].heads;
        out->hidden = qat_model_hidden(out->dim);
        return QAT_OK;
    }
    return qat_fail(QAT_EINPUT, "unknown model preset '%s', expected one of s1 s2 s3 s4 s5 s6 s7 s8", name);
}

int64_t qat_model_count_params(const qat_model_shape *s) {
    int64_t d = s->dim, h = s->hidden;
    return (int64_t)s->layers * (4 * d * d + 3 * d * h + 2 * d) + d;
}

double qat_model_flops_per_token(const qat_model_shape *s) {
    /* forward: 2 FLOPs per weight of every matmul (blocks + head) plus attention
     * scores and values, 2·T·d each per layer at full (unmasked) length T. */
    double d = s->dim, h = s->hidden, L = s->layers, T = s->seq_len, V = s->vocab;
    double mat = L * (4 * d * d + 3 * d * h) + V * d;
    return 2.0 * mat + L * 4.0 * T * d;
}

int qat_model_shape_from_config(const qat_config *cfg, qat_model_shape *out) {
    const qat_model_cfg *mc = &cfg->model;
    qat_model_shape s;
    memset(&s, 0, sizeof s);
    if (mc->preset[0]) QAT_TRY(qat_model_preset(mc->preset, &s));
    if (mc->layers > 0) s.layers = mc->layers;
    if (mc->dim > 0) s.dim = mc->dim, s.hidden = 0;
    if (mc->heads > 0) s.heads = mc->heads;
    if (mc->hidden > 0) s.hidden = mc->hidden;
    if (s.hidden == 0 && s.dim > 0) s.hidden = qat_model_hidden(s.dim);
    s.vocab = mc->vocab;
    s.seq_len = mc->seq_len;
    s.rope_theta = mc->rope_theta > 0 ? mc->rope_theta : 10000.0;
    s.norm_eps = mc->norm_eps > 0 ? mc->norm_eps : 1e-5;
    s.init_std = mc->init_std > 0 ? mc->init_std : 0.02;
    /* a check between keys points at the one of them given last (docs/config.md):
     * `heads: 3` after `preset: s1`, or a --set after the file */
    char pos[QAT_PATH_MAX + 96];
    const char *all[] = {"model.preset", "model.layers", "model.dim", "model.heads", NULL};
    const char *split[] = {"model.preset", "model.dim", "model.heads", NULL};
    const char *ends[] = {"model.vocab", "model.seq_len", NULL};
    if (s.layers <= 0 || s.dim <= 0 || s.heads <= 0)
        return qat_fail(QAT_EINPUT, "%s: model: set model.preset (s1..s8) or model.layers, model.dim and model.heads",
                        qat_config_where_last(cfg, all, pos, sizeof pos));
    if (s.dim % s.heads != 0)
        return qat_fail(QAT_EINPUT, "%s: model.heads = %d does not divide model.dim = %d",
                        qat_config_where_last(cfg, split, pos, sizeof pos), s.heads, s.dim);
    if ((s.dim / s.heads) % 2 != 0)
        return qat_fail(QAT_EINPUT, "%s: model: head dimension dim/heads = %d must be even for RoPE, expected model.dim and model.heads "
                        "with an even quotient", qat_config_where_last(cfg, split, pos, sizeof pos), s.dim / s.heads);
    if (s.vocab < 2 || s.seq_len < 2)
        return qat_fail(QAT_EINPUT, "%s: model.vocab and model.seq_len must be at least 2",
                        qat_config_where_last(cfg, ends, pos, sizeof pos));
    *out = s;
    return QAT_OK;
}
