/*
 * data/dataset.c — opening a run's token data and serving its batches (see dataset.h).
 *
 * Opening does all the checking (files, headers, sizes, vocabulary, the split,
 * enough tokens for one window on each side) so that the batch functions,
 * called millions of times from the training loop, only index memory and can
 * never fail. Real data lives in one buffer; the training and validation splits
 * are span lists over it (data/batch.h), so holding out blocks copies nothing.
 */
#include "data/dataset.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "core/error.h"
#include "data/shard.h"
#include "data/split.h"
#include "data/synth.h"
#include "data/text.h"

struct qat_dataset {
    int vocab;            /* model vocabulary: every token is < vocab */
    int seq_len;          /* T: rows are T+1 consecutive tokens */
    uint64_t seed;        /* run seed: training window order */
    uint16_t *tok;        /* the corpus, or the synthetic training tokens (owned) */
    uint16_t *val_tok;    /* a separate validation stream (val_shards, synthetic; owned) or NULL */
    qat_data_split train; /* training spans */
    qat_data_split val;   /* validation spans */
    double rate;          /* true entropy rate of the validation split, NaN for real data */
    double unigram;       /* unigram entropy of the validation split */
    uint32_t crc;         /* qat_dataset_fingerprint: CRC-32 of the splits' tokens; 0 for synthetic */
    char desc[4096];      /* qat_dataset_describe */
};

static int64_t *count_tokens(const uint16_t *t, int64_t n, int64_t *c) {
    for (int64_t i = 0; i < n; i++) c[t[i]]++;
    return c;
}

static double entropy_of_counts(const int64_t *c, int64_t n, int vocab) {
    if (n <= 0) return NAN;
    double h = 0;
    int top = vocab > 0 && vocab <= 65536 ? vocab : 65536;
    for (int v = 0; v < top; v++)
        if (c[v]) {
            double p = (double)c[v] / (double)n;
            h -= p * log(p);
        }
    return h;
}

double qat_data_unigram_entropy(const uint16_t *t, int64_t n, int vocab) {
    int64_t *c = qat_xcalloc(65536, sizeof *c);
    double h = entropy_of_counts(count_tokens(t, n, c), n, vocab);
    free(c);
    return h;
}

static double split_unigram(const qat_data_split *s, int vocab) {
    int64_t *c = qat_xcalloc(65536, sizeof *c);
    for (int i = 0; i < s->n_span; i++) count_tokens(s->tok + s->span[i].start, s->span[i].len, c);
    double h = entropy_of_counts(c, s->tokens, vocab);
    free(c);
    return h;
}

const char *qat_dataset_english_path(void) {
    const char *p = getenv("QAT_ENGLISH_PATH");
    return p && p[0] ? p : QAT_DATASET_ENGLISH_PATH;
}

typedef struct {
    dev_t dev;
    ino_t ino;
    int idx;
} file_id;

static int file_id_cmp(const void *pa, const void *pb) {
    const file_id *a = pa, *b = pb;
    if (a->dev != b->dev) return a->dev < b->dev ? -1 : 1;
    if (a->ino != b->ino) return a->ino < b->ino ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

int qat_data_same_file(const char *const *paths, int n, int *first, int *second) {
    file_id *ids = qat_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
    int k = 0, found = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0) ids[k++] = (file_id){st.st_dev, st.st_ino, i};
    }
    qsort(ids, (size_t)k, sizeof *ids, file_id_cmp);
    *first = *second = -1;
    for (int i = 1; i < k; i++) /* the pair that comes first in the list */
        if (ids[i].dev == ids[i - 1].dev && ids[i].ino == ids[i - 1].ino &&
            (!found || ids[i - 1].idx < *first || (ids[i - 1].idx == *first && ids[i].idx < *second))) {
            *first = ids[i - 1].idx;
            *second = ids[i].idx;
            found = 1;
        }
    free(ids);
    return found;
}

/* The shards and validation shards are distinct files: a file matched twice
 * (a link beside its target) is read twice, and one that both globs match
 * puts training tokens in the validation split, which docs/data.md promises
 * never happens ("every run evaluates on held-out text"). Checked on the
 * globs' matches before any token is read; a glob that matches nothing is
 * left to load_shards to report. */
