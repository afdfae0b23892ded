/*
 * model/llama.c — building, initialising and running the transformer.
 *
 * Parameters are laid out in one flat buffer in checkpoint order (embedding,
 * then each block, then final norm and head), and described by views, so the
 * optimizer and the checkpoint writer never need to know the architecture.
 *
 * Initialisation follows docs/model.md: N(0, 0.02) everywhere, N(0, 0.02/√(2L)) for
 * o_proj and down_proj, ones for the norms. Each value is drawn from a counter
 * hash of (seed, position in the flat buffer), so a model is the same whatever
 * the thread count.
 */
#include "llama.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autograd/gemm.h"
#include "autograd/ops.h"
#include "compress/estimator.h"
#include "compress/format.h"
#include "compress/quantizer.h"
#include "core/error.h"
#include "core/rng.h"

static void tensor_at(qat_tensor *t, float *params, float *grads, int64_t *off, int ndim, const int64_t *shape) {
    memset(t, 0, sizeof *t);
    qat_tensor_set_shape(t, ndim, shape);
    t->data = params + *off;
    t->grad = grads + *off;
    *off += t->numel;
}

static void add_view(qat_model *m, const char *name, float *data, float *grad, int ndim, int64_t d0, int64_t d1, int decay) {
    qat_param_view *v = &m->views[m->n_views++];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->data = data;
    v->grad = grad;
    v->ndim = ndim;
    v->shape[0] = d0;
    v->shape[1] = ndim > 1 ? d1 : 1;
    v->n = d0 * (ndim > 1 ? d1 : 1);
    v->decay = decay;
}

/* Row slice [r0, r0 + rows) of a 2-D tensor as a named view. */
static void add_rows(qat_model *m, const char *name, qat_tensor *t, int64_t r0, int64_t rows, int decay) {
    int64_t cols = t->shape[1];
    add_view(m, name, t->data + r0 * cols, t->grad + r0 * cols, 2, rows, cols, decay);
}

/* The Hadamard block one side asks for over `cols` inputs, and where it came from. */
typedef struct {
    int block;       /* 0 = none */
    int set;         /* 1: set by the user (hadamard: B or @hB); 0: auto */
    char why[160];   /* where the block came from, for messages ("@h16 of mxfp4@h16", "auto picks 32 for int4") */
    char key[48];    /* the key that set it ("compress.weights.hadamard" or ".format"), for the message's line */
} side_rot;

/* The format decides what "auto" means (compress/format_table.c); a block the
 * user set must divide the input dim, and the message names the key that set it. */
static int side_block(const qat_config *cfg, const qat_compress_side *s, const char *key, int64_t cols, side_rot *r) {
    qat_fmt f;
    memset(r, 0, sizeof *r);
    int rc = qat_fmt_parse(s->format, &f), parsed = !rc;
    if (!rc) rc = qat_fmt_hadamard(&f, s->hadamard, cols, &r->block);
    char pos[QAT_PATH_MAX + 96], fk[48], hk[48];
    snprintf(fk, sizeof fk, "%s.format", key);
    snprintf(hk, sizeof hk, "%s.hadamard", key);
    /* a format that does not parse is its own key's fault; one that refuses the block it
     * is given, the later of the two keys' */
    const char *fh[] = {fk, hk, NULL}, *f1[] = {fk, NULL};
    if (rc) return qat_fail_context(rc, "%s: %s", qat_config_where_last(cfg, parsed ? fh : f1, pos, sizeof pos), key);
    if (s->hadamard >= 0) {
        r->set = 1;
        snprintf(r->why, sizeof r->why, "%s.hadamard: %d", key, s->hadamard);
        snprintf(r->key, sizeof r->key, "%s.hadamard", key);
    } else if (f.had) {
        r->set = 1;
        snprintf(r->why, sizeof r->why, "@h%d of %s.format %s", f.had, key, f.name);
        snprintf(r->key, sizeof r->key, "%s.format", key);
    } else if (r->block) {
        snprintf(r->why, sizeof r->why, "%s.hadamard auto picks %d for %s", key, r->block, f.name);
    } else {
        snprintf(r->why, sizeof r->why, "%s.hadamard auto rotates nothing for %s", key, f.name);
    }
    /* a check between the block and the model's widths: it points at the later of their keys */
    const char *keys[] = {r->key, "model.preset", "model.dim", "model.hidden", NULL};
    if (r->set && r->block && cols % r->block)
        return qat_fail(QAT_EINPUT, "%s: %s: Hadamard block %d does not divide the input dim %lld, expected a power of "
                        "two dividing it (or -1 for auto)", qat_config_where_last(cfg, keys, pos, sizeof pos), r->why,
                        r->block, (long long)cols);
    return QAT_OK;
}

