/*
 * runlog/checkpoint.h — checkpoints, OUT/NAME/ckpt.h5 (docs/files.md).
 *
 * A checkpoint is a list of named float32 arrays plus the model's shape
 * attributes and the training state needed to resume bit-for-bit:
 *
 *   /params/NAME             latent weights, HF Llama names, PyTorch layouts
 *   /optim/m/NAME, /optim/v/NAME   AdamW moments
 *   /compress/...            format parameters (learned scales, codes)
 *   /  attributes            config (resolved YAML), layers, dim, heads, hidden,
 *                            vocab, seq_len (int64), rope_theta, norm_eps
 *                            (float64), weight_format, act_format, estimator,
 *                            precision (fp32 | bf16)
 *   /state/step, tokens, data_pos   int64 scalars
 *   /state/rng               uint64 [n]: the RNG stream states
 *   /state/NAME              any extra int64 or float64 scalar of the trainer
 *
 * This module does not know which arrays a model has: the caller lists them.
 * Writing:
 *
 *     qat_ckpt_array arr[] = {
 *         {"params/model.embed_tokens.weight", 2, {vocab, dim}, emb},
 *         {"optim/m/model.embed_tokens.weight", 2, {vocab, dim}, m_emb}, ...};
 *     qat_ckpt ck = {.arrays = arr, .n_arrays = n};
 *     ck.attrs = (qat_ckpt_attrs){.config_yaml = yaml, .layers = L, ...};
 *     ck.state.step = step; ...; qat_ckpt_state_set_real(&ck.state, "loss_ema", ema);
 *     QAT_TRY(qat_ckpt_write("out/run/ckpt.h5", &ck));
 *
 * The write is atomic: everything goes to PATH.tmp in the same directory,
 * which is flushed, closed and fsync'd, then renamed over PATH, then the
 * directory is fsync'd. A kill (or a full disk) at any point leaves either the
 * previous checkpoint or the new one, never a mix; a stale PATH.tmp is ignored
 * by readers and overwritten by the next write.
 *
 * Reading:
 *
 *     qat_ckpt_file *f;
 *     QAT_TRY(qat_ckpt_open("out/run/ckpt.h5", &f));
 *     qat_ckpt_attrs a;  QAT_TRY(qat_ckpt_read_attrs(f, &a));
 *     int64_t shape[2] = {vocab, dim};
 *     QAT_TRY(qat_ckpt_read_array(f, "params/model.embed_tokens.weight", 2, shape, emb));
 *     qat_ckpt_state st; QAT_TRY(qat_ckpt_read_state(f, &st));
 *     qat_ckpt_close(f);
 *
 * A missing array or a shape mismatch is QAT_EINPUT naming the file, the array
 * and both shapes, e.g. "ckpt.h5: /params/model.norm.weight has shape [64],
 * expected [128]".
 */
#ifndef QAT_RUNLOG_CHECKPOINT_H
#define QAT_RUNLOG_CHECKPOINT_H

#include <stdint.h>

#include "core/config.h"

#define QAT_CKPT_MAX_DIMS 4
#define QAT_CKPT_MAX_RNG 16
#define QAT_CKPT_MAX_EXTRA 32
#define QAT_CKPT_NAME_MAX 64

/* One float32 array: `name` is its path in the file without the leading '/',
 * e.g. "params/model.layers.0.self_attn.q_proj.weight"; groups are created as
 * needed. Dots are fine in names; '/' separates groups. */
typedef struct {
    const char *name;
    int ndim;                          /* 1..QAT_CKPT_MAX_DIMS */
    int64_t shape[QAT_CKPT_MAX_DIMS];  /* row-major, PyTorch order ([out, in] for a Linear) */
    const float *data;                 /* prod(shape) floats */
} qat_ckpt_array;