static int shards_distinct(const qat_data_cfg *cfg) {
    if (cfg->stored) return QAT_OK; /* a run made before this check is read as made (core/config.h) */
    char **tp = NULL, **vp = NULL;
    int nt = 0, nv = 0, rc = QAT_OK;
    if (qat_shard_glob(cfg->shards, &tp, &nt)) { qat_clear_error(); return QAT_OK; }
    if (cfg->val_shards[0] && qat_shard_glob(cfg->val_shards, &vp, &nv)) {
        qat_clear_error();
        nv = 0;
    }
    const char **all = qat_xmalloc((size_t)(nt + nv) * sizeof *all);
    for (int i = 0; i < nt; i++) all[i] = tp[i];
    for (int i = 0; i < nv; i++) all[nt + i] = vp[i];
    int a, b;
    if (qat_data_same_file(all, nt + nv, &a, &b)) {
        const char *key_a = a < nt ? "data.shards" : "data.val_shards";
        const char *at = b < nt ? cfg->shards_at : cfg->val_shards_at;
        char pos[QAT_PATH_MAX + 100] = "";
        if (!cfg->option[0] && at[0]) snprintf(pos, sizeof pos, "%s: ", at);
        if (a < nt && b >= nt)
            rc = qat_fail(QAT_EINPUT, "%sdata.val_shards \"%s\" matches %s, which data.shards \"%s\" also matches (the "
                          "same file): its tokens would be trained on and scored as held-out; expected validation "
                          "shards apart from the training ones, or no data.val_shards (blocks of the shards are "
                          "then held out, docs/data.md)", pos, cfg->val_shards, all[b], cfg->shards);
        else
            rc = qat_fail(QAT_EINPUT, "%s%s \"%s\" matches %s and %s, the same file (a link?): its tokens would be read "
                          "twice; expected each file once", pos, key_a, a < nt ? cfg->shards : cfg->val_shards, all[a],
                          all[b]);
    }
    free(all);
    qat_shard_free_paths(tp, nt);
    qat_shard_free_paths(vp, nv);
    return rc;
}