/* Both operands of a product must live in the same basis: if either side is
 * rotated, the other is rotated with the same block (an fp32 side then only
 * rotates). A side on auto follows the block the other side set (hadamard: B
 * or @hB); only two different blocks both set by the user conflict. A block
 * format's effective block becomes its @hB in the name the run logs, so
 * `mxfp4` with hadamard: 32 and `mxfp4@h32` are the same format in run logs
 * and fits. */
static int make_pair(const qat_config *cfg, int64_t rows_w, int64_t cols, int segments, int max_rows,
                     uint64_t seed, int sized, qat_quantizer **qa, qat_quantizer **qw) {
    qat_compress_side w = cfg->weights, a = cfg->activations;
    side_rot rw, ra;
    QAT_TRY(side_block(cfg, &w, "compress.weights", cols, &rw));
    QAT_TRY(side_block(cfg, &a, "compress.activations", cols, &ra));
    int block;
    char pos[QAT_PATH_MAX + 96]; /* a side's errors point at the first of its keys the user gave */
    const char *both[] = {rw.key, ra.key, NULL};
    if (rw.set && ra.set && rw.block && ra.block && rw.block != ra.block)
        return qat_fail(QAT_EINPUT, "%s: the weights rotate with Hadamard block %d (%s) but the activations with %d (%s); "
                        "both operands of a product are rotated by the same matrix: make the blocks equal, or set one "
                        "side's hadamard to -1 (auto follows the other side)",
                        qat_config_where_last(cfg, both, pos, sizeof pos), rw.block, rw.why, ra.block, ra.why);
    /* An explicit 0 says "do not rotate this side", and the other side's rotation
     * would rotate it anyway: the setting would be silently overridden. */
    for (int i = 0; i < 2; i++) {
        const side_rot *off = i ? &ra : &rw, *on = i ? &rw : &ra;
        if (!(off->set && !off->block && on->block)) continue;
        const char *me = i ? "compress.activations" : "compress.weights";
        const char *other = i ? "compress.weights" : "compress.activations";
        char of[64], oh[64];
        snprintf(of, sizeof of, "%s.format", other);
        snprintf(oh, sizeof oh, "%s.hadamard", other);
        const char *keys[] = {off->key, of, oh, NULL};
        return qat_fail(QAT_EINPUT, "%s: %s.hadamard: 0 asks for no rotation of the %s, but the %s rotate with "
                        "Hadamard block %d (%s); both operands of a product share one basis, so the %s would be "
                        "rotated anyway; expected %s.hadamard: 0 too (neither side rotated), or %s.hadamard: -1 "
                        "(auto follows the other side)",
                        qat_config_where_last(cfg, keys, pos, sizeof pos), me, i ? "activations" : "weights",
                        i ? "weights" : "activations", on->block, on->why, i ? "activations" : "weights", other, me);
    }
    if (rw.set && rw.block) block = rw.block;
    else if (ra.set && ra.block) block = ra.block;
    else block = rw.block ? rw.block : ra.block; /* auto on both sides: the same rule over the same cols */
    const char *src = qat_config_source(cfg);
    int hw, ha;
    int rc = qat_fmt_canonical_side(w.format, block, w.format, sizeof w.format, &hw);
    if (!rc) rc = qat_fmt_canonical_side(a.format, block, a.format, sizeof a.format, &ha);
    if (rc) return qat_fail_context(rc, "%s", src);
    w.hadamard = block;
    a.hadamard = block;
    /* a quantizer refuses a combination of its side's keys (a scale the format has
     * no use for, an estimator it does not take): the one given last is named */
    const char *wkeys[] = {"compress.weights", NULL}, *akeys[] = {"compress.activations", NULL};
    rc = sized ? qat_quantizer_create(&w, 1, rows_w, cols, segments, seed, qw)
               : qat_quantizer_check(&w, 1, rows_w, cols, segments, qw);
    if (rc) return qat_fail_context(rc, "%s: compress.weights", qat_config_where_last(cfg, wkeys, pos, sizeof pos));
    rc = sized ? qat_quantizer_create(&a, 0, max_rows, cols, 1, seed ^ 0xA5A5A5A5ull, qa)
               : qat_quantizer_check(&a, 0, max_rows, cols, 1, qa);
    if (rc)
        return qat_fail_context(rc, "%s: compress.activations", qat_config_where_last(cfg, akeys, pos, sizeof pos));
    return QAT_OK;
}

