/*
 * train/ckpt_model.c — a checkpoint loaded as a model to use (qat eval, sample,
 * grads, and train --init's source): its stored config with the caller's
 * --set overrides, the model built from it, its weights and quantizer state.
 *
 * Kept apart from runio.c, which fills and resumes a live run's files, because
 * what matters here is different: an override may change formats but not
 * shapes (same_shape), learned state (LSQ steps, PV codes, aq codebooks) is
 * read only by the quantizer it was learned for (state_read_as_learned), and
 * every value read is checked finite before anything runs on it. Each refusal
 * names the --set, the file and what is allowed instead (docs/cli.md, "qat eval").
 * An override the command has no use for (a learning rate in eval, a backward
 * format where nothing runs backward) is refused too (qat_check_set_effect):
 * eval once printed the same loss for --set compress.gradients.format=mxfp4
 * with exit 0, so the user could not tell it did nothing.
 */
#include "runio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/gemm.h"
#include "compress/estimator.h"
#include "compress/format.h"
#include "compress/quantizer.h"
#include "core/error.h"
#include "runlog/checkpoint.h"


/* First non-finite value of x[0..n), or -1. */
static int64_t first_non_finite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

static int non_finite(const char *path, const char *prefix, const char *name, const float *x, int64_t n) {
    int64_t i = first_non_finite(x, n);
    if (i < 0) return QAT_OK;
    return qat_fail(QAT_ERUNTIME, "checkpoint %s has non-finite values in %s%s (first at element %lld: %g); "
                    "it cannot be used; take an earlier checkpoint or retrain", path, prefix, name, (long long)i,
                    (double)x[i]);
}

/* A NaN or Inf read from a checkpoint does not stop a forward: eval printed
 * "validation loss nan" and sample printed NUL bytes, both with exit 0. So
 * every loader checks what it read — weights, quantizer state, and with `opt`
 * the AdamW moments — before anything runs on it. */
int qat_checkpoint_check_finite(const char *path, qat_model *m, qat_adamw *opt) {
    for (int i = 0; i < m->n_views; i++) {
        const qat_param_view *v = &m->views[i];
        QAT_TRY(non_finite(path, v->kind == QAT_PARAM_COMPRESS ? "" : "params/", v->name, v->data, v->n));
    }
    for (int i = 0; opt && i < m->n_views; i++) {
        const qat_param_view *v = &m->views[i];
        QAT_TRY(non_finite(path, "optim/m/", v->name, qat_adamw_m(opt, i), v->n));
        QAT_TRY(non_finite(path, "optim/v/", v->name, qat_adamw_v(opt, i), v->n));
    }
    int ns = qat_model_compress_state_count(m);
    for (int i = 0; i < ns; i++) {
        char name[96];
        float *data;
        int64_t n;
        qat_model_compress_state(m, i, name, &data, &n);
        QAT_TRY(non_finite(path, "compress/", name, data, n));
    }
    return QAT_OK;
}

/* Why an override has no effect on a command that takes no optimizer step. */
typedef enum {
    R_NAME,        /* the run's directory */
    R_BUDGET,      /* how long a run trains */
    R_OPTIMIZER,   /* AdamW, its schedule, the gradient clip */
    R_CADENCE,     /* how often a run evaluates, checkpoints, logs */
    R_PV,          /* PV-Tuning's V step, run after an optimizer step */
    R_WEIGHTS,     /* draws or names the starting weights: moot when they are a checkpoint's */
    R_EVAL_TOKENS, /* the held-out tokens of an evaluation */
    R_DATA,        /* the data's source and files, which eval's --data replaces */
    R_BACKWARD,    /* compress.gradients.*: the backward's products */
    R_ESTIMATOR,   /* an estimator's backward rule (which gradients pass the quantizer) */
} no_effect_reason;

/* The keys (or groups, by prefix; "compress.*." is either side) no command that
 * reads a config without training (eval, sample, grads) uses in every case. Every
 * other key acts on the forward, the data or the batch: formats and their
 * estimators (which choose the learned state read and the scale rule), model.seq_len,
 * rope_theta, norm_eps, data.* (but for what eval's --data replaces), threads,
 * train.batch_tokens, train.precision, and seed (grads' batch; in eval only the draws of
 * noise() and @sr, checked with the formats: seed_draws). */
