/*
 * core/config_validate.c — the rules a whole qat_config must satisfy
 * (docs/config.md), and where each key was given, so that a message names the
 * FILE:LINE:COL or the --set of the key it is about.
 *
 * qat_config_validate runs on every load (config_load.c) and on structs filled
 * by code. What is checked where:
 *  - while parsing: the key exists (else the nearest valid key is named), the
 *    value has the right type, numbers are finite and in range, strings are one
 *    of the allowed values and fit their buffer (an enum's name is turned into
 *    its number here, once), no key is given twice in a file;
 *  - in qat_config_validate (also run by every load): the same per-key checks
 *    on the struct, then the cross-key rules:
 *      model.preset "" needs layers, dim, heads > 0; when dim and heads are both
 *      given, heads divides dim and dim/heads is even (RoPE pairs);
 *      exactly one data source: source english or synthetic has no shards/text,
 *      shards has a glob and no text, text has files and no glob (english and
 *      text need vocab >= 256);
 *      val_shards only with shards; synth_vocab <= model.vocab, and the
 *      synthetic vocabulary within what data/synth.c makes for synth_topics;
 *      train.tokens > 0 or tokens_per_param > 0;
 *      batch_tokens a multiple of seq_len and eval_tokens >= seq_len (seq_len is
 *      always explicit, never from a preset).
 *    Cross-key errors point at the line (or --set) of the key of the pair given
 *    last (where_keys): a --set counts after the file, a later line after an earlier.
 * Model presets are not resolved here (the model module owns them), so the rules
 * that need resolved sizes (heads | dim) apply only to sizes given explicitly.
 * Format strings are only checked to be one word: compress/ parses them.
 */
#include "config_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* -------------------------------------------------------------- validation */

/* Prefix for a message about key `name`: where it was given, else the origin. */
const char *qat_config_where_given(const qat_config *cfg, const qat_loader *L, const char *name, char *buf, size_t n) {
    int ki = qat_config_key_find(name);
    QAT_ASSERT(ki >= 0);
    if (L && L->where[ki].line)
        snprintf(buf, n, "%s:%d:%d", L->origin, L->where[ki].line, L->where[ki].col);
    else if (L && L->where[ki].set && L->sets)
        snprintf(buf, n, "--set %s", L->sets[L->where[ki].set - 1]);
    else
        snprintf(buf, n, "%s", qat_config_source(cfg));
    return buf;
}

/* Position of a key the user gave, for ordering: a --set comes after the file
 * (and after the --sets before it); 0 when the key was not given. */
static long long given_order(int line, int col, int set) {
    if (set) return (1ll << 40) + set;
    return line ? (long long)line * 100000 + col : 0;
}

/* Prefix for a message about several keys (a cross-key check): where the one
 * given last was given, so the message points at the key that made the
 * combination wrong (an override beats the file); else where_key of the first. */
static const char *where_keys(const qat_config *cfg, const qat_loader *L, const char *const *keys, char *buf,
                              size_t n) {
    const char *best = keys[0];
    long long best_at = 0;
    for (int i = 0; L && keys[i]; i++) {
        int ki = qat_config_key_find(keys[i]);
        QAT_ASSERT(ki >= 0);
        long long at = given_order(L->where[ki].line, L->where[ki].col, L->where[ki].set);
        if (at > best_at) best = keys[i], best_at = at;
    }
    return qat_config_where_given(cfg, L, best, buf, n);
}

/* A cross-key failure: KEYS is a parenthesised list of the keys involved. */
#define VFAILK(keys, ...)                                                                 \
    do {                                                                                 \
        static const char *const keys_[] = {QAT_UNPAREN keys, NULL};                     \
        char pos_[QAT_PATH_MAX + 64], msg_[2048];                                        \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                        \
        return qat_fail(QAT_EINPUT, "%s: %s", where_keys(cfg, L, keys_, pos_, sizeof pos_), msg_); \
    } while (0)
#define QAT_UNPAREN(...) __VA_ARGS__

#define VFAIL(key, ...)                                                                  \
    do {                                                                                 \
        char pos_[QAT_PATH_MAX + 64], msg_[2048];                                        \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                        \
        return qat_fail(QAT_EINPUT, "%s: %s", qat_config_where_given(cfg, L, key, pos_, sizeof pos_), msg_); \
    } while (0)