/* The checks of the config against the sizes that need no weights: the gradient
 * quantizer (into *gq) and the CPU's bf16 products. */
static int check_sizes(const qat_config *cfg, const qat_model_shape *s, qat_gradq *gq) {
    /* a compress.* option the side's format and estimator ignore, which the user gave:
     * here, since qat_model_check and qat_model_create (train, sweep, eval, grads) both pass */
    QAT_TRY(qat_est_check_config(cfg));
    /* the context against the blocks of a split corpus: here for the same reason */
    QAT_TRY(qat_config_check_split(cfg));
    QAT_TRY(qat_config_check_synth(cfg));
    int grc = qat_gradq_init(gq, &cfg->gradients);
    char pos[QAT_PATH_MAX + 96];
    if (grc) {
        /* each of its messages opens with the key it is about ("compress.gradients.hadamard: ..."):
         * that key's line, not the section's first */
        char key[48] = "compress.gradients";
        const char *e = qat_errmsg();
        size_t n = strcspn(e, ":");
        if (!strncmp(e, "compress.gradients.", 19) && n < sizeof key) snprintf(key, sizeof key, "%.*s", (int)n, e);
        return qat_fail_context(grc, "%s", qat_config_where(cfg, key, pos, sizeof pos));
    }
    /* every backward product's inner dim must split into whole Hadamard blocks:
     * the block linears' output widths and the token count B·T (so T); a check
     * between the block and the model's sizes names the later of their keys */
    grc = qat_gradq_check_inner(gq, s->dim, "model width");
    if (!grc) grc = qat_gradq_check_inner(gq, s->hidden, "MLP hidden size");
    if (!grc) grc = qat_gradq_check_inner(gq, s->seq_len, "sequence length");
    const char *inner[] = {"compress.gradients.hadamard", "model.preset", "model.dim", "model.hidden",
                           "model.seq_len", NULL};
    if (grc) return qat_fail_context(grc, "%s", qat_config_where_last(cfg, inner, pos, sizeof pos));
    const char *isa;
    if (!strcmp(cfg->train.precision, "bf16") && !qat_gemm_bf16_supported(&isa))
        return qat_fail(QAT_EINPUT, "%s: train.precision: bf16 needs a CPU with native bf16 products "
                        "(AVX512-BF16 or AMX; oneDNN's ISA here is %s); use train.precision: fp32",
                        qat_config_where(cfg, "train.precision", pos, sizeof pos), isa);
    return QAT_OK;
}

/* One block's quantizer pairs (qkv, o, gate/up, down), activations then weights;
 * every block has the same, but for their seeds. Unsized (qat_quantizer_check:
 * the checks and names without the buffers) when !sized. */
static int make_block_pairs(const qat_config *cfg, const qat_model_shape *s, int max_rows, uint64_t sd, int sized,
                            qat_quantizer **qa, qat_quantizer **qw) {
    int64_t C = s->dim, H = s->hidden;
    int rc = make_pair(cfg, 3 * C, C, 3, max_rows, sd + 0, sized, &qa[0], &qw[0]);
    if (!rc) rc = make_pair(cfg, C, C, 1, max_rows, sd + 1, sized, &qa[1], &qw[1]);
    if (!rc) rc = make_pair(cfg, 2 * H, C, 2, max_rows, sd + 2, sized, &qa[2], &qw[2]);
    if (!rc) rc = make_pair(cfg, C, H, 1, max_rows, sd + 3, sized, &qa[3], &qw[3]);
    return rc;
}

/* A block format on hadamard: -1 beside a side whose own auto pick rotates
 * follows that pick linear by linear, and the run log names the format by one
 * @hB (the first linear's). Picks that differ between input dims (s2: 16 over
 * its width 48, 128 over its hidden 128) would log a name that is wrong for
 * some linears, so fits would mix two formats under it: refused, naming the
 * one setting that makes a single block. `qa`/`qw`: one block's quantizers. */