static const struct {
    const char *key;
    no_effect_reason why;
} no_effect[] = {
    {"name", R_NAME},
    {"train.tokens", R_BUDGET},
    {"train.tokens_per_param", R_BUDGET},
    {"train.lr", R_OPTIMIZER},
    {"train.warmup", R_OPTIMIZER},
    {"train.schedule", R_OPTIMIZER},
    {"train.min_lr_ratio", R_OPTIMIZER},
    {"train.weight_decay", R_OPTIMIZER},
    {"train.beta1", R_OPTIMIZER},
    {"train.beta2", R_OPTIMIZER},
    {"train.eps", R_OPTIMIZER},
    {"train.grad_clip", R_OPTIMIZER},
    {"train.eval_every", R_CADENCE},
    {"train.checkpoint_every", R_CADENCE},
    {"train.log_every", R_CADENCE},
    {"compress.*.pv_tau", R_PV},
    {"compress.*.pv_group", R_PV},
    {"compress.*.pv_lr", R_PV},
    {"compress.*.pv_beta2", R_PV},
    {"compress.*.pv_delta_decay", R_PV},
    {"model.init_std", R_WEIGHTS},
    {"train.init", R_WEIGHTS},
    {"train.eval_tokens", R_EVAL_TOKENS},
    {"data.source", R_DATA},
    {"data.shards", R_DATA},
    {"data.val_shards", R_DATA},
    {"data.text", R_DATA},
    {"compress.gradients", R_BACKWARD},
    {"compress.*.clip_scale", R_ESTIMATOR},
    {"compress.*.trust", R_ESTIMATOR},
    {"compress.*.rbbm_p", R_ESTIMATOR},
};

static int rule_matches(const char *rule, const char *key) {
    if (!strncmp(rule, "compress.*.", 11)) {
        const char *leaf = qat_config_key_leaf(key);
        return (!strncmp(key, "compress.weights.", 17) || !strncmp(key, "compress.activations.", 21)) &&
               !strcmp(leaf, rule + 11);
    }
    size_t n = strlen(rule);
    return !strncmp(key, rule, n) && (key[n] == 0 || key[n] == '.');
}

/* Whether the rule applies to what `use` runs; NULL-free. */
static int rule_applies(no_effect_reason why, const qat_ckpt_use *use) {
    switch (why) {
    case R_WEIGHTS: return use->checkpoint;
    case R_EVAL_TOKENS: return !use->tokens || use->tokens[0];
    case R_DATA: return use->data != NULL;
    case R_BACKWARD:
    case R_ESTIMATOR: return !use->backward;
    default: return 1;
    }
}