/* Root attributes: the model's shape, so `qat eval` can rebuild it. */
typedef struct {
    const char *config_yaml;           /* write: resolved config; read: NULL (see qat_ckpt_read_config) */
    int layers, dim, heads, hidden, vocab, seq_len;
    double rope_theta, norm_eps;
    char weight_format[QAT_FMT_MAX];   /* compress.weights.format */
    char act_format[QAT_FMT_MAX];      /* compress.activations.format */
    char estimator[16];                /* estimator in effect */
    char precision[8];                 /* train.precision (fp32 | bf16); "" is written as fp32 */
} qat_ckpt_attrs;

typedef struct {
    char name[QAT_CKPT_NAME_MAX];      /* not step/tokens/data_pos/rng */
    int64_t value;
} qat_ckpt_int;

typedef struct {
    char name[QAT_CKPT_NAME_MAX];
    double value;
} qat_ckpt_real;

/* Everything --resume needs besides the arrays. */
typedef struct {
    int64_t step;                      /* optimizer steps done */
    int64_t tokens;                    /* training tokens seen */
    int64_t data_pos;                  /* position of the data stream */
    uint64_t rng[QAT_CKPT_MAX_RNG];    /* RNG stream states (qat_rng.s) */
    int n_rng;
    qat_ckpt_int ints[QAT_CKPT_MAX_EXTRA];   /* extra named integers */
    int n_ints;
    qat_ckpt_real reals[QAT_CKPT_MAX_EXTRA]; /* extra named doubles (loss EMA, elapsed seconds, ...) */
    int n_reals;
} qat_ckpt_state;

typedef struct {
    qat_ckpt_attrs attrs;
    qat_ckpt_state state;
    const qat_ckpt_array *arrays;
    int n_arrays;
} qat_ckpt;

/* Add or replace an extra state value (QAT_EINPUT when full or the name is
 * reserved/too long); look one up (QAT_EINPUT naming it when absent). */
int qat_ckpt_state_set_int(qat_ckpt_state *s, const char *name, int64_t v);
int qat_ckpt_state_set_real(qat_ckpt_state *s, const char *name, double v);
int qat_ckpt_state_get_int(const qat_ckpt_state *s, const char *name, int64_t *v);
int qat_ckpt_state_get_real(const qat_ckpt_state *s, const char *name, double *v);

/* Write `ck` to `path` atomically (see above). QAT_ERUNTIME on I/O errors,
 * leaving any previous checkpoint at `path` untouched. */
int qat_ckpt_write(const char *path, const qat_ckpt *ck);

typedef struct qat_ckpt_file qat_ckpt_file;

int qat_ckpt_open(const char *path, qat_ckpt_file **out);
void qat_ckpt_close(qat_ckpt_file *f);

/* Shape of array `name`: QAT_EINPUT when missing. */
int qat_ckpt_array_shape(qat_ckpt_file *f, const char *name, int *ndim, int64_t shape[QAT_CKPT_MAX_DIMS]);
/* 1 when array `name` exists; also 1 when the lookup failed on a damaged
 * file, so that the read that follows names the damage instead of taking the
 * array as absent. */
int qat_ckpt_has(qat_ckpt_file *f, const char *name);
/* Read array `name` into `out` after checking it has exactly this shape. */
int qat_ckpt_read_array(qat_ckpt_file *f, const char *name, int ndim, const int64_t *shape, float *out);
/* The names of the arrays under `group` ("params", "optim/m", "compress"),
 * recursively, relative to the file root; caller frees each and the list. */
int qat_ckpt_list(qat_ckpt_file *f, const char *group, char ***names, int *n);

int qat_ckpt_read_attrs(qat_ckpt_file *f, qat_ckpt_attrs *a);
/* The stored config into *yaml (caller frees): QAT_EINPUT when it is missing,
 * QAT_ERUNTIME when it does not match its checksum (the file is damaged). */
int qat_ckpt_read_config(qat_ckpt_file *f, char **yaml);
int qat_ckpt_read_state(qat_ckpt_file *f, qat_ckpt_state *s);

#endif