static int one_block_per_side(const qat_config *cfg, const qat_model_shape *s, qat_quantizer *const *qa,
                              qat_quantizer *const *qw) {
    int64_t C = s->dim, H = s->hidden;
    for (int side = 0; side < 2; side++) {
        qat_quantizer *const *q = side ? qa : qw;
        if (!strcmp(qat_quantizer_format(q[0]), qat_quantizer_format(q[3]))) continue;
        const char *key = side ? "compress.activations" : "compress.weights";
        const char *okey = side ? "compress.weights" : "compress.activations", *other = side ? "weights" : "activations";
        const qat_compress_side *cs = side ? &cfg->activations : &cfg->weights;
        int b0 = qat_quantizer_hadamard(q[0]), b3 = qat_quantizer_hadamard(q[3]), lo = b0 < b3 ? b0 : b3;
        char pos[QAT_PATH_MAX + 96], fkey[48];
        snprintf(fkey, sizeof fkey, "%s.format", key);
        const char *keys[] = {fkey, okey, "model.preset", "model.dim", "model.hidden", NULL}; /* the later one */
        return qat_fail(QAT_EINPUT, "%s: %s: %s would be rotated by the %s' auto Hadamard blocks, %d over input dim "
                        "%lld and %d over input dim %lld, and a block format is named by one block (it would be %s "
                        "in q/k/v, o and gate/up but %s in down_proj); expected one block for the whole model: %s.hadamard: %d, or %s@h%d, or "
                        "%s.hadamard: 0 (no rotation)",
                        qat_config_where_last(cfg, keys, pos, sizeof pos), key, cs->format, other, b0, (long long)C, b3,
                        (long long)H, qat_quantizer_format(q[0]), qat_quantizer_format(q[3]), okey, lo, cs->format,
                        lo, okey);
    }
    return QAT_OK;
}

int qat_model_check(const qat_config *cfg, const qat_model_shape *s) {
    qat_gradq gq;
    QAT_TRY(check_sizes(cfg, s, &gq));
    qat_quantizer *qa[4] = {NULL}, *qw[4] = {NULL};
    /* unsized: a block of dim 65536 would be 13 GB of weight masks alone */
    int rc = make_block_pairs(cfg, s, 1, 0, 0, qa, qw);
    if (!rc) rc = one_block_per_side(cfg, s, qa, qw);
    for (int j = 0; j < 4; j++) {
        qat_quantizer_free(qa[j]);
        qat_quantizer_free(qw[j]);
    }
    return rc;
}

