/*
 * train/init.c — a run's starting point from a checkpoint (`qat train --init`).
 *
 * Three jobs, in order: read the source's /params into the new model (every
 * tensor by name and shape, so a different preset, width or vocabulary is
 * refused naming the tensor, never silently truncated), decide the quantizers'
 * starting state per side (weights, activations: carried when the side's
 * quantizers are the source's, qat_quantizer_carry, so a changed activation
 * format or backward leaves the weights' learned state alone, and aqMxBgG's
 * codebooks survive ste -> pv; else derived from the loaded weights, with LSQ's
 * per-row weight steps chosen by an MSE search and aqMxBgG's codebooks fitted by
 * k-means), and evaluate the result before training (the PTQ loss). Where the
 * source's forward was its PV codes (pv_lr > 0, which never reads /params after
 * its first step) and this run's quantizer reads the weight tensor (it follows
 * it, or starts its state from it), the tensor starts from those codes, decoded
 * by the source's own quantizers, not from the stale /params: whether or not the
 * state is carried.
 *
 * The hash identifies the source's weights as stored, not the file and not the
 * decoded codes: SHA-256 over the /params
 * tensors in byte order of their names, each as name, NUL, shape (int64
 * little-endian) and float32 little-endian data. Re-saving the same weights
 * (another optimizer state, another config attribute, HDF5 layout) keeps it;
 * any changed weight changes it. docs/files.md shows the same computation in
 * Python.
 */
#include "init.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/tape.h"
#include "compress/hadamard.h"
#include "compress/quantizer.h"
#include "core/error.h"
#include "data/dataset.h"
#include "runio.h"
#include "runlog/checkpoint.h"
#include "sha256.h"
#include "trainer.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "init_hash hashes the in-memory float32 and int64 bytes as little-endian"
#endif

/* Clip factors of the LSQ step search: k·s0 for k on a geometric grid from
 * 0.1 to 2 (the default step s0 = 2·mean|w|/sqrt(Q_P) is about 1.8× the
 * MSE-optimal step of a Gaussian row at 4 bits and 4.5× at 8 bits, and 0.6× at
 * 1 bit), plus k = 1 itself, so the chosen step is never worse than the default. */
#define SEARCH_K 40
#define SEARCH_KMIN 0.1
#define SEARCH_KMAX 2.0

/* 106816 -> "106,816" */
static void with_commas(long long v, char *out, size_t n) {
    char d[32];
    snprintf(d, sizeof d, "%lld", v < 0 ? -v : v);
    size_t len = strlen(d), k = 0;
    if (v < 0 && k + 1 < n) out[k++] = '-';
    for (size_t i = 0; i < len && k + 2 < n; i++) {
        if (i && (len - i) % 3 == 0) out[k++] = ',';
        out[k++] = d[i];
    }
    out[k] = 0;
}