/* Read every shard matching the glob cfg->shards (or val_shards) into one buffer. */
static int load_shards(const qat_data_cfg *cfg, int val, int vocab, uint16_t **tok, int64_t *n, int *n_files) {
    const char *pattern = val ? cfg->val_shards : cfg->shards;
    /* an option that replaced the data (eval --data) is what the user wrote, not the key */
    const char *key = cfg->option[0] ? cfg->option : val ? "data.val_shards" : "data.shards";
    const char *given_at = cfg->option[0] ? "" : val ? cfg->val_shards_at : cfg->shards_at;
    char **paths;
    int np;
    *tok = NULL;
    *n = 0;
    int rc = qat_shard_glob(pattern, &paths, &np);
    if (rc) {
        /* The glob came from a config line: name it, so the user knows which file to edit. */
        if (given_at[0]) return qat_fail_context(rc, "%s: %s", given_at, key);
        return qat_fail_context(rc, "%s", key);
    }
    qat_shard_info *info = qat_xmalloc((size_t)np * sizeof *info);
    int64_t total = 0;
    for (int i = 0; i < np && !rc; i++) {
        rc = qat_shard_read_header(paths[i], &info[i]);
        /* A valid but empty shard in a glob is almost always a failed conversion. */
        if (!rc && info[i].count == 0)
            rc = qat_fail(QAT_EINPUT,
                          "%s: empty shard (its header says 0 tokens), matched by %s \"%s\"; expected at least one "
                          "token: remove the file or narrow the glob",
                          paths[i], key, pattern);
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

/* Hold out evenly spaced blocks of ds->tok[0..n) (data/split.h); `what` names the data.
 * Writes the split as the banner shows it (what was actually held out) into `how`. */
static int split_blocks(qat_dataset *ds, const qat_data_cfg *cfg, int64_t n, const char *what, char *how,
                        size_t how_size) {
    double f = cfg->val_fraction;
    int T = ds->seq_len;
    int64_t need = (int64_t)T + 1;
    char at[QAT_PATH_MAX + 128];
    snprintf(at, sizeof at, "%s: data.val_fraction %g", what, f);
    if (!(f > 0 && f < 1))
        return qat_fail(QAT_EINPUT, "%s is not a share in (0, 1); expected e.g. 0.05 (docs/data.md: every run "
                                    "evaluates on held-out text, so 0 is not allowed)", at);
    if (n < 2 * need)
        return qat_fail(QAT_EINPUT,
                        "%s: only %lld tokens, too few for one training and one validation sequence of seq_len %d "
                        "(need at least %lld, whatever data.val_fraction)",
                        what, (long long)n, T, (long long)(2 * need));
    qat_data_blocks b;
    qat_data_block_split(n, f, T, &b);
    if (need > b.block) {
        /* blocks of QAT_SPLIT_BLOCK (a smaller corpus's grow to one sequence):
         * no val_fraction gives both sides a piece of seq_len + 1 (data/split.c).
         * A new run is refused by its config already (qat_config_check_split);
         * this names the key for the others (a stored run, eval --data) */
        int64_t L = b.block;
        qat_data_blocks_free(&b);
        return qat_fail(QAT_EINPUT, "%s: model.seq_len %d does not fit its split: %lld tokens cut into blocks of %lld, "
                        "and a sequence (seq_len + 1 = %lld tokens) must fit in one block (docs/data.md, \"The split\"); "
                        "expected model.seq_len <= %lld", what, T, (long long)n, (long long)L, (long long)need,
                        (long long)L - 1);
    }
    qat_data_split_init(&ds->train, ds->tok, b.train, b.n_train, T);
    qat_data_split_init(&ds->val, ds->tok, b.val, b.n_val, T);
    int rc = QAT_OK;
    if (ds->val.windows < 1)
        rc = qat_fail(QAT_EINPUT,
                      "%s holds out %lld of %lld tokens (%lld of %lld blocks of %lld), not one validation sequence "
                      "of seq_len %d (%lld tokens); expected a larger data.val_fraction or more data",
                      at, (long long)b.val_tokens, (long long)n, (long long)b.held_blocks, (long long)b.blocks,
                      (long long)b.block, T, (long long)need);
    else if (ds->train.windows < 1)
        rc = qat_fail(QAT_EINPUT,
                      "%s leaves %lld of %lld tokens for training, not one training sequence of seq_len %d "
                      "(%lld tokens in one piece); expected a smaller data.val_fraction",
                      at, (long long)b.train_tokens, (long long)n, T, (long long)need);
    snprintf(how, how_size, "%.2f%% held out: %lld of %lld blocks of %lld tokens, evenly spaced (data.val_fraction %g)",
             100.0 * (double)b.val_tokens / (double)n, (long long)b.held_blocks, (long long)b.blocks,
             (long long)b.block, f);
    qat_data_blocks_free(&b);
    return rc;
}

static int open_shards(qat_dataset *ds, const qat_data_cfg *cfg) {
    int nf = 0, nvf = 0;
    int64_t n = 0, n_val = 0;
    char how[QAT_PATH_MAX + 128];
    QAT_TRY(shards_distinct(cfg));
    QAT_TRY(load_shards(cfg, 0, ds->vocab, &ds->tok, &n, &nf));
    if (cfg->val_shards[0]) {
        QAT_TRY(load_shards(cfg, 1, ds->vocab, &ds->val_tok, &n_val, &nvf));
        int64_t need = ds->seq_len + 1;
        if (n < need)
            return qat_fail(QAT_EINPUT, "%s: only %lld training tokens, need at least %lld for one sequence of seq_len %d",
                            cfg->shards, (long long)n, (long long)need, ds->seq_len);
        if (n_val < need)
            return qat_fail(QAT_EINPUT, "%s: only %lld validation tokens, need at least %lld for one sequence of seq_len %d",
                            cfg->val_shards, (long long)n_val, (long long)need, ds->seq_len);
        qat_data_span all = {0, n}, vall = {0, n_val};
        qat_data_split_init(&ds->train, ds->tok, &all, 1, ds->seq_len);
        qat_data_split_init(&ds->val, ds->val_tok, &vall, 1, ds->seq_len);
        snprintf(how, sizeof how, "validation %s, %d files", cfg->val_shards, nvf);
    } else {
        QAT_TRY(split_blocks(ds, cfg, n, cfg->shards, how, sizeof how));
    }
    ds->rate = NAN;
    ds->unigram = split_unigram(&ds->val, ds->vocab);
    snprintf(ds->desc, sizeof ds->desc,
             "shards %s (%d files): train %lld / val %lld tokens (%s), vocab %d, unigram %.4f nats/token, "
             "entropy rate unknown",
             cfg->shards, nf, (long long)ds->train.tokens, (long long)ds->val.tokens, how, ds->vocab, ds->unigram);
    return QAT_OK;
}

/* Text files (or the English corpus, one gzip file): byte tokens, split in blocks. */
static int open_bytes(qat_dataset *ds, const qat_data_cfg *cfg, const char *const *files, int n_files,
                      const char *label) {
    int64_t n;
    int n_gz;
    QAT_TRY(qat_text_read_files(files, n_files, ds->vocab, &ds->tok, &n, &n_gz));
    char what[QAT_PATH_MAX + 64], how[QAT_PATH_MAX + 128];
    if (n_files == 1) snprintf(what, sizeof what, "%s", files[0]);
    else snprintf(what, sizeof what, "%s (and %d more text files)", files[0], n_files - 1);
    QAT_TRY(split_blocks(ds, cfg, n, what, how, sizeof how));
    ds->rate = NAN;
    ds->unigram = split_unigram(&ds->val, ds->vocab);
    snprintf(ds->desc, sizeof ds->desc,
             "%s %s (%lld bytes%s): train %lld / val %lld tokens (%s), vocab %d, unigram %.4f nats/token, "
             "entropy rate unknown",
             label, what, (long long)n, n_gz == n_files ? ", gzip" : n_gz ? ", some gzip" : "",
             (long long)ds->train.tokens, (long long)ds->val.tokens, how, ds->vocab, ds->unigram);
    return QAT_OK;
}

int qat_data_text_distinct(const qat_data_cfg *cfg, const char *at) {
    /* one file twice puts the held-out blocks of one copy among the training
     * tokens of the other: validation would score text the model trained on */
    if (cfg->stored) return QAT_OK; /* a run made before this check is read as made (core/config.h) */
    const char *files[QAT_MAX_TEXT_FILES];
    int n = cfg->n_text < QAT_MAX_TEXT_FILES ? cfg->n_text : QAT_MAX_TEXT_FILES;
    for (int i = 0; i < n; i++) files[i] = cfg->text[i];
    int a, b;
    if (!qat_data_same_file(files, n, &a, &b)) return QAT_OK;
    /* from a config line: name it, as a glob of data.shards is (shards_distinct) */
    if (!at) at = cfg->option[0] ? "" : cfg->text_at;
    char pos[QAT_PATH_MAX + 100] = "";
    if (at[0]) snprintf(pos, sizeof pos, "%s: ", at);
    return qat_fail(QAT_EINPUT, "%sdata.text: entries %d and %d (%s and %s) are the same file: the held-out blocks "
                    "of one copy would be training tokens of the other; expected each file once", pos, a + 1, b + 1,
                    files[a], files[b]);
}

static int open_text(qat_dataset *ds, const qat_data_cfg *cfg) {
    if (cfg->n_text < 1) return qat_fail(QAT_EINPUT, "data.text: no text files given, expected a list of paths");
    if (cfg->n_text > QAT_MAX_TEXT_FILES)
        return qat_fail(QAT_EINPUT, "data.text: %d files, at most %d", cfg->n_text, QAT_MAX_TEXT_FILES);
    const char *files[QAT_MAX_TEXT_FILES];
    for (int i = 0; i < cfg->n_text; i++) files[i] = cfg->text[i];
    QAT_TRY(qat_data_text_distinct(cfg, NULL));
    return open_bytes(ds, cfg, files, cfg->n_text, "text");
}

static int open_english(qat_dataset *ds, const qat_data_cfg *cfg) {
    const char *path = qat_dataset_english_path();
    if (access(path, R_OK) != 0)
        return qat_fail(QAT_EINPUT,
                        "data.source english: the English corpus %s is not installed; install it with "
                        "`apt-get install dict-gcide` (or `make deps`), or train on your own files with "
                        "data: {source: text, text: [...]} (docs/data.md)",
                        path);
    return open_bytes(ds, cfg, &path, 1, "english (GCIDE dictionary)");
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
    ds->tok = qat_xmalloc((size_t)n * sizeof *ds->tok);
    qat_synth_generate(s, 0, n, ds->tok, NULL);
    int64_t n_val = QAT_DATASET_SYNTH_VAL_TOKENS;
    if (n_val < 2 * (ds->seq_len + 1)) n_val = 2 * (ds->seq_len + 1);
    ds->val_tok = qat_xmalloc((size_t)n_val * sizeof *ds->val_tok);
    float *ent = qat_xmalloc((size_t)n_val * sizeof *ent);
    qat_synth_generate(s, QAT_SYNTH_VAL_DOC0, n_val, ds->val_tok, ent);
    ds->rate = qat_synth_mean_entropy(ent, n_val);
    free(ent);
    qat_data_span all = {0, n}, vall = {0, n_val};
    qat_data_split_init(&ds->train, ds->tok, &all, 1, ds->seq_len);
    qat_data_split_init(&ds->val, ds->val_tok, &vall, 1, ds->seq_len);
    ds->unigram = qat_data_unigram_entropy(ds->val_tok, n_val, ds->vocab);
    snprintf(ds->desc, sizeof ds->desc,
             "synthetic (seed %llu, vocab %d, %d topics): train %lld / val %lld tokens, vocab %d, unigram %.4f "
             "nats/token, entropy rate %.4f nats/token",
             (unsigned long long)p.seed, sv, p.topics, (long long)n, (long long)n_val, ds->vocab, ds->unigram,
             ds->rate);
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
    if (!src[0]) src = cfg->shards[0] ? "shards" : cfg->n_text > 0 ? "text" : "english";
    int rc;
    if (!strcmp(src, "english")) rc = open_english(ds, cfg);
    else if (!strcmp(src, "synthetic")) rc = open_synthetic(ds, cfg, train_tokens);
    else if (!strcmp(src, "shards")) {
        rc = cfg->shards[0] ? open_shards(ds, cfg)
                            : qat_fail(QAT_EINPUT, "data.shards: empty, expected a glob of llm.c shards (\"dir/*.bin\")");
    } else if (!strcmp(src, "text")) rc = open_text(ds, cfg);
    else rc = qat_fail(QAT_EINPUT, "data.source: unknown source '%s', expected english, synthetic, shards or text", src);
    /* a message that does not say so already names the option the data came from */
    if (rc && cfg->option[0] && strncmp(qat_errmsg(), cfg->option, strlen(cfg->option)))
        rc = qat_fail_context(rc, "%s", cfg->option);
    if (rc) {
        qat_dataset_free(ds);
        return rc;
    }
    if (strcmp(src, "synthetic")) { /* files can change under a run; the synthetic corpus is its config */
        uLong c = crc32_z(0L, Z_NULL, 0);
        const qat_data_split *sp[2] = {&ds->train, &ds->val};
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < sp[k]->n_span; i++)
                c = crc32_z(c, (const Bytef *)(sp[k]->tok + sp[k]->span[i].start),
                            (z_size_t)sp[k]->span[i].len * sizeof(uint16_t));
        ds->crc = (uint32_t)c;
    }
    *out = ds;
    return QAT_OK;
}

uint32_t qat_dataset_fingerprint(const qat_dataset *ds) { return ds->crc; }

void qat_dataset_free(qat_dataset *ds) {
    if (!ds) return;
    qat_data_split_free(&ds->train);
    qat_data_split_free(&ds->val);
    free(ds->tok);
    free(ds->val_tok);
    free(ds);
}

void qat_dataset_train_batch(const qat_dataset *ds, int64_t step, int B, int32_t *inputs, int32_t *targets) {
    int T = ds->seq_len;
    for (int b = 0; b < B; b++) {
        int64_t s = qat_data_train_start(&ds->train, T, ds->seed, step, B, b);
        qat_data_fill_row(ds->train.tok, s, T, inputs + (size_t)b * T, targets + (size_t)b * T);
    }
}

int64_t qat_dataset_val_batches(const qat_dataset *ds, int B) {
    int64_t w = ds->val.windows / (B > 0 ? B : 1);
    return w > 0 ? w : 1;
}

int64_t qat_dataset_val_windows(const qat_dataset *ds) { return ds->val.windows; }

void qat_dataset_val_batch(const qat_dataset *ds, int64_t i, int B, int32_t *inputs, int32_t *targets) {
    int T = ds->seq_len;
    for (int b = 0; b < B; b++) {
        int64_t s = qat_data_val_start(&ds->val, T, i, B, b);
        qat_data_fill_row(ds->val.tok, s, T, inputs + (size_t)b * T, targets + (size_t)b * T);
    }
}

int64_t qat_dataset_train_tokens(const qat_dataset *ds) { return ds->train.tokens; }
int64_t qat_dataset_val_tokens(const qat_dataset *ds) { return ds->val.tokens; }
int qat_dataset_vocab(const qat_dataset *ds) { return ds->vocab; }
int qat_dataset_seq_len(const qat_dataset *ds) { return ds->seq_len; }
const qat_data_split *qat_dataset_split(const qat_dataset *ds, int val) { return val ? &ds->val : &ds->train; }
double qat_dataset_entropy_rate(const qat_dataset *ds) { return ds->rate; }
double qat_dataset_unigram_entropy(const qat_dataset *ds) { return ds->unigram; }
const char *qat_dataset_describe(const qat_dataset *ds) { return ds->desc; }