int qat_model_create(const qat_config *cfg, const qat_model_shape *s, int max_batch, qat_model **out) {
    int bf16 = strcmp(cfg->train.precision, "bf16") == 0;
    qat_gradq gq;
    QAT_TRY(check_sizes(cfg, s, &gq));
    qat_model *m = qat_xcalloc(1, sizeof *m);
    m->bf16 = bf16;
    m->gq = gq;
    m->s = *s;
    m->max_batch = max_batch;
    int64_t C = s->dim, H = s->hidden, V = s->vocab, L = s->layers;
    m->n_params = qat_model_count_params(s);
    m->n_total = 2 * V * C + L * (2 * C + 4 * C * C + 3 * C * H) + C;
    QAT_ASSERT(m->n_total == m->n_params + 2 * V * C);
    m->params = qat_xaligned((size_t)m->n_total * sizeof(float));
    m->grads = qat_xaligned((size_t)m->n_total * sizeof(float));
    memset(m->grads, 0, (size_t)m->n_total * sizeof(float));
    m->blocks = qat_xcalloc((size_t)L, sizeof *m->blocks);

    int64_t off = 0;
    tensor_at(&m->wte, m->params, m->grads, &off, 2, (int64_t[]){V, C});
    for (int l = 0; l < L; l++) {
        qat_block *b = &m->blocks[l];
        tensor_at(&b->norm1, m->params, m->grads, &off, 1, (int64_t[]){C});
        tensor_at(&b->wqkv, m->params, m->grads, &off, 2, (int64_t[]){3 * C, C});
        tensor_at(&b->wo, m->params, m->grads, &off, 2, (int64_t[]){C, C});
        tensor_at(&b->norm2, m->params, m->grads, &off, 1, (int64_t[]){C});
        tensor_at(&b->wgu, m->params, m->grads, &off, 2, (int64_t[]){2 * H, C});
        tensor_at(&b->wdown, m->params, m->grads, &off, 2, (int64_t[]){C, H});
    }
    tensor_at(&m->norm_f, m->params, m->grads, &off, 1, (int64_t[]){C});
    tensor_at(&m->lm_head, m->params, m->grads, &off, 2, (int64_t[]){V, C});
    QAT_ASSERT(off == m->n_total);

    /* initialisation: value i of the flat buffer from hash(seed, i) */
    uint64_t key = qat_hash3(cfg->seed, 0x1417ull, 0);
    double std = s->init_std, std_out = s->init_std / sqrt(2.0 * L);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m->n_total; i++) m->params[i] = (float)(std * qat_normal_at(key, (uint64_t)i));
    for (int l = 0; l < L; l++) {
        qat_block *b = &m->blocks[l];
        for (int64_t j = 0; j < C; j++) b->norm1.data[j] = b->norm2.data[j] = 1.0f;
        for (int64_t j = 0; j < b->wo.numel; j++) b->wo.data[j] *= (float)(std_out / std);
        for (int64_t j = 0; j < b->wdown.numel; j++) b->wdown.data[j] *= (float)(std_out / std);
    }
    for (int64_t j = 0; j < C; j++) m->norm_f.data[j] = 1.0f;

    /* quantizers: one pair per block linear */
    int max_rows = max_batch * s->seq_len;
    for (int l = 0; l < L; l++) {
        qat_block *b = &m->blocks[l];
        uint64_t sd = qat_hash3(cfg->seed, 0xC0DEull, (uint64_t)l);
        for (int j = 0; j < 4; j++) b->gkey[j] = qat_hash3(cfg->seed, 0x6AD0ull, (uint64_t)(4 * l + j));
        int rc = make_block_pairs(cfg, s, max_rows, sd, 1, b->qa, b->qw);
        if (rc) { qat_model_free(m); return rc; }
    }
    int rc = L > 0 ? one_block_per_side(cfg, s, m->blocks[0].qa, m->blocks[0].qw) : QAT_OK;
    if (rc) {
        qat_model_free(m);
        return rc;
    }
    /* views: Hugging Face names, PyTorch layouts, then quantizer parameters */
    int n_q = 0;
    for (int l = 0; l < L; l++)
        for (int j = 0; j < 4; j++) {
            float *v, *g;
            n_q += qat_quantizer_params(m->blocks[l].qa[j], &v, &g) > 0;
            n_q += qat_quantizer_params(m->blocks[l].qw[j], &v, &g) > 0;
        }
    m->views = qat_xcalloc((size_t)(4 + 9 * L + n_q), sizeof *m->views);
    char nm[96];
    add_view(m, "model.embed_tokens.weight", m->wte.data, m->wte.grad, 2, V, C, 0);
    for (int l = 0; l < L; l++) {
        qat_block *b = &m->blocks[l];
#define NAME(fmt) (snprintf(nm, sizeof nm, "model.layers.%d." fmt, l), nm)
        add_view(m, NAME("input_layernorm.weight"), b->norm1.data, b->norm1.grad, 1, C, 1, 0);
        add_rows(m, NAME("self_attn.q_proj.weight"), &b->wqkv, 0, C, 1);
        add_rows(m, NAME("self_attn.k_proj.weight"), &b->wqkv, C, C, 1);
        add_rows(m, NAME("self_attn.v_proj.weight"), &b->wqkv, 2 * C, C, 1);
        add_rows(m, NAME("self_attn.o_proj.weight"), &b->wo, 0, C, 1);
        add_view(m, NAME("post_attention_layernorm.weight"), b->norm2.data, b->norm2.grad, 1, C, 1, 0);
        add_rows(m, NAME("mlp.gate_proj.weight"), &b->wgu, 0, H, 1);
        add_rows(m, NAME("mlp.up_proj.weight"), &b->wgu, H, H, 1);
        add_rows(m, NAME("mlp.down_proj.weight"), &b->wdown, 0, C, 1);
#undef NAME
    }
    add_view(m, "model.norm.weight", m->norm_f.data, m->norm_f.grad, 1, C, 1, 0);
    add_view(m, "lm_head.weight", m->lm_head.data, m->lm_head.grad, 2, V, C, 0);
    static const char *which[4] = {"qkv", "o", "gate_up", "down"};
    for (int l = 0; l < L; l++)
        for (int j = 0; j < 4; j++)
            for (int side = 0; side < 2; side++) {
                qat_quantizer *q = side ? m->blocks[l].qw[j] : m->blocks[l].qa[j];
                float *v, *g;
                int64_t n = qat_quantizer_params(q, &v, &g);
                if (n <= 0) continue;
                snprintf(nm, sizeof nm, "compress.layers.%d.%s.%s.params", l, which[j], side ? "weight" : "input");
                add_view(m, nm, v, g, 1, n, 1, 0);
                m->views[m->n_views - 1].kind = QAT_PARAM_COMPRESS;
            }
    *out = m;
    return QAT_OK;
}