int qat_config_validate_at(const qat_config *cfg, const qat_loader *L) {
    /* Per-key: the same checks as the parser, for structs filled by code. */
    for (int i = 0; i < qat_config_n_keys; i++) {
        const qat_key *k = &qat_config_keys[i];
        const void *f = qat_config_cfield(cfg, k);
        char why[1024], text[64];
        switch (k->type) {
        case K_INT:
            snprintf(text, sizeof text, "%d", *(const int *)f);
            if (qat_config_check_number(k, *(const int *)f, text, why, sizeof why))
                VFAIL(k->key, "%s: %s", k->key, why);
            break;
        case K_F64:
            qat_config_fmt_double(text, sizeof text, *(const double *)f);
            if (!isfinite(*(const double *)f)) VFAIL(k->key, "%s: %s is not a finite number", k->key, text);
            if (qat_config_check_number(k, *(const double *)f, text, why, sizeof why))
                VFAIL(k->key, "%s: %s", k->key, why);
            break;
        case K_BOOL:
            if (*(const int *)f != 0 && *(const int *)f != 1) VFAIL(k->key, "%s: expected 0 or 1", k->key);
            break;
        case K_STR:
            if (!memchr(f, 0, k->size)) VFAIL(k->key, "%s: string is not terminated", k->key);
            if (qat_config_check_string(k, f, why, sizeof why)) VFAIL(k->key, "%s: %s", k->key, why);
            break;
        case K_LIST:
            if (cfg->data.n_text < 0 || cfg->data.n_text > QAT_MAX_TEXT_FILES)
                VFAIL(k->key, "%s: bad file count %d", k->key, cfg->data.n_text);
            for (int j = 0; j < cfg->data.n_text; j++)
                if (!memchr(cfg->data.text[j], 0, k->size) || !cfg->data.text[j][0])
                    VFAIL(k->key, "%s: entry %d is empty or not terminated", k->key, j + 1); /* from 1, as users count */
            break;
        case K_ENUM:
            if (*(const int *)f < 0 || *(const int *)f >= qat_config_n_allowed(k))
                VFAIL(k->key, "%s: enum value %d is out of range, expected 0 to %d", k->key, *(const int *)f,
                      qat_config_n_allowed(k) - 1);
            break;
        case K_U64:
            break;
        }
    }

    /* Model: without a preset the three sizes must be explicit; sizes given
     * explicitly must agree with each other (presets are checked by model/). */
    const qat_model_cfg *m = &cfg->model;
    if (!m->preset[0]) {
        if (m->layers <= 0) VFAILK(("model.layers", "model.preset"), "model.layers must be given (> 0) when model.preset is \"\"");
        if (m->dim <= 0) VFAILK(("model.dim", "model.preset"), "model.dim must be given (> 0) when model.preset is \"\"");
        if (m->heads <= 0) VFAILK(("model.heads", "model.preset"), "model.heads must be given (> 0) when model.preset is \"\"");
    }
    if (m->dim > 0 && m->heads > 0) {
        if (m->dim % m->heads)
            VFAILK(("model.heads", "model.dim"), "model.heads = %d must divide model.dim = %d", m->heads, m->dim);
        if ((m->dim / m->heads) % 2)
            VFAILK(("model.heads", "model.dim"), "model.dim / model.heads = %d must be even (RoPE rotates pairs)",
                  m->dim / m->heads);
    }

    /* Data: exactly one source, with the fields it needs and none of the others'. */
    const qat_data_cfg *d = &cfg->data;
    int has_shards = d->shards[0] != 0, has_text = d->n_text > 0;
    if (!strcmp(d->source, "english")) {
        if (has_shards)
            VFAILK(("data.source", "data.shards"), "data.source is english but data.shards is set; give exactly one data source");
        if (has_text)
            VFAILK(("data.source", "data.text"), "data.source is english but data.text is set; give exactly one data source");
        if (m->vocab < 256)
            VFAILK(("model.vocab", "data.source"), "model.vocab = %d is too small for the byte tokens of data.source english (>= 256)",
                  m->vocab);
    } else if (!strcmp(d->source, "synthetic")) {
        if (has_shards)
            VFAILK(("data.source", "data.shards"), "data.source is synthetic but data.shards is set; give exactly one data source");
        if (has_text)
            VFAILK(("data.source", "data.text"), "data.source is synthetic but data.text is set; give exactly one data source");
        if (d->synth_vocab > m->vocab)
            VFAILK(("data.synth_vocab", "model.vocab"), "data.synth_vocab = %d exceeds model.vocab = %d", d->synth_vocab, m->vocab);
        /* what the generator cannot make is refused here, at the key, not when the corpus is built */
        int sv = d->synth_vocab > 0 ? d->synth_vocab : m->vocab, need = QAT_SYNTH_MIN_VOCAB(d->synth_topics);
        const char *vk = d->synth_vocab > 0 ? "data.synth_vocab" : "model.vocab";
        if (sv > QAT_SYNTH_MAX_VOCAB)
            VFAILK(("model.vocab", "data.source"), "model.vocab = %d is more than the synthetic corpus's %d token ids; "
                  "expected model.vocab <= %d, or data.synth_vocab <= %d", m->vocab, QAT_SYNTH_MAX_VOCAB, QAT_SYNTH_MAX_VOCAB,
                  QAT_SYNTH_MAX_VOCAB);
        if (sv < need) {
            if (d->synth_vocab > 0)
                VFAILK(("data.synth_vocab", "data.synth_topics", "data.source"), "%s = %d is too small for the synthetic "
                      "corpus with data.synth_topics = %d, expected %s >= %d (BOS, COPY, a token per topic, 16 copy "
                      "specs, 32 content tokens)", vk, sv, d->synth_topics, vk, need);
            VFAILK(("model.vocab", "data.synth_topics", "data.source"), "%s = %d is too small for the synthetic "
                  "corpus with data.synth_topics = %d, expected %s >= %d (BOS, COPY, a token per topic, 16 copy "
                  "specs, 32 content tokens)", vk, sv, d->synth_topics, vk, need);
        }
    } else if (!strcmp(d->source, "shards")) {
        if (!has_shards) VFAILK(("data.source", "data.shards"), "data.source is shards but data.shards (a glob) is not given");
        if (has_text)
            VFAILK(("data.text", "data.shards"), "both data.shards and data.text are set; give exactly one data source");
    } else { /* text */
        if (!has_text) VFAILK(("data.source", "data.text"), "data.source is text but data.text (a list of files) is not given");
        if (has_shards)
            VFAILK(("data.shards", "data.text"), "both data.shards and data.text are set; give exactly one data source");
        if (m->vocab < 256)
            VFAILK(("model.vocab", "data.source", "data.text"), "model.vocab = %d is too small for byte tokens of data.text (>= 256)", m->vocab);
    }
    if (d->val_shards[0] && strcmp(d->source, "shards"))
        VFAILK(("data.val_shards", "data.source"), "data.val_shards is only used with data.shards (data.source is %s)", d->source);

    /* Train: a budget, and whole sequences per step and per evaluation. */
    const qat_train_cfg *t = &cfg->train;
    if (t->tokens <= 0 && t->tokens_per_param <= 0)
        VFAILK(("train.tokens", "train.tokens_per_param"), "train.tokens and train.tokens_per_param are both 0; give a token budget");
    if (t->batch_tokens % m->seq_len)
        VFAILK(("train.batch_tokens", "model.seq_len"), "train.batch_tokens = %d must be a multiple of model.seq_len = %d",
              t->batch_tokens, m->seq_len);
    if (t->eval_tokens < m->seq_len)
        VFAILK(("train.eval_tokens", "model.seq_len"), "train.eval_tokens = %d must hold at least one sequence (model.seq_len = %d)",
              t->eval_tokens, m->seq_len);

    /* Backward: rounding and rotation act only on a quantized backward; with
     * the fp32 default they trained plain fp32 while the config said sr */
    const qat_compress_grad *g = &cfg->gradients;
    if (!strcmp(g->format, "fp32")) {
        if (!strcmp(g->rounding, "sr"))
            VFAILK(("compress.gradients.rounding", "compress.gradients.format"), "compress.gradients.rounding: 'sr' has no effect while "
                  "compress.gradients.format is fp32; set a format (e.g. mxfp4) or drop the key");
        if (g->hadamard)
            VFAILK(("compress.gradients.hadamard", "compress.gradients.format"), "compress.gradients.hadamard: %d has no effect while "
                  "compress.gradients.format is fp32; set a format (e.g. mxfp4) or drop the key", g->hadamard);
    }
    return QAT_OK;
}