static int refuse_no_effect(const qat_ckpt_use *use, const char *set, const char *key, no_effect_reason why) {
    const char *cmd = use->command, *leaf = qat_config_key_leaf(key);
    char side[32] = "compress.weights";
    if (!strncmp(key, "compress.activations.", 21)) snprintf(side, sizeof side, "compress.activations");
    /* every refusal: which --set, which key, in which command */
#define NO_EFFECT(fmt, ...) qat_fail(QAT_EINPUT, "--set %s: %s has no effect in %s: " fmt, set, key, cmd, __VA_ARGS__)
    /* a training setting: where it does act */
    const char *train = use->checkpoint ? "expected no --set of it (to train from these weights with it: qat train "
                                          "CONFIG --init CKPT.h5)"
                                        : "expected no --set of it (qat train uses it)";
    switch (why) {
    case R_NAME:
        return NO_EFFECT("it names a training run's directory, and %s writes no run; expected no --set of it", cmd);
    case R_BUDGET:
        return NO_EFFECT("it sets how long a run trains, and %s trains nothing; %s", cmd,
                         train);
    case R_OPTIMIZER:
        return NO_EFFECT("it is a setting of the optimizer step (AdamW, its learning-rate schedule, the gradient "
                         "clip), and %s takes none%s; %s", cmd,
                         use->backward ? " (the gradients it writes are neither clipped nor scaled)" : "",
                         train);
    case R_CADENCE:
        return NO_EFFECT("it sets how often a training run evaluates, checkpoints or logs, and %s runs no training "
                         "loop; %s", cmd, train);
    case R_PV:
        return NO_EFFECT("it is a parameter of PV-Tuning's V step, which runs after an optimizer step, and %s takes "
                         "none (the forward reads the codes as they are); %s", cmd,
                         train);
    case R_WEIGHTS:
        return NO_EFFECT("%s, and the weights %s reads are the checkpoint's; expected no --set of it",
                         !strcmp(key, "train.init") ? "it names the checkpoint a training run starts from"
                                                    : "it draws the initial weights of a new model", cmd);
    case R_EVAL_TOKENS:
        if (use->tokens)
            return NO_EFFECT("%s sets the held-out tokens evaluated instead; expected one of the two", use->tokens);
        return NO_EFFECT("it sets the held-out tokens of an evaluation, and %s evaluates none (%s); expected no "
                         "--set of it", cmd,
                         use->backward ? "its batch is the first training batch, of train.batch_tokens"
                                       : "it reads only the prompt");
    case R_DATA:
        return NO_EFFECT("%s replaces the data's source and files; expected one of the two (data.val_fraction and "
                         "the synthetic corpus's data.synth_* still apply)", use->data);
    case R_BACKWARD:
        return NO_EFFECT("it has no backward pass (compress.gradients.* quantizes the backward's products); expected "
                         "no --set of compress.gradients.*; qat grads --checkpoint CKPT.h5 --out G.h5 --set %s runs "
                         "a backward with it", set);
    case R_ESTIMATOR:
        return NO_EFFECT("it has no backward pass (%s is a parameter of the %s estimator's backward rule: which "
                         "gradients pass the quantizer); expected no --set of %s.%s (%s.estimator may change: it "
                         "chooses the learned state and scale the forward reads)", leaf,
                         !strcmp(leaf, "clip_scale") ? "clip" : !strcmp(leaf, "trust") ? "trust" : "rbbm", side, leaf,
                         side);
    }
#undef NO_EFFECT
    QAT_ASSERT(0);
    return QAT_EINPUT;
}

int qat_check_set_effect(const qat_ckpt_use *use, const char *const *sets, int n_set) {
    int nk = qat_config_key_count();
    unsigned char *given = qat_xmalloc((size_t)nk);
    int rc = QAT_OK;
    for (int i = 0; i < n_set && !rc; i++) {
        if (!qat_config_set_keys(sets[i], given)) continue;
        for (int k = 0; k < nk && !rc; k++) {
            if (!given[k]) continue;
            qat_config_key_info info;
            qat_config_key_get(k, &info);
            for (size_t r = 0; r < sizeof no_effect / sizeof no_effect[0] && !rc; r++)
                if (rule_matches(no_effect[r].key, info.key) && rule_applies(no_effect[r].why, use))
                    rc = refuse_no_effect(use, sets[i], info.key, no_effect[r].why);
        }
    }
    free(given);
    return rc;
}

/* The seed, given by --set to a command without a backward (eval), acts only
 * through the quantizers' random draws (noise(F), @sr: compress/quantizer.c); its
 * other uses, the initial weights and the order of training batches, are not part
 * of an evaluation. With no format that draws, it is refused like a training key. */
static int seed_draws(const qat_ckpt_use *use, const qat_config *cfg) {
    char who[QAT_PATH_MAX + 96];
    if (use->backward || strncmp(qat_config_where(cfg, "seed", who, sizeof who), "--set ", 6)) return QAT_OK;
    const char *fmt[2] = {cfg->weights.format, cfg->activations.format};
    for (int s = 0; s < 2; s++) {
        qat_fmt f;
        if (qat_fmt_parse(fmt[s], &f)) {
            qat_clear_error(); /* refused with its own message when the model is made */
            return QAT_OK;
        }
        if (f.noise || (f.mods & QAT_MOD_SR)) return QAT_OK;
    }
    return qat_fail(QAT_EINPUT, "%s: seed has no effect in %s of weights %s and activations %s: there it keys only "
                    "the random draws of noise() formats and stochastic rounding (@sr), and neither side draws any "
                    "(the initial weights and the order of training batches it also keys are not part of %s); "
                    "expected no --set of it, or a format that draws (e.g. noise(int4), mxfp4@sr)",
                    who, use->command, fmt[0], fmt[1], use->command);
}