void qat_model_free(qat_model *m) {
    if (!m) return;
    for (int l = 0; m->blocks && l < m->s.layers; l++)
        for (int j = 0; j < 4; j++) {
            if (m->blocks[l].qa[j]) qat_quantizer_free(m->blocks[l].qa[j]);
            if (m->blocks[l].qw[j]) qat_quantizer_free(m->blocks[l].qw[j]);
        }
    free(m->blocks);
    free(m->views);
    free(m->params);
    free(m->grads);
    free(m);
}

double qat_model_step_bytes(const qat_model_shape *s, int64_t tokens) {
    /* the tensors qat_model_logits records per token, each with its gradient
     * (4 + 4 bytes a value): the embedding (C); per block qkv (3C), attention
     * (C), o (C), the residual and norm after it (2C), gate|up (2H), SwiGLU (H),
     * down (C), the residual and next norm (2C), so 10C + 3H; the logits (V).
     * Not counted: quantized copies of linear inputs, per-row statistics, the
     * attention's per-thread scratch, the loss's rows: small beside these, and
     * leaving them out keeps this a lower bound (tests/test_model.c measures it) */
    double C = s->dim, H = s->hidden, V = s->vocab, L = s->layers;
    return 8.0 * (double)tokens * (C + L * (10 * C + 3 * H) + V);
}

qat_tensor *qat_model_logits(qat_model *m, qat_tape *tp, const int32_t *inputs, int B, int64_t step) {
    const qat_model_shape *s = &m->s;
    int64_t T = s->seq_len, M = (int64_t)B * T;
    QAT_ASSERT(B <= m->max_batch);
    float eps = (float)s->norm_eps;
    tp->bf16 = m->bf16;
    qat_tensor *x = qat_embedding(tp, &m->wte, inputs, M);                            // (M, C)
    qat_tensor *h = qat_rmsnorm_for(tp, x, &m->blocks[0].norm1, eps, m->blocks[0].qa[0], step); // (M, C)
    /* every later norm comes right after a residual add: one fused pass each. In a
     * bf16 step qkv, o, gu and down each have one consumer, which writes their
     * gradient's bf16 copy alone (autograd/tensor.h; attention does with its bf16
     * kernels). Each linear is its input's only consumer:
     * the norms and SwiGLU write what it reads (qat_rmsnorm_for, autograd/ops.h),
     * its input quantizer's rows rounded as they are written when it has one; and
     * they read their output's gradient row by row, so a quantized linear leaves
     * its input quantizer's backward to that read (qat_tensor_grad_by_rows) */
    for (int l = 0; l < s->layers; l++) {
        qat_block *b = &m->blocks[l];
        qat_tensor_grad_by_rows(h);
        qat_tensor *qkv = qat_linear_gq(tp, h, &b->wqkv, b->qa[0], b->qw[0], &m->gq, b->gkey[0], step); // (M, 3C)
        qat_tensor_grad_bf16_only(qkv);
        qat_tensor *att = qat_rope_attention(tp, qkv, B, T, s->heads, s->rope_theta);  // (M, C)
        qat_tensor *o = qat_linear_gq(tp, att, &b->wo, b->qa[1], b->qw[1], &m->gq, b->gkey[1], step); // (M, C)
        qat_tensor_grad_bf16_only(o);
        qat_tensor *h2 = qat_add_rmsnorm_for(tp, x, o, &b->norm2, eps, &x, b->qa[2], step); // x += o; h2 (M, C)
        qat_tensor_grad_by_rows(h2);
        qat_tensor *gu = qat_linear_gq(tp, h2, &b->wgu, b->qa[2], b->qw[2], &m->gq, b->gkey[2], step); // (M, 2H)
        qat_tensor_grad_bf16_only(gu);
        qat_tensor *act = qat_swiglu_for(tp, gu, b->qa[3], step);                    // (M, H)
        qat_tensor_grad_by_rows(act);
        qat_tensor *dn = qat_linear_gq(tp, act, &b->wdown, b->qa[3], b->qw[3], &m->gq, b->gkey[3], step); // (M, C)
        qat_tensor_grad_bf16_only(dn);
        qat_tensor *wn = l + 1 < s->layers ? &m->blocks[l + 1].norm1 : &m->norm_f;
        /* the next norm feeds the next block's q|k|v, or the unquantized head */
        qat_quantizer *next = l + 1 < s->layers ? m->blocks[l + 1].qa[0] : NULL;
        h = qat_add_rmsnorm_for(tp, x, dn, wn, eps, &x, next, step);                  // x += down; next norm (M, C)
    }
    return qat_linear(tp, h, &m->lm_head, NULL, NULL, step);                          // (M, V)
}