int qat_config_validate(const qat_config *cfg) { return qat_config_validate_at(cfg, NULL); }

int qat_config_check_split(const qat_config *cfg) {
    const qat_data_cfg *d = &cfg->data;
    /* synthetic has its own validation split, explicit val_shards are not split */
    if (cfg->stored || !strcmp(d->source, "synthetic") || d->val_shards[0]) return QAT_OK;
    int T = cfg->model.seq_len;
    if ((int64_t)T + 1 <= QAT_SPLIT_BLOCK) return QAT_OK;
    /* a run of blocks on one side merges into one piece, but the held-out
     * blocks are never adjacent below val_fraction 1/2 nor the training ones
     * above it (data/split.c), so one side always has single blocks only */
    static const char *const keys[] = {"model.seq_len", "data.source", "data.text", "data.shards", NULL};
    char pos[QAT_PATH_MAX + 96];
    qat_config_where_last(cfg, keys, pos, sizeof pos);
    const char *src = !strcmp(d->source, "english") ? "data.source english" : d->shards[0] ? "data.shards" : "data.text";
    return qat_fail(QAT_EINPUT, "%s: model.seq_len = %d does not fit the split of %s: a real corpus is cut into "
                    "blocks of %d tokens, one in every 1/data.val_fraction held out, and a sequence (seq_len + 1 "
                    "tokens) must fit in one block (docs/data.md, \"The split\"), whatever data.val_fraction; "
                    "expected model.seq_len <= %d%s",
                    pos, T, src, QAT_SPLIT_BLOCK, QAT_SPLIT_BLOCK - 1,
                    d->shards[0] ? ", or data.val_shards (a validation set of its own, not split)" : "");
}