/* Load a checkpoint's config (with the caller's overrides) and model. */
/* The weights are read as stored, so an override may not change their shapes:
 * the sizes resolved from the stored config and from the overridden one must be
 * the same. model.seq_len may change (RoPE has no table of positions). The message
 * names the --set that changed them: the last one after which they differed. */
static int same_shape(const char *path, const qat_config *stored, const qat_config *cfg, const char *const *sets,
                      int n_set) {
    qat_model_shape a, b;
    QAT_TRY(qat_model_shape_from_config(stored, &a));
    QAT_TRY(qat_model_shape_from_config(cfg, &b));
#define SHAPE_EQ(x, y) ((x).layers == (y).layers && (x).dim == (y).dim && (x).heads == (y).heads && \
                        (x).hidden == (y).hidden && (x).vocab == (y).vocab)
    if (SHAPE_EQ(a, b)) return QAT_OK;
    int culprit = -1;
    qat_config step = *stored;
    qat_model_shape prev = a, now;
    for (int i = 0; i < n_set; i++) {
        if (qat_config_set(&step, sets[i]) || qat_model_shape_from_config(&step, &now)) continue;
        if (!SHAPE_EQ(prev, now)) culprit = i;
        prev = now;
    }
    qat_clear_error();
#undef SHAPE_EQ
    char who[QAT_PATH_MAX + 96];
    if (culprit >= 0) snprintf(who, sizeof who, "--set %s", sets[culprit]);
    else qat_config_where(cfg, "model", who, sizeof who);
    return qat_fail(QAT_EINPUT, "%s: changes the model's shape to layers %d, dim %d, heads %d, hidden %d, vocab %d, "
                    "but %s holds the weights of layers %d, dim %d, heads %d, hidden %d, vocab %d and is read as "
                    "stored; expected no --set of model.preset, model.layers, model.dim, model.heads, model.hidden "
                    "or model.vocab (formats, data keys and model.seq_len may change)",
                    who, b.layers, b.dim, b.heads, b.hidden, b.vocab, path, a.layers, a.dim, a.heads, a.hidden,
                    a.vocab);
}

/* A quantizer that learns state (LSQ steps, PV codes, AQ codebooks) is read with
 * the state the run learned; an override that asks for one the checkpoint never
 * trained finds none, and "no array /compress/..." said nothing of why. Named
 * here: the side, the override, what the checkpoint was trained with, and what
 * the command (eval, grads, sample: `command`, which the message names) can do instead. */
static int has_learned_state(const char *path, const char *command, const qat_config *stored, const qat_config *cfg,
                             qat_model *m) {
    int ns = qat_model_compress_state_count(m);
    if (!ns) return QAT_OK;
    qat_ckpt_file *f;
    QAT_TRY(qat_ckpt_open(path, &f));
    int rc = QAT_OK;
    for (int i = 0; i < ns && !rc; i++) {
        char name[96], full[128];
        float *data;
        int64_t n;
        qat_model_compress_state(m, i, name, &data, &n);
        snprintf(full, sizeof full, "compress/%s", name);
        if (qat_ckpt_has(f, full)) continue;
        int weights = strstr(name, ".weight.") != NULL;
        const char *side = weights ? "compress.weights" : "compress.activations";
        const qat_compress_side *was = weights ? &stored->weights : &stored->activations;
        struct qat_quantizer *q = weights ? m->blocks[0].qw[0] : m->blocks[0].qa[0];
        const char *what = strstr(name, "lsq_") ? "LSQ step sizes"
                           : strstr(name, "aq_") ? "learned codebooks and scales"
                                                 : "PV-Tuning state";
        char who[QAT_PATH_MAX + 96];
        const char *keys[] = {side, NULL};
        qat_fmt wf; /* the estimator the checkpoint's side trained with, its default resolved */
        qat_est we;
        const char *west = was->estimator[0] ? was->estimator : "its default";
        if (!qat_fmt_parse(was->format, &wf) && !qat_est_resolve(&wf, was, weights, &we)) west = qat_est_name(we);
        qat_clear_error();
        rc = qat_fail(QAT_EINPUT, "%s: %s %s with estimator %s reads the %s a run learns, and %s has none (no /%s): "
                      "its %s were trained as %s with estimator %s, and %s reads learned state as stored, it does "
                      "not learn it; expected a %s.format and .estimator that keep no state (estimators ste, clip, "
                      "trust, rbbm, masked, on a format without learned codebooks; e.g. %s.format=int4, whose "
                      "default trust keeps none) or the checkpoint's own (%s, %s); to learn them from this "
                      "checkpoint, train: qat train CONFIG --init %s",
                      qat_config_where_last(cfg, keys, who, sizeof who), weights ? "weights" : "activations",
                      qat_quantizer_format(q), qat_quantizer_estimator(q), what, path, full,
                      weights ? "weights" : "activations", was->format, west, command, side, side, was->format, west,
                      path);
    }
    qat_ckpt_close(f);
    return rc;
}