/* "[256, 32]" */
static void shape_text(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static int cmp_views(const void *a, const void *b) {
    const qat_param_view *x = *(const qat_param_view *const *)a, *y = *(const qat_param_view *const *)b;
    return strcmp(x->name, y->name);
}

/* SHA-256 of the model's weight views (docs/files.md, init_hash). */
static void hash_params(const qat_model *m, char out[80]) {
    const qat_param_view **v = qat_xcalloc((size_t)m->n_views, sizeof *v);
    int n = 0;
    for (int i = 0; i < m->n_views; i++)
        if (m->views[i].kind == QAT_PARAM_WEIGHT) v[n++] = &m->views[i];
    qsort(v, (size_t)n, sizeof *v, cmp_views);
    qat_sha256 s;
    qat_sha256_init(&s);
    for (int i = 0; i < n; i++) {
        qat_sha256_update(&s, v[i]->name, strlen(v[i]->name) + 1);
        int64_t shape[2] = {v[i]->shape[0], v[i]->shape[1]};
        qat_sha256_update(&s, shape, sizeof(int64_t) * (size_t)v[i]->ndim);
        qat_sha256_update(&s, v[i]->data, sizeof(float) * (size_t)v[i]->n);
    }
    char hex[65];
    qat_sha256_hex(&s, hex);
    snprintf(out, 80, "sha256:%s", hex);
    free(v);
}

/* 1 when every compress.weights.* and compress.activations.* key of a and b has
 * the same value: the same forward (compress.gradients.* is the backward's). */
static int same_forward(const qat_config *a, const qat_config *b) {
    int same = 1;
    for (int i = 0; same && i < qat_config_key_count(); i++) {
        qat_config_key_info k;
        qat_config_key_get(i, &k);
        if (strncmp(k.key, "compress.weights.", 17) && strncmp(k.key, "compress.activations.", 21)) continue;
        char *x = qat_config_key_text(a, i), *y = qat_config_key_text(b, i);
        same = !strcmp(x, y);
        free(x);
        free(y);
    }
    return same;
}

/* 1 when this run's weight quantizer `to` would read a tensor that the source's
 * `from` stopped reading: `from` computes its forward from its codes (PV with
 * pv_lr > 0, qat_quantizer_follows_weights), and `to` reads the weight tensor,
 * either because it follows it at every step (ste and lsq re-quantize it, aq ste
 * re-encodes its carried codes from it, PV with pv_lr 0 moves its V step's buffer
 * with it) or because it starts its state from it (the weights' state not carried:
 * PV with pv_lr > 0 then projects it at its first forward). A carried PV with
 * pv_lr > 0 reads only its codes: there /params stays as stored. Needs it->side. */
static int reads_stale_params(const qat_init *it, const qat_quantizer *to, const qat_quantizer *from) {
    return !qat_quantizer_follows_weights(from) && (it->side[1] == QAT_CARRY_NONE || qat_quantizer_follows_weights(to));
}

/* What each side reads from the source: layer 0's four linears of this model
 * against those of a one-layer model built with the source's compress keys
 * (every layer pairs its quantizers alike, and a Hadamard block may follow the
 * input width, so all four are asked); a side carries only what all four can.
 * Also whether some weight tensor must start from the source's codes rather than
 * from /params (it->source_codes, reads_stale_params). */
static int decide_carry(qat_init *it, const qat_config *cfg, qat_model *m) {
    qat_config *sc = qat_xmalloc(sizeof *sc);
    *sc = *cfg;
    sc->weights = it->source_cfg->weights;
    sc->activations = it->source_cfg->activations;
    qat_model_shape one = m->s;
    one.layers = 1;
    qat_model *sm = NULL;
    int rc = qat_model_create(sc, &one, 1, &sm);
    for (int side = 0; !rc && side < 2; side++) {
        it->side[side] = QAT_CARRY_ALL;
        for (int j = 0; j < 4; j++) {
            qat_quantizer *to = side ? m->blocks[0].qw[j] : m->blocks[0].qa[j];
            qat_quantizer *from = side ? sm->blocks[0].qw[j] : sm->blocks[0].qa[j];
            qat_carry c = qat_quantizer_carry(to, from);
            if (j == 0 || c < it->side[side]) {
                qat_quantizer_state_key(from, it->key_was[side], sizeof it->key_was[side]);
                qat_quantizer_state_key(to, it->key_now[side], sizeof it->key_now[side]);
            }
            if (c < it->side[side]) it->side[side] = c;
        }
    }
    for (int j = 0; !rc && j < 4; j++)
        it->source_codes |= reads_stale_params(it, m->blocks[0].qw[j], sm->blocks[0].qw[j]);
    qat_model_free(sm);
    free(sc);
    return rc;
}

/* Every /params tensor of the file must be one of the model's: a source with
 * more layers would otherwise load its first layers and drop the rest. */
static int check_no_extra(qat_ckpt_file *f, const char *path, const qat_model *m, const qat_ckpt_attrs *a) {
    char **names;
    int n;
    QAT_TRY(qat_ckpt_list(f, "params", &names, &n));
    int rc = QAT_OK;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i] + strlen("params/");
        int found = 0;
        for (int j = 0; j < m->n_views && !found; j++)
            found = m->views[j].kind == QAT_PARAM_WEIGHT && !strcmp(m->views[j].name, nm);
        if (!found && !rc)
            rc = qat_fail(QAT_EINPUT, "%s: /%s is not a tensor of the model this config builds (the source has %d "
                          "layers, the config %d); expected a checkpoint of the same model.layers", path, names[i],
                          a->layers, m->s.layers);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* LSQ weight steps by MSE: for each row, the step k·s0 with the smallest
 * squared error of the quantized row, over the clip grid above. The error is
 * measured in the rotated basis the grid works in (the rotation is orthonormal,
 * so it is also the error of the weights themselves); the quantizer's own
 * forward rounds, so the search uses exactly the grid training will. */
static void search_lsq_steps(qat_init *it, const qat_config *cfg, qat_model *m) {
    for (int l = 0; l < m->s.layers; l++) {
        qat_block *b = &m->blocks[l];
        qat_tensor *w[4] = {&b->wqkv, &b->wo, &b->wgu, &b->wdown};
        for (int j = 0; j < 4; j++) {
            qat_quantizer *q = b->qw[j];
            if (strcmp(qat_quantizer_estimator(q), "lsq")) continue;
            float *s, *g;
            int64_t rows = qat_quantizer_params(q, &s, &g);
            int64_t cols = w[j]->numel / rows;
            QAT_ASSERT(rows > 0 && rows * cols == w[j]->numel);
            int block = 0;
            if (qat_hadamard_block(cfg->weights.hadamard, cols, &block)) QAT_ASSERT(!"validated config");
            size_t nb = sizeof(float) * (size_t)(rows * cols);
            float *y = qat_xmalloc(nb), *yq = qat_xmalloc(nb), *s0 = qat_xmalloc(sizeof(float) * (size_t)rows);
            double *best = qat_xmalloc(sizeof(double) * (size_t)rows);
            float *best_s = qat_xmalloc(sizeof(float) * (size_t)rows);
            for (int64_t r = 0; r < rows; r++) {
                if (block) qat_hadamard_row_copy(w[j]->data + r * cols, y + r * cols, cols, block);
                else memcpy(y + r * cols, w[j]->data + r * cols, sizeof(float) * (size_t)cols);
            }
            /* The first forward sets the default steps s0 (and marks them set). */
            qat_quantizer_forward(q, w[j]->data, yq, rows, 0);
            memcpy(s0, s, sizeof(float) * (size_t)rows);
            for (int k = -1; k < SEARCH_K; k++) {
                double f = k < 0 ? 1.0 : SEARCH_KMIN * pow(SEARCH_KMAX / SEARCH_KMIN, (double)k / (SEARCH_K - 1));
                if (k >= 0) {
                    for (int64_t r = 0; r < rows; r++) s[r] = (float)fmax(f * s0[r], 1e-8);
                    qat_quantizer_forward(q, w[j]->data, yq, rows, 0);
                }
#pragma omp parallel for schedule(static)
                for (int64_t r = 0; r < rows; r++) {
                    double e = 0;
                    for (int64_t c = 0; c < cols; c++) {
                        double d = (double)yq[r * cols + c] - y[r * cols + c];
                        e += d * d;
                    }
                    if (k < 0 || e < best[r]) best[r] = e, best_s[r] = k < 0 ? s0[r] : s[r];
                }
                if (k < 0) /* summed in row order, not by the threads */
                    for (int64_t r = 0; r < rows; r++) it->mse_default += best[r];
            }
            memcpy(s, best_s, sizeof(float) * (size_t)rows);
            for (int64_t r = 0; r < rows; r++) it->mse_best += best[r];
            it->n_searched++;
            free(y), free(yq), free(s0), free(best), free(best_s);
        }
    }
}

/* aqMxBgG weights: the quantizer's first forward fits the codebooks by k-means
 * to the loaded weights (compress/estimator_aq.c); doing it here, once, makes
 * the fit the PTQ model and lets the run report its squared error (in the
 * rotated basis the codes live in, like the LSQ search above). */
static void fit_aq_codebooks(qat_init *it, qat_model *m) {
    for (int l = 0; l < m->s.layers; l++) {
        qat_block *b = &m->blocks[l];
        qat_tensor *w[4] = {&b->wqkv, &b->wo, &b->wgu, &b->wdown};
        for (int j = 0; j < 4; j++) {
            qat_quantizer *q = b->qw[j];
            if (strncmp(qat_quantizer_format(q), "aq", 2)) continue;
            const int64_t rows = w[j]->shape[0], cols = w[j]->shape[1];
            const int block = qat_quantizer_hadamard(q); /* auto may follow the activations' block */
            size_t nb = sizeof(float) * (size_t)(rows * cols);
            float *y = qat_xmalloc(nb), *yq = qat_xmalloc(nb);
            for (int64_t r = 0; r < rows; r++) {
                if (block) qat_hadamard_row_copy(w[j]->data + r * cols, y + r * cols, cols, block);
                else memcpy(y + r * cols, w[j]->data + r * cols, sizeof(float) * (size_t)cols);
            }
            qat_quantizer_forward(q, w[j]->data, yq, rows, 0);
            for (int64_t i = 0; i < rows * cols; i++) { /* in index order: the same sum for any thread count */
                double d = (double)yq[i] - y[i];
                it->fit_err += d * d;
                it->fit_norm += (double)y[i] * y[i];
            }
            it->n_fitted++;
            free(y), free(yq);
        }
    }
}

/* The source as it ran: a model built with its compress keys (this run's shape,
 * precision and data keys), B sequences per batch, holding the checkpoint's
 * weights and quantizer state. */
static int source_model(const qat_init *it, const qat_config *cfg, const qat_model_shape *s, int B, qat_model **out) {
    qat_config *sc = qat_xmalloc(sizeof *sc);
    *sc = *cfg;
    sc->weights = it->source_cfg->weights;
    sc->activations = it->source_cfg->activations;
    qat_model *sm = NULL;
    int rc = qat_model_create(sc, s, B, &sm);
    if (!rc) rc = qat_runio_load_checkpoint(it->path, sc, sm, NULL, NULL, NULL);
    if (!rc) rc = qat_checkpoint_check_finite(it->path, sm, NULL);
    free(sc);
    if (rc) qat_model_free(sm), sm = NULL;
    *out = sm;
    return rc;
}

/* A source weight quantizer that computes its forward from its learned state
 * (PV with pv_lr > 0: its codes; qat_quantizer_follows_weights) stopped reading
 * its /params tensor at its first forward, though its AdamW kept moving it:
 * /params is not the model the source ran. A new quantizer that reads the
 * tensor (reads_stale_params) would follow that stale tensor: started afresh
 * from it (a PTQ loss of 2.727 against the codes' 2.654 in the report that
 * found it), or carried and re-encoding its codes from it (aq1x4g4 pv into ste:
 * 4.6477 against 4.6258 in tests/test_init_e2e.c) or moving its V step's buffer
 * with it (pv_lr 0). So each such tensor is replaced by what the source's own
 * quantizer returns, which the quantizer keeps in the rotated basis of both
 * operands of its product, turned back by H (H·H = I) into the unrotated basis
 * the new model's weights live in. Only the tensors change: the source's
 * forward runs in a model of its own, so state already carried into m stays the
 * file's, bit for bit. The rest of /params (embeddings, norms, tensors whose
 * source quantizer follows its weights, and those this run reads only through
 * carried codes) stays as read. */
static int decode_source_weights(qat_init *it, const qat_config *cfg, qat_model *m) {
    qat_model *sm = NULL;
    QAT_TRY(source_model(it, cfg, &m->s, 1, &sm));
    for (int l = 0; l < m->s.layers; l++) {
        qat_block *b = &m->blocks[l], *sb = &sm->blocks[l];
        qat_tensor *w[4] = {&b->wqkv, &b->wo, &b->wgu, &b->wdown};
        qat_tensor *sw[4] = {&sb->wqkv, &sb->wo, &sb->wgu, &sb->wdown};
        for (int j = 0; j < 4; j++) {
            qat_quantizer *q = sb->qw[j];
            if (!reads_stale_params(it, b->qw[j], q)) continue;
            const int64_t rows = w[j]->shape[0], cols = w[j]->shape[1];
            QAT_ASSERT(rows == sw[j]->shape[0] && cols == sw[j]->shape[1]); /* the shapes were checked by name */
            /* the source's forward at its state: its codes (a source saved before
             * any forward would project its /params, as its first step would) */
            qat_quantizer_forward(q, sw[j]->data, w[j]->data, rows, 0);
            if (qat_quantizer_hadamard(q)) qat_hadamard_rows(w[j]->data, rows, cols, qat_quantizer_hadamard(q));
            it->n_decoded++;
        }
    }
    qat_model_free(sm);
    return QAT_OK;
}

/* Every message names the option as well as the file: "--init MESSAGE[what]". */
static int name_option(int rc, const char *what) {
    if (!rc) return rc;
    char msg[4096];
    snprintf(msg, sizeof msg, "%s", qat_errmsg());
    return qat_fail(rc, "--init %s%s", msg, what);
}

int qat_init_load(qat_init *it, const char *path, const qat_config *cfg, qat_model *m) {
    memset(it, 0, sizeof *it);
    snprintf(it->path, sizeof it->path, "%s", path);
    char *abs = realpath(path, NULL); /* NULL: a missing file, reported by the open below */
    snprintf(it->abspath, sizeof it->abspath, "%s", abs ? abs : path);
    free(abs);
    qat_ckpt_file *f = NULL;
    int rc = qat_ckpt_open(path, &f);
    qat_ckpt_attrs a;
    if (!rc) rc = qat_ckpt_read_attrs(f, &a);
    char *yaml = NULL;
    if (!rc) rc = qat_ckpt_read_config(f, &yaml);
    if (!rc) {
        it->source_cfg = qat_xmalloc(sizeof *it->source_cfg);
        rc = qat_runio_stored_config(yaml, path, it->source_cfg);
    }
    free(yaml);
    /* Every tensor by name and shape: the message names the file, the tensor and both shapes. */
    for (int i = 0; !rc && i < m->n_views; i++) {
        qat_param_view *v = &m->views[i];
        if (v->kind != QAT_PARAM_WEIGHT) continue;
        char name[128];
        snprintf(name, sizeof name, "params/%s", v->name);
        int nd;
        int64_t sh[QAT_CKPT_MAX_DIMS];
        rc = qat_ckpt_array_shape(f, name, &nd, sh);
        int same = !rc && nd == v->ndim;
        for (int d = 0; same && d < nd; d++) same = sh[d] == v->shape[d];
        if (!rc && !same) {
            char got[64], want[64];
            shape_text(got, sizeof got, nd, sh);
            shape_text(want, sizeof want, v->ndim, v->shape);
            rc = qat_fail(QAT_EINPUT, "%s: tensor %s is %s in the checkpoint but %s in the model this config builds "
                          "(source: %s%sd = %d, %d layers, vocab %d; config: d = %d, %d layers, vocab %d); expected a "
                          "checkpoint of the same model shape", path, v->name, got, want, it->source_cfg->model.preset,
                          it->source_cfg->model.preset[0] ? " " : "", a.dim, a.layers, a.vocab, m->s.dim, m->s.layers,
                          m->s.vocab);
        }
        if (!rc) rc = qat_ckpt_read_array(f, name, v->ndim, v->shape, v->data);
    }
    if (!rc) rc = check_no_extra(f, path, m, &a);
    /* heads split the same shapes differently: loading would run another model */
    if (!rc && a.heads != m->s.heads)
        rc = qat_fail(QAT_EINPUT, "%s: the source has model.heads = %d, the config %d: the tensors fit, but attention "
                      "would split them into other heads; expected model.heads: %d", path, a.heads, m->s.heads, a.heads);
    if (!rc) rc = qat_checkpoint_check_finite(path, m, NULL);
    if (!rc) {
        hash_params(m, it->hash);
        it->same_forward = same_forward(it->source_cfg, cfg);
        rc = decide_carry(it, cfg, m);
        it->carried = !rc && it->side[0] != QAT_CARRY_NONE && it->side[1] != QAT_CARRY_NONE;
        /* A carried side's quantizers are the source's, so their state arrays have
         * the same names and sizes and mean the same thing; under QAT_CARRY_FORMAT
         * only the format's (aq codebooks, scales, codes), the estimator's own
         * starting fresh from them at the first forward. */
        int ns = qat_model_compress_state_count(m), nread = 0;
        for (int i = 0; !rc && i < ns; i++) {
            int k, j, w;
            qat_quantizer *q = qat_model_compress_state_owner(m, i, &k, &j, &w);
            if (it->side[w] == QAT_CARRY_NONE || (it->side[w] == QAT_CARRY_FORMAT && !qat_quantizer_state_of_format(q, k)))
                continue;
            char sname[96], aname[128];
            float *data;
            int64_t n;
            qat_model_compress_state(m, i, sname, &data, &n);
            snprintf(aname, sizeof aname, "compress/%s", sname);
            rc = qat_ckpt_read_array(f, aname, 1, &n, data);
            nread++;
        }
        if (!rc && nread) rc = qat_checkpoint_check_finite(path, m, NULL);
    }
    qat_ckpt_close(f);
    /* The weight tensors this run reads are those the source's forward computed
     * with (after the carried state was read, which the decode leaves alone); a
     * weights side started afresh then starts from them: the LSQ search and the
     * k-means fit. */
    if (!rc && it->source_codes) rc = decode_source_weights(it, cfg, m);
    if (!rc && it->side[1] == QAT_CARRY_NONE) search_lsq_steps(it, cfg, m);
    if (!rc && it->side[1] == QAT_CARRY_NONE) fit_aq_codebooks(it, m);
    if (!rc) {
        const qat_config *s = it->source_cfg;
        char n[32];
        with_commas((long long)m->n_params, n, sizeof n);
        if (s->model.preset[0]) snprintf(it->source, sizeof it->source, "%s, N = %s", s->model.preset, n);
        else snprintf(it->source, sizeof it->source, "d = %d, %d layers, N = %s", a.dim, a.layers, n);
        snprintf(it->source_formats, sizeof it->source_formats, "%s/%s", a.weight_format, a.act_format);
    }
    return name_option(rc, "");
}

/* All quantizer state of m, one array after another: saved into a new
 * buffer (buf NULL, restore 0, returned), or written back from buf (restore 1). */
static float *state_copy(qat_model *m, float *buf, int restore) {
    int ns = qat_model_compress_state_count(m);
    if (!restore) {
        int64_t total = 1;
        for (int i = 0; i < ns; i++) {
            char nm[96];
            float *d;
            int64_t n;
            qat_model_compress_state(m, i, nm, &d, &n);
            total += n;
        }
        buf = qat_xmalloc(sizeof(float) * (size_t)total);
    }
    int64_t off = 0;
    for (int i = 0; i < ns; i++) {
        char nm[96];
        float *d;
        int64_t n;
        qat_model_compress_state(m, i, nm, &d, &n);
        if (restore) memcpy(d, buf + off, sizeof(float) * (size_t)n);
        else memcpy(buf + off, d, sizeof(float) * (size_t)n);
        off += n;
    }
    return buf;
}

int qat_init_evaluate(qat_init *it, const qat_config *cfg, qat_model *m, qat_tape *tp, const qat_dataset *ds,
                      int B, int32_t *in, int32_t *tg, const volatile sig_atomic_t *stop) {
    /* The evaluation's forward would set what a first forward sets (an
     * activation step from a held-out batch, PV's first projection): keep the
     * state as it was, so training starts exactly as without the evaluation. */
    float *saved = state_copy(m, NULL, 0);
    it->ptq_loss = it->source_loss = NAN;
    int done = qat_train_evaluate_until(m, tp, ds, B, cfg->train.eval_tokens, in, tg, 0, stop, &it->ptq_loss);
    state_copy(m, saved, 1);
    free(saved);
    if (!done) return QAT_OK; /* stopped by *stop: the caller says so */
    if (it->same_forward && it->carried) {
        it->source_loss = it->ptq_loss; /* the same quantizers and their state: the same forward */
        return QAT_OK;
    }
    /* The source through its own formats, with its own quantizer state. */
    qat_model *sm = NULL;
    int rc = source_model(it, cfg, &m->s, B, &sm);
    if (!rc) qat_train_evaluate_until(sm, tp, ds, B, cfg->train.eval_tokens, in, tg, 0, stop, &it->source_loss);
    qat_model_free(sm);
    return name_option(rc, " (evaluating the source through its own formats)");
}

const char *qat_init_side_state(const qat_init *it, int is_weight) {
    return it->side[is_weight ? 1 : 0] == QAT_CARRY_NONE ? "projected" : "carried";
}

const char *qat_init_state(const qat_init *it) {
    int w = it->side[1] != QAT_CARRY_NONE, a = it->side[0] != QAT_CARRY_NONE;
    return w && a ? "carried" : w || a ? "partial" : "projected";
}

void qat_init_describe_state(const qat_init *it, const char *sep, char *buf, size_t n) {
    if (it->same_forward && it->carried) {
        /* nothing decoded: the source's quantizers again read what the source did */
        QAT_ASSERT(!it->n_decoded);
        snprintf(buf, n, "quantizer state carried from the source (the same quantizers)");
        return;
    }
    size_t k = 0;
    for (int w = 1; w >= 0 && k < n; w--) {
        const char *name = w ? "weights" : "activations", *s = w ? "" : sep;
        if (it->side[w] == QAT_CARRY_ALL)
            k += (size_t)snprintf(buf + k, n - k, "%s%s' quantizer state carried from the source, %s", s, name,
                                  it->key_now[w]);
        else if (it->side[w] == QAT_CARRY_FORMAT)
            k += (size_t)snprintf(buf + k, n - k, "%s%s' quantizer state carried from the source: the aq codebooks, "
                                  "scales and codes of %s, read by %s%s", s, name, it->key_was[w], it->key_now[w],
                                  strstr(it->key_now[w], "estimator pv") ? "; PV's buffers start from them" : "");
        else
            k += (size_t)snprintf(buf + k, n - k, "%s%s' quantizer state derived afresh: %s, was %s", s, name,
                                  it->key_now[w], it->key_was[w]);
        if (w && it->n_decoded && k < n)
            k += (size_t)snprintf(buf + k, n - k, "%sweights start from the source's forward (%d tensors): its codes "
                                  "as %s returns them%s, not its /params (that forward stops reading them at its first "
                                  "step)", sep, it->n_decoded, it->key_was[1],
                                  strstr(it->key_was[1], "Hadamard") ? ", rotated back" : "");
    }
}

void qat_init_free(qat_init *it) {
    free(it->source_cfg);
    it->source_cfg = NULL;
}