int qat_config_check_synth(const qat_config *cfg) {
    /* the synthetic corpus's knobs shape nothing else: under another source a value
     * the user gave would be recorded in run.h5 and ignored */
    if (cfg->stored || !strcmp(cfg->data.source, "synthetic")) return QAT_OK;
    qat_config *d = qat_xmalloc(sizeof *d);
    qat_config_defaults(d);
    const struct {
        const char *key;
        int changed;
    } knobs[] = {
        {"data.synth_seed", cfg->data.synth_seed != d->data.synth_seed},
        {"data.synth_vocab", cfg->data.synth_vocab != d->data.synth_vocab},
        {"data.synth_topics", cfg->data.synth_topics != d->data.synth_topics},
        {"data.synth_tokens", cfg->data.synth_tokens != d->data.synth_tokens},
    };
    free(d);
    for (size_t i = 0; i < sizeof knobs / sizeof *knobs; i++) {
        int ki = qat_config_key_find(knobs[i].key);
        QAT_ASSERT(ki >= 0);
        if (!knobs[i].changed || !(cfg->key_at[ki].line || cfg->key_at[ki].set)) continue;
        char pos[QAT_PATH_MAX + 96];
        qat_config_where(cfg, knobs[i].key, pos, sizeof pos);
        char *v = qat_config_key_text(cfg, ki);
        int rc = qat_fail(QAT_EINPUT, "%s: %s: %s has no effect with data.source %s: it shapes the synthetic "
                          "corpus only (docs/data.md); expected data.source: synthetic, or %s left at its default",
                          pos, knobs[i].key, v, cfg->data.source, knobs[i].key);
        free(v);
        return rc;
    }
    return QAT_OK;
}

/* ------------------------------------------------ where a key was given */

const char *qat_config_where(const qat_config *cfg, const char *key, char *buf, size_t n) {
    size_t len = strlen(key);
    int best = -1;
    for (int ki = 0; ki < qat_config_key_count(); ki++) {
        const char *name = qat_config_keys[ki].key;
        if (strcmp(name, key) != 0 && !(strncmp(name, key, len) == 0 && name[len] == '.')) continue;
        if (!cfg->key_at[ki].line && !cfg->key_at[ki].set) continue;
        if (best < 0) { best = ki; continue; }
        /* file positions in file order first; an override only when the file gave none */
        int bl = cfg->key_at[best].line, l = cfg->key_at[ki].line;
        if (l && (!bl || l < bl || (l == bl && cfg->key_at[ki].col < cfg->key_at[best].col))) best = ki;
    }
    if (best >= 0 && cfg->key_at[best].line && cfg->source_path[0])
        snprintf(buf, n, "%s:%d:%d", cfg->source_path, cfg->key_at[best].line, cfg->key_at[best].col);
    else if (best >= 0) {
        /* the override as it took effect: KEY=VALUE, a plain string without its quotes */
        char *v = qat_config_key_text(cfg, best);
        size_t vl = strlen(v);
        int plain = vl >= 2 && v[0] == '"' && v[vl - 1] == '"' && !strpbrk(v + 1, " \\,:{}[]#") &&
                    memchr(v + 1, '"', vl - 2) == NULL;
        if (plain) snprintf(buf, n, "--set %s=%.*s", qat_config_keys[best].key, (int)(vl - 2), v + 1);
        else snprintf(buf, n, "--set %s=%s", qat_config_keys[best].key, v);
        free(v);
    }
    else
        snprintf(buf, n, "%s", qat_config_source(cfg));
    return buf;
}

const char *qat_config_where_last(const qat_config *cfg, const char *const *keys, char *buf, size_t n) {
    int best = -1;
    long long best_at = 0;
    for (int i = 0; keys[i]; i++) {
        size_t len = strlen(keys[i]);
        for (int ki = 0; ki < qat_config_key_count(); ki++) {
            const char *name = qat_config_keys[ki].key;
            if (strcmp(name, keys[i]) != 0 && !(strncmp(name, keys[i], len) == 0 && name[len] == '.')) continue;
            long long at = given_order(cfg->key_at[ki].line, cfg->key_at[ki].col, cfg->key_at[ki].set);
            if (at > best_at) best = ki, best_at = at;
        }
    }
    if (best < 0) return qat_config_where(cfg, keys[0], buf, n);
    return qat_config_where(cfg, qat_config_keys[best].key, buf, n);
}