qat_tensor *qat_model_forward(qat_model *m, qat_tape *tp, const int32_t *inputs, const int32_t *targets,
                              int B, int64_t step) {
    return qat_cross_entropy(tp, qat_model_logits(m, tp, inputs, B, step), targets); // (1)
}

void qat_model_zero_grad(qat_model *m, uint64_t epoch) {
    memset(m->grads, 0, (size_t)m->n_total * sizeof(float));
    m->wte.grad_epoch = m->norm_f.grad_epoch = m->lm_head.grad_epoch = epoch;
    for (int l = 0; l < m->s.layers; l++) {
        qat_block *b = &m->blocks[l];
        b->norm1.grad_epoch = b->wqkv.grad_epoch = b->wo.grad_epoch = epoch;
        b->norm2.grad_epoch = b->wgu.grad_epoch = b->wdown.grad_epoch = epoch;
    }
    for (int i = 0; i < m->n_views; i++)
        if (m->views[i].kind == QAT_PARAM_COMPRESS)
            memset(m->views[i].grad, 0, (size_t)m->views[i].n * sizeof(float));
}

void qat_model_after_step(qat_model *m, int64_t step) {
    for (int l = 0; l < m->s.layers; l++) {
        qat_block *b = &m->blocks[l];
        qat_tensor *w[4] = {&b->wqkv, &b->wo, &b->wgu, &b->wdown};
        for (int j = 0; j < 4; j++) qat_quantizer_after_step(b->qw[j], w[j]->data, step);
    }
}

int qat_model_compress_state_count(const qat_model *m) {
    int n = 0;
    for (int l = 0; l < m->s.layers; l++)
        for (int j = 0; j < 4; j++)
            n += qat_quantizer_state_count(m->blocks[l].qa[j]) + qat_quantizer_state_count(m->blocks[l].qw[j]);
    return n;
}

/* The i-th state array's layer, linear, side and index within its quantizer. */
static qat_quantizer *state_at(qat_model *m, int i, int *layer, int *j, int *side, int *k) {
    for (int l = 0; l < m->s.layers; l++)
        for (int jj = 0; jj < 4; jj++)
            for (int sd = 0; sd < 2; sd++) {
                qat_quantizer *q = sd ? m->blocks[l].qw[jj] : m->blocks[l].qa[jj];
                int cnt = qat_quantizer_state_count(q);
                if (i < cnt) {
                    *layer = l, *j = jj, *side = sd, *k = i;
                    return q;
                }
                i -= cnt;
            }
    QAT_ASSERT(!"compress state index out of range");
    return NULL;
}

void qat_model_compress_state(qat_model *m, int i, char name[96], float **data, int64_t *n) {
    static const char *which[4] = {"qkv", "o", "gate_up", "down"};
    int l, j, side, k;
    qat_quantizer *q = state_at(m, i, &l, &j, &side, &k);
    const char *sub;
    qat_quantizer_state(q, k, &sub, data, n);
    snprintf(name, 96, "layers.%d.%s.%s.%s", l, which[j], side ? "weight" : "input", sub);
}

qat_quantizer *qat_model_compress_state_owner(qat_model *m, int i, int *k, int *j, int *is_weight) {
    int l;
    return state_at(m, i, &l, j, is_weight, k);
}

const char *qat_model_weight_format(const qat_model *m) { return qat_quantizer_format(m->blocks[0].qw[0]); }
const char *qat_model_act_format(const qat_model *m) { return qat_quantizer_format(m->blocks[0].qa[0]); }
const char *qat_model_estimator(const qat_model *m) { return qat_quantizer_estimator(m->blocks[0].qw[0]); }
