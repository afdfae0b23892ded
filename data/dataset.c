/*
 * data/dataset.c — opening a run's token data and serving its batches (see dataset.h).
 *
 * Opening does all the checking (files, headers, sizes, vocabulary, enough tokens
 * for one window per split) so that the batch functions, called millions of times
 * from the training loop, only index memory and can never fail.
 */
#include "data/dataset.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "data/batch.h"
#include "data/shard.h"
#include "data/synth.h"
#include "data/text.h"

struct qat_dataset {
    int vocab;          /* model vocabulary: every token is < vocab */
    int seq_len;        /* T: rows are T+1 consecutive tokens */
    uint64_t seed;      /* run seed: training window order */
    uint16_t *train;    /* training split (owned) */
    int64_t n_train;    /* its length */
    uint16_t *val;      /* validation split (owned, or NULL when it lives inside `train`) */
    const uint16_t *val_view; /* validation tokens */
    int64_t n_val;      /* their count */
    double rate;        /* true entropy rate of the validation split, NaN for real data */
    double unigram;     /* unigram entropy of the validation split */
    char desc[4096];    /* qat_dataset_describe */
};

double qat_data_unigram_entropy(const uint16_t *t, int64_t n, int vocab) {
    if (n <= 0) return NAN;
    int64_t *c = qat_xcalloc(65536, sizeof *c);
    for (int64_t i = 0; i < n; i++) c[t[i]]++;
    double h = 0;
    int top = vocab > 0 && vocab <= 65536 ? vocab : 65536;
    for (int v = 0; v < top; v++)
        if (c[v]) {
            double p = (double)c[v] / (double)n;
            h -= p * log(p);
        }
    free(c);
    return h;
}

/* Read every shard matching `pattern` into one buffer; *n_files for the description. */
static int load_shards(const char *pattern, int vocab, uint16_t **tok, int64_t *n, int *n_files) {
    char **paths;
    int np;
    *tok = NULL;
    *n = 0;
    QAT_TRY(qat_shard_glob(pattern, &paths, &np));
    qat_shard_info *info = qat_xmalloc((size_t)np * sizeof *info);
    int64_t total = 0;
    int rc = QAT_OK;
    for (int i = 0; i < np && !rc; i++) {
        rc = qat_shard_read_header(paths[i], &info[i]);
        total += info[i].count;
    }
    uint16_t *t = rc ? NULL : qat_xmalloc((size_t)(total > 0 ? total : 1) * sizeof *t);
    int64_t at = 0;
    for (int i = 0; i < np && !rc; i++) {
        rc = qat_shard_read_tokens(paths[i], &info[i], vocab, t + at);
        at += info[i].count;
    }
    qat_shard_free_paths(paths, np);
    free(info);
    if (rc) { free(t); return rc; }
    *tok = t;
    *n = total;
    *n_files = np;
    return QAT_OK;
}

static double val_fraction(const qat_data_cfg *cfg) {
    return cfg->val_fraction > 0 && cfg->val_fraction < 1 ? cfg->val_fraction : QAT_DATASET_VAL_FRACTION;
}

/* Hold out the tail of one stream; `what` names the data in the error. */
static int split_tail(qat_dataset *ds, const qat_data_cfg *cfg, const char *what) {
    int64_t n = ds->n_train;
    int64_t n_val = (int64_t)llround(val_fraction(cfg) * (double)n);
    int64_t need = ds->seq_len + 1;
    if (n_val < need) n_val = need; /* a tiny corpus still gets one validation window */
    if (n - n_val < need)
        return qat_fail(QAT_EINPUT,
                        "%s: only %lld tokens, too few for one training and one validation sequence "
                        "of seq_len %d (need at least %lld)",
                        what, (long long)n, ds->seq_len, (long long)(2 * need));
    ds->n_train = n - n_val;
    ds->val_view = ds->train + ds->n_train;
    ds->n_val = n_val;
    return QAT_OK;
}