/* The eight quantizers of a block (weights then activations of q/k/v, o, gate/up,
 * down) as learned state sees them, in a one-layer model built from a config:
 * every layer pairs its quantizers alike, so layer 0 speaks for all. */
typedef struct {
    char key[8][160]; /* qat_quantizer_state_key */
    int block[8];     /* Hadamard block */
    int state[8];     /* 1: keeps learned state */
    int follows[8];   /* qat_quantizer_follows_weights */
} block_keys;

static int quantizer_keys(const qat_config *cfg, block_keys *k) {
    qat_model_shape s;
    QAT_TRY(qat_model_shape_from_config(cfg, &s));
    s.layers = 1;
    qat_model *m = NULL;
    QAT_TRY(qat_model_create(cfg, &s, 1, &m));
    for (int i = 0; i < 8; i++) {
        qat_quantizer *q = i < 4 ? m->blocks[0].qw[i] : m->blocks[0].qa[i - 4];
        qat_quantizer_state_key(q, k->key[i], sizeof k->key[i]);
        k->block[i] = qat_quantizer_hadamard(q);
        k->state[i] = qat_quantizer_state_count(q) > 0;
        k->follows[i] = qat_quantizer_follows_weights(q);
    }
    qat_model_free(m);
    return QAT_OK;
}

/* Learned state (LSQ steps, PV-Tuning codes, aq codebooks) means something only
 * to the quantizer it was learned for: int4 codes read as int2, or unrotated
 * codes in a product an override rotates (the other side's rotation included:
 * both operands share one basis), evaluated another model with no word. So
 * where the checkpoint's side keeps state, an override must leave that side's
 * quantizer as it was (format, block, estimator, scale), or drop the state for
 * an estimator without any, which quantizes the stored master weights afresh;
 * that is refused too when the master weights are not what the checkpoint
 * computes (PV with pv_lr > 0 reads only its codes). train --init carries state
 * per side, for the same quantizers and aq codebooks across ste and pv
 * (qat_quantizer_carry, train/init.c). The message names the --set
 * after which the side's quantizer last changed. */