static int open_shards(qat_dataset *ds, const qat_data_cfg *cfg) {
    int nf = 0, nvf = 0;
    QAT_TRY(load_shards(cfg->shards, ds->vocab, &ds->train, &ds->n_train, &nf));
    if (cfg->val_shards[0]) {
        QAT_TRY(load_shards(cfg->val_shards, ds->vocab, &ds->val, &ds->n_val, &nvf));
        ds->val_view = ds->val;
        int64_t need = ds->seq_len + 1;
        if (ds->n_train < need)
            return qat_fail(QAT_EINPUT, "%s: only %lld training tokens, need at least %lld for one sequence of seq_len %d",
                            cfg->shards, (long long)ds->n_train, (long long)need, ds->seq_len);
        if (ds->n_val < need)
            return qat_fail(QAT_EINPUT, "%s: only %lld validation tokens, need at least %lld for one sequence of seq_len %d",
                            cfg->val_shards, (long long)ds->n_val, (long long)need, ds->seq_len);
    } else {
        QAT_TRY(split_tail(ds, cfg, cfg->shards));
    }
    ds->rate = NAN;
    ds->unigram = qat_data_unigram_entropy(ds->val_view, ds->n_val, ds->vocab);
    char vdesc[QAT_PATH_MAX + 64];
    if (cfg->val_shards[0]) snprintf(vdesc, sizeof vdesc, "%s, %d files", cfg->val_shards, nvf);
    else snprintf(vdesc, sizeof vdesc, "last %.3g of the stream", val_fraction(cfg));
    snprintf(ds->desc, sizeof ds->desc,
             "shards %s (%d files): train %lld / val %lld tokens (%s), vocab %d, unigram %.4f nats/token, "
             "entropy rate unknown",
             cfg->shards, nf, (long long)ds->n_train, (long long)ds->n_val, vdesc, ds->vocab, ds->unigram);
    return QAT_OK;
}

static int open_text(qat_dataset *ds, const qat_data_cfg *cfg) {
    if (cfg->n_text < 1) return qat_fail(QAT_EINPUT, "data.text: no text files given, expected a list of paths");
    if (cfg->n_text > QAT_MAX_TEXT_FILES)
        return qat_fail(QAT_EINPUT, "data.text: %d files, at most %d", cfg->n_text, QAT_MAX_TEXT_FILES);
    const char *files[QAT_MAX_TEXT_FILES];
    for (int i = 0; i < cfg->n_text; i++) files[i] = cfg->text[i];
    QAT_TRY(qat_text_read_files(files, cfg->n_text, ds->vocab, &ds->train, &ds->n_train));
    char what[QAT_PATH_MAX + 64];
    if (cfg->n_text == 1) snprintf(what, sizeof what, "%s", files[0]);
    else snprintf(what, sizeof what, "%s (and %d more text files)", files[0], cfg->n_text - 1);
    QAT_TRY(split_tail(ds, cfg, what));
    ds->rate = NAN;
    ds->unigram = qat_data_unigram_entropy(ds->val_view, ds->n_val, ds->vocab);
    snprintf(ds->desc, sizeof ds->desc,
             "text %s: train %lld / val %lld tokens (bytes, last %.3g held out), vocab %d, unigram %.4f "
             "nats/token, entropy rate unknown",
             what, (long long)ds->n_train, (long long)ds->n_val, val_fraction(cfg), ds->vocab, ds->unigram);
    return QAT_OK;
}

static int open_synthetic(qat_dataset *ds, const qat_data_cfg *cfg, double train_tokens) {
    int sv = cfg->synth_vocab > 0 ? cfg->synth_vocab : ds->vocab;
    if (sv > ds->vocab)
        return qat_fail(QAT_EINPUT, "data.synth_vocab: %d exceeds the model's vocab %d, expected <= %d", sv,
                        ds->vocab, ds->vocab);
    qat_synth_params p;
    qat_synth_params_default(&p, cfg->synth_seed, sv, cfg->synth_topics > 0 ? cfg->synth_topics : QAT_DATASET_SYNTH_TOPICS);
    qat_synth *s;
    QAT_TRY(qat_synth_create(&p, &s));
    double want = cfg->synth_tokens > 0 ? cfg->synth_tokens : (train_tokens > 0 ? ceil(train_tokens) : 0) + 1;
    if (!(want < 4e9)) {
        qat_synth_free(s);
        return qat_fail(QAT_EINPUT, "data.synth_tokens: %.3g tokens is too many, expected < 4e9", want);
    }
    int64_t n = (int64_t)want;
    if (n < ds->seq_len + 1) n = ds->seq_len + 1;
    ds->n_train = n;
    ds->train = qat_xmalloc((size_t)n * sizeof *ds->train);
    qat_synth_generate(s, 0, n, ds->train, NULL);
    ds->n_val = QAT_DATASET_SYNTH_VAL_TOKENS;
    if (ds->n_val < 2 * (ds->seq_len + 1)) ds->n_val = 2 * (ds->seq_len + 1);
    ds->val = qat_xmalloc((size_t)ds->n_val * sizeof *ds->val);
    float *ent = qat_xmalloc((size_t)ds->n_val * sizeof *ent);
    qat_synth_generate(s, QAT_SYNTH_VAL_DOC0, ds->n_val, ds->val, ent);
    ds->val_view = ds->val;
    ds->rate = qat_synth_mean_entropy(ent, ds->n_val);
    free(ent);
    ds->unigram = qat_data_unigram_entropy(ds->val, ds->n_val, ds->vocab);
    snprintf(ds->desc, sizeof ds->desc,
             "synthetic (seed %llu, vocab %d, %d topics): train %lld / val %lld tokens, vocab %d, unigram %.4f "
             "nats/token, entropy rate %.4f nats/token",
             (unsigned long long)p.seed, sv, p.topics, (long long)ds->n_train, (long long)ds->n_val, ds->vocab,
             ds->unigram, ds->rate);
    qat_synth_free(s);
    return QAT_OK;
}