static int state_read_as_learned(const char *path, const qat_config *stored, const qat_config *cfg,
                                 const char *const *sets, int n_set) {
    static const char *const linear[4] = {"q/k/v", "o", "gate/up", "down"};
    block_keys *was = qat_xmalloc(sizeof *was), *now = qat_xmalloc(sizeof *now), *cur = qat_xmalloc(sizeof *cur);
    int rc = QAT_OK, bad = -1;
    if (quantizer_keys(stored, was)) {
        qat_clear_error(); /* a stored config this qat no longer builds: its own error comes when it is built */
        goto done;
    }
    int any = 0;
    for (int i = 0; i < 8; i++) any |= was->state[i];
    if (!any || (rc = quantizer_keys(cfg, now))) goto done;
    for (int i = 0; i < 8 && bad < 0; i++)
        if (was->state[i] && strcmp(was->key[i], now->key[i]) && (now->state[i] || !was->follows[i])) bad = i;
    if (bad < 0) goto done;
    /* the --set after which this quantizer last changed; when the configs between
     * two that build do not build themselves (mxfp4@h16 with the stored scale lsq,
     * then scale=rms, then estimator=trust), the change came from that whole run of
     * --sets, and naming its last one blamed an estimator for a rotation */
    int culprit = -1, from = -1, ok = -1;
    qat_config *step = qat_xmalloc(sizeof *step);
    *step = *stored;
    char prev[160];
    snprintf(prev, sizeof prev, "%s", was->key[bad]);
    for (int i = 0; i < n_set; i++) {
        if (qat_config_set(step, sets[i]) || quantizer_keys(step, cur)) continue;
        if (strcmp(prev, cur->key[bad])) culprit = i, from = ok + 1;
        snprintf(prev, sizeof prev, "%s", cur->key[bad]);
        ok = i;
    }
    free(step);
    qat_clear_error();
    char who[QAT_PATH_MAX + 96];
    const char *keys[] = {"compress.weights", "compress.activations", NULL};
    if (culprit >= 0 && from < culprit) {
        size_t l = 0;
        for (int i = from; i <= culprit && l < sizeof who; i++)
            l += (size_t)snprintf(who + l, sizeof who - l, "%s--set %s", i > from ? ", " : "", sets[i]);
    } else if (culprit >= 0)
        snprintf(who, sizeof who, "--set %s", sets[culprit]);
    else
        qat_config_where_last(cfg, keys, who, sizeof who);
    int act = bad >= 4;
    const char *name = act ? "activations" : "weights", *key = act ? "compress.activations" : "compress.weights";
    const char *okey = act ? "compress.weights" : "compress.activations";
    const qat_compress_side *w = act ? &stored->activations : &stored->weights;
    const char *what = strstr(was->key[bad], "estimator lsq") ? "LSQ step sizes"
                       : !strncmp(was->key[bad], "aq", 2)       ? "learned codebooks and scales"
                                                                : "PV-Tuning codes";
    int rotated = was->block[bad] != now->block[bad];
    char own[400], alt[400];
    snprintf(own, sizeof own, "%s (format %s, hadamard %d, estimator %s, scale %s)%s", key, w->format, w->hadamard,
             w->estimator[0] ? w->estimator : "its default", w->scale[0] ? w->scale : "its default",
             rotated ? ", and a " : "");
    if (rotated) {
        size_t l = strlen(own);
        if (was->block[bad])
            snprintf(own + l, sizeof own - l, "%s that lets the %s rotate by %d as in training", okey, name,
                     was->block[bad]);
        else
            snprintf(own + l, sizeof own - l, "%s that leaves the %s unrotated as in training", okey, name);
    }
    if (was->follows[bad])
        snprintf(alt, sizeof alt, "; or an estimator without state on this side (e.g. %s.estimator=trust or ste, "
                 "as the format allows), which quantizes the stored master weights afresh", key);
    else
        snprintf(alt, sizeof alt, ". Nothing else can read this checkpoint's weights: its forward returns only the "
                 "codes (pv_lr > 0: the master weights in /params are not read after the first step); to move the "
                 "model to another quantizer, train from it: qat train CONFIG --init %s", path);
    rc = qat_fail(QAT_EINPUT, "%s: the %s' %s in %s were learned, in the %s linears, for %s and are read only by "
                  "that quantizer, but the config now makes it %s%s; expected the checkpoint's own %s%s",
                  who, name, what, path, linear[bad % 4], was->key[bad], now->key[bad],
                  rotated ? " (a rotation set on either side rotates both operands of a product)" : "", own, alt);
done:
    free(was);
    free(now);
    free(cur);
    return rc;
}

/* The checks newer than a run pass its stored config (core/config.h, stored), but
 * an override is the user's own and new: `eval --set data.synth_topics=3` on an
 * english checkpoint, or `--set compress.weights.hadamard=16` on an fp32 one,
 * changed nothing and printed the loss with exit 0, while `qat train` refuses
 * both. So the overridden config is checked as a new run's, with only the --set
 * keys counting as given: what the run stored is still taken as made. */
static int overrides_as_new(const qat_config *cfg) {
    qat_config *c = qat_xmalloc(sizeof *c);
    *c = *cfg;
    c->stored = c->data.stored = 0;
    for (int i = 0; i < QAT_CONFIG_KEYS_MAX; i++) c->key_at[i].line = c->key_at[i].col = 0;
    int rc = qat_est_check_config(c);
    if (!rc) rc = qat_config_check_synth(c);
    free(c);
    return rc;
}