int qat_dataset_open(const qat_data_cfg *cfg, int vocab, int seq_len, double train_tokens, uint64_t seed,
                     qat_dataset **out) {
    *out = NULL;
    if (vocab < 2 || vocab > 65536)
        return qat_fail(QAT_EINPUT, "model.vocab: %d out of range, expected 2..65536 (uint16 token shards)", vocab);
    if (seq_len < 1) return qat_fail(QAT_EINPUT, "model.seq_len: %d, expected >= 1", seq_len);
    qat_dataset *ds = qat_xcalloc(1, sizeof *ds);
    ds->vocab = vocab;
    ds->seq_len = seq_len;
    ds->seed = seed;
    const char *src = cfg->source;
    if (!src[0]) src = cfg->shards[0] ? "shards" : cfg->n_text > 0 ? "text" : "synthetic";
    int rc;
    if (!strcmp(src, "synthetic")) rc = open_synthetic(ds, cfg, train_tokens);
    else if (!strcmp(src, "shards")) {
        rc = cfg->shards[0] ? open_shards(ds, cfg)
                            : qat_fail(QAT_EINPUT, "data.shards: empty, expected a glob of llm.c shards (\"dir/*.bin\")");
    } else if (!strcmp(src, "text")) rc = open_text(ds, cfg);
    else rc = qat_fail(QAT_EINPUT, "data.source: unknown source '%s', expected synthetic, shards or text", src);
    if (rc) {
        qat_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return QAT_OK;
}

void qat_dataset_free(qat_dataset *ds) {
    if (!ds) return;
    free(ds->train);
    free(ds->val);
    free(ds);
}

void qat_dataset_train_batch(const qat_dataset *ds, int64_t step, int B, int32_t *inputs, int32_t *targets) {
    int T = ds->seq_len;
    for (int b = 0; b < B; b++) {
        int64_t s = qat_data_train_start(ds->n_train, T, ds->seed, step, B, b);
        qat_data_fill_row(ds->train, s, T, inputs + (size_t)b * T, targets + (size_t)b * T);
    }
}

int64_t qat_dataset_val_batches(const qat_dataset *ds, int B) {
    int64_t w = qat_data_windows(ds->n_val, ds->seq_len) / (B > 0 ? B : 1);
    return w > 0 ? w : 1;
}

void qat_dataset_val_batch(const qat_dataset *ds, int64_t i, int B, int32_t *inputs, int32_t *targets) {
    int T = ds->seq_len;
    for (int b = 0; b < B; b++) {
        int64_t s = qat_data_val_start(ds->n_val, T, i, B, b);
        qat_data_fill_row(ds->val_view, s, T, inputs + (size_t)b * T, targets + (size_t)b * T);
    }
}

int64_t qat_dataset_train_tokens(const qat_dataset *ds) { return ds->n_train; }
int64_t qat_dataset_val_tokens(const qat_dataset *ds) { return ds->n_val; }
int qat_dataset_vocab(const qat_dataset *ds) { return ds->vocab; }
int qat_dataset_seq_len(const qat_dataset *ds) { return ds->seq_len; }

const uint16_t *qat_dataset_split(const qat_dataset *ds, int val, int64_t *n) {
    *n = val ? ds->n_val : ds->n_train;
    return val ? ds->val_view : ds->train;
}

double qat_dataset_entropy_rate(const qat_dataset *ds) { return ds->rate; }
double qat_dataset_unigram_entropy(const qat_dataset *ds) { return ds->unigram; }
const char *qat_dataset_describe(const qat_dataset *ds) { return ds->desc; }