int qat_load_checkpoint_model(const char *path, const qat_ckpt_use *use, const char *const *sets, int n_set,
                              int max_batch, qat_config *cfg, qat_model **out) {
    *out = NULL;
    /* before the checkpoint is read: the refusal is about the command line alone, and
     * comes before any error the override would cause with the stored config (eval's
     * --set compress.gradients.rounding=sr was refused for the fp32 backward it
     * does not run, while format=mxfp4 passed) */
    QAT_TRY(qat_check_set_effect(use, sets, n_set));
    qat_ckpt_file *f;
    QAT_TRY(qat_ckpt_open(path, &f));
    char *yaml = NULL;
    int rc = qat_ckpt_read_config(f, &yaml);
    qat_ckpt_close(f);
    if (rc) return rc;
    rc = qat_runio_stored_config(yaml, path, cfg);
    free(yaml);
    if (rc) return rc;
    qat_config_mark_stored(cfg); /* checks newer than the run refuse new runs only */
    /* The stored config was valid (a run trained with it): whatever fails from here
     * on fails because of an override, and the message names it, not the checkpoint. */
    qat_config stored = *cfg;
    int set_precision = 0; /* the user chose train.precision with --set */
    for (int i = 0; i < n_set; i++) set_precision |= !strncmp(sets[i], "train.precision=", 16);
    QAT_TRY(qat_config_override(cfg, sets, n_set));
    QAT_TRY(overrides_as_new(cfg));
    QAT_TRY(same_shape(path, &stored, cfg, sets, n_set));
    QAT_TRY(seed_draws(use, cfg));
    /* A bf16 run's weights are f32 master copies: on a CPU without native bf16
     * products its checkpoint still runs, in fp32, and says so (the forward's
     * products then round nothing to bf16, so losses move by ~0.1%). */
    if (!set_precision && !strcmp(cfg->train.precision, "bf16") && !qat_gemm_bf16_supported(NULL)) {
        const char *isa;
        qat_gemm_bf16_supported(&isa);
        fprintf(stderr, "qat: note: %s was trained with train.precision: bf16, which this CPU cannot run (oneDNN's ISA "
                        "is %s): running it in fp32\n",
                path, isa);
        snprintf(cfg->train.precision, sizeof cfg->train.precision, "fp32");
    }
    qat_model_shape s;
    QAT_TRY(qat_model_shape_from_config(cfg, &s));
    int B = max_batch > 0 ? max_batch : cfg->train.batch_tokens / s.seq_len;
    if (B < 1) B = 1;
    QAT_TRY(qat_model_create(cfg, &s, B, out));
    rc = state_read_as_learned(path, &stored, cfg, sets, n_set);
    if (!rc) rc = has_learned_state(path, use->command, &stored, cfg, *out);
    if (!rc) rc = qat_runio_load_checkpoint(path, cfg, *out, NULL, NULL, NULL);
    if (!rc) rc = qat_checkpoint_check_finite(path, *out, NULL);
    if (rc) { qat_model_free(*out); *out = NULL; }
    return rc;
}

int qat_ckpt_data_context(int rc, const char *path, const qat_config *cfg, const char *instead) {
    const qat_data_cfg *d = &cfg->data;
    int shards = !strcmp(d->source, "shards") || (!d->source[0] && d->shards[0]);
    int text = !strcmp(d->source, "text") || (!d->source[0] && !d->shards[0] && d->n_text > 0);
    if (!rc || d->option[0] || (!shards && !text)) return rc;
    const char *key = shards ? "data.shards" : "data.text";
    char where[QAT_PATH_MAX + 128];
    qat_config_where(cfg, key, where, sizeof where);
    if (!strncmp(where, "--set ", 6)) return rc; /* the user's own override: its message names the file */
    return qat_fail_context(rc, "%s: the data its stored config names (%s%s; a relative path is read from the "
                            "current directory, not from the checkpoint's; %s)",
                            path, key, shards && d->val_shards[0] ? ", data.val_shards" : "", instead);
}
