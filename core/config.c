/*
 * core/config.c — the YAML run config (docs/config.md): defaults, files, `--set`
 * overrides, validation, and the resolved YAML that --print-config shows and
 * checkpoints embed.
 *
 * Everything is driven by one table, `qat_keys`, with one row per dotted key:
 * its type, the field it fills, its range or allowed values, its default (as
 * YAML text, parsed by the same code as a file, so the default can never
 * disagree with what the parser accepts) and a one-line help. Defaults, parsing,
 * --set, range checks, "did you mean", the emitted YAML and the key listing all
 * walk that table, so adding a key to qat_config means adding one row here.
 *
 * Files are read with libyaml's document API (a node tree with a mark per node),
 * which gives every error a FILE:LINE:COLUMN. Mappings may be block or flow style
 * and keys may also be written dotted (`train.lr: 1e-3` at the top level), which
 * is the same syntax --set and sweep grids use. A sweep file's inline `base:`
 * is applied as a node of the sweep's own document (qat_config_load_node), so
 * its messages carry the sweep file's lines and columns with no text copied.
 *
 * What is checked where:
 *  - while parsing: the key exists (else the nearest valid key is named), the
 *    value has the right type, numbers are finite and in range, strings are one
 *    of the allowed values and fit their buffer, no key is given twice in a file;
 *  - in qat_config_validate (also run by every load): the same per-key checks
 *    on the struct, then the cross-key rules:
 *      model.preset "" needs layers, dim, heads > 0; when dim and heads are both
 *      given, heads divides dim and dim/heads is even (RoPE pairs);
 *      exactly one data source: source english or synthetic has no shards/text,
 *      shards has a glob and no text, text has files and no glob (english and
 *      text need vocab >= 256);
 *      val_shards only with shards; synth_vocab <= model.vocab;
 *      train.tokens > 0 or tokens_per_param > 0;
 *      batch_tokens a multiple of seq_len and eval_tokens >= seq_len (seq_len is
 *      always explicit, never from a preset).
 *    Cross-key errors point at the line (or --set) that gave the offending key.
 * Model presets are not resolved here (the model module owns them), so the rules
 * that need resolved sizes (heads | dim) apply only to sizes given explicitly.
 * Format strings are only checked to be one word: compress/ parses them.
 *
 * data.shards or data.text imply data.source when it is not written; when it
 * is, the written value stands and a contradiction is an error. Configs made
 * here are zero-filled past the end of every string, so equal configs compare
 * equal with memcmp.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

#include "error.h"

/* ------------------------------------------------------------------ the table */

typedef enum { K_INT, K_U64, K_F64, K_STR, K_BOOL, K_LIST } qat_key_type;

enum {
    F_OPEN_MIN = 1,  /* min is excluded: value > min */
    F_OPEN_MAX = 2,  /* max is excluded: value < max */
    F_NONEMPTY = 4,  /* string must not be "" */
    F_NOSPACE = 8,   /* string must not contain white space (format strings) */
    F_FILENAME = 16, /* usable as one directory name: no '/', not "." or ".." */
    F_POW2 = 32,     /* integer must be <= 0 or a power of two (Hadamard block) */
};

typedef struct {
    const char *key;             /* dotted YAML path, e.g. "train.lr" */
    qat_key_type type;           /* how the YAML value is read */
    size_t off;                  /* offset of the field inside qat_config */
    size_t size;                 /* string buffer size (K_STR, and each K_LIST item) */
    double min, max;             /* numeric range, inclusive unless F_OPEN_* */
    int flags;                   /* F_* */
    const char *const *allowed;  /* K_STR: the permitted values (NULL-terminated), or NULL */
    const char *def;             /* default, as YAML scalar text */
    const char *help;            /* one line, shown in --print-config and the key listing */
} qat_key;

#define OFF(f) offsetof(qat_config, f)
#define SZ(f) sizeof(((qat_config *)0)->f)
#define INF HUGE_VAL
#define INT_K(k, f, lo, hi, fl, d, h) {k, K_INT, OFF(f), 0, lo, hi, fl, NULL, d, h}
#define U64_K(k, f, d, h) {k, K_U64, OFF(f), 0, 0, 0, 0, NULL, d, h}
#define F64_K(k, f, lo, hi, fl, d, h) {k, K_F64, OFF(f), 0, lo, hi, fl, NULL, d, h}
#define STR_K(k, f, fl, al, d, h) {k, K_STR, OFF(f), SZ(f), 0, 0, fl, al, d, h}
#define BOOL_K(k, f, d, h) {k, K_BOOL, OFF(f), 0, 0, 1, 0, NULL, d, h}

static const char *const presets[] = {"", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", NULL};
static const char *const sources[] = {"english", "synthetic", "shards", "text", NULL};
static const char *const schedules[] = {"cosine", "constant", "linear", NULL};
static const char *const precisions[] = {"fp32", "bf16", NULL};
static const char *const estimators[] = {"", "ste", "clip", "trust", "lsq", "rbbm", "pv", "masked", NULL};
static const char *const scales[] = {"rms", "absmax", "lsq", NULL};

/* The two compress sides share their rows; only the prefix and the field differ. */
#define SIDE_KEYS(P, S)                                                                        \
    STR_K("compress." P ".format", S.format, F_NONEMPTY | F_NOSPACE, NULL, "fp32",             \
          "format string (docs/formats.md): fp32, int4, fp4, sp50, 2:4, sp50+int4, vq2x2, noise(int4)"), \
    STR_K("compress." P ".estimator", S.estimator, 0, estimators, "",                          \
          "backward rule: ste|clip|trust|lsq|rbbm|pv|masked; \"\" = the format's default"),     \
    INT_K("compress." P ".hadamard", S.hadamard, -1, 65536, F_POW2, "-1",                      \
          "Hadamard block along the input dim: -1 = auto, 0 = off, or a power of two"),        \
    STR_K("compress." P ".scale", S.scale, 0, scales, "rms", "scale rule: rms|absmax|lsq"),    \
    INT_K("compress." P ".group", S.group, 0, 1 << 20, 0, "0",                                 \
          "scale group size along the input dim; 0 = whole row"),                              \
    F64_K("compress." P ".clip_scale", S.clip_scale, 0, INF, F_OPEN_MIN, "1.0",                \
          "clip estimator: keep the gradient where |x| <= c*s"),                               \
    F64_K("compress." P ".trust", S.trust, -INF, INF, 0, "0",                                  \
          "trust estimator: T in RMS units; <= 0 = half a quantization step"),                 \
    F64_K("compress." P ".rbbm_p", S.rbbm_p, 0, 0.5, F_OPEN_MIN | F_OPEN_MAX, "0.1",           \
          "rbbm estimator: band parameter p in (0, 0.5)"),                                     \
    F64_K("compress." P ".pv_tau", S.pv_tau, 0, 1, F_OPEN_MIN, "0.01",                         \
          "pv estimator: fraction of groups re-projected per step"),                           \
    INT_K("compress." P ".pv_group", S.pv_group, 1, 1 << 20, 0, "8",                           \
          "pv estimator: group size along the input dim"),                                     \
    BOOL_K("compress." P ".per_row", S.per_row, "false",                                       \
           "sparsity: top-k per row instead of per tensor")

static const qat_key qat_keys[] = {
    STR_K("name", name, F_NONEMPTY | F_FILENAME, NULL, "run", "run name; the directory under --out"),
    U64_K("seed", seed, "0", "run seed: initialisation, batches, noise"),
    INT_K("threads", threads, 0, 4096, 0, "0", "worker threads; 0 = all cores"),

    STR_K("model.preset", model.preset, 0, presets, "s3",
          "size preset s1..s8; \"\" = give layers, dim and heads; explicit keys override it"),
    INT_K("model.layers", model.layers, 0, 1024, 0, "0", "transformer blocks; 0 = from the preset"),
    INT_K("model.dim", model.dim, 0, 65536, 0, "0", "model width d; 0 = from the preset"),
    INT_K("model.heads", model.heads, 0, 4096, 0, "0", "attention heads (divide dim); 0 = from the preset"),
    INT_K("model.hidden", model.hidden, 0, 1 << 20, 0, "0",
          "SwiGLU hidden size; 0 = 32*ceil((8d/3)/32)"),
    INT_K("model.vocab", model.vocab, 2, 1 << 24, 0, "256", "vocabulary size"),
    INT_K("model.seq_len", model.seq_len, 1, 1 << 20, 0, "128", "context length T"),
    F64_K("model.rope_theta", model.rope_theta, 0, INF, F_OPEN_MIN, "10000", "RoPE base"),
    F64_K("model.norm_eps", model.norm_eps, 0, 1, F_OPEN_MIN, "1e-5", "RMSNorm epsilon"),
    F64_K("model.init_std", model.init_std, 0, INF, F_OPEN_MIN, "0.02", "init N(0, std)"),

    STR_K("data.source", data.source, 0, sources, "english",
          "english (GCIDE, docs/data.md)|synthetic|shards|text; implied by data.shards or data.text when not given"),
    STR_K("data.shards", data.shards, 0, NULL, "", "glob of llm.c token shards, e.g. \"dir/*.bin\""),
    {"data.text", K_LIST, OFF(data.text), SZ(data.text[0]), 0, QAT_MAX_TEXT_FILES, 0, NULL, "[]",
     "plain-text files read as byte tokens"},
    STR_K("data.val_shards", data.val_shards, 0, NULL, "", "optional validation shards (glob)"),
    F64_K("data.val_fraction", data.val_fraction, 0, 1, F_OPEN_MIN | F_OPEN_MAX, "0.05",
          "held-out share of shards/text/english when no val_shards (interleaved blocks, docs/data.md)"),
    U64_K("data.synth_seed", data.synth_seed, "1234", "synthetic corpus seed (independent of seed)"),
    INT_K("data.synth_vocab", data.synth_vocab, 0, 1 << 24, 0, "0", "synthetic vocabulary; 0 = model.vocab"),
    INT_K("data.synth_topics", data.synth_topics, 1, 1 << 20, 0, "16", "synthetic document-level topics"),
    F64_K("data.synth_tokens", data.synth_tokens, 0, INF, 0, "0",
          "synthetic corpus size in tokens; 0 = enough for the run"),

    F64_K("train.tokens", train.tokens, 0, INF, 0, "0",
          "training tokens; 0 = tokens_per_param * N (tokens wins when both are set)"),
    F64_K("train.tokens_per_param", train.tokens_per_param, 0, INF, 0, "20",
          "tokens per non-embedding parameter, used when tokens is 0"),
    INT_K("train.batch_tokens", train.batch_tokens, 1, INT_MAX, 0, "4096",
          "tokens per optimizer step (B*T, a multiple of seq_len)"),
    F64_K("train.lr", train.lr, 0, INF, F_OPEN_MIN, "3e-3", "peak learning rate"),
    F64_K("train.warmup", train.warmup, 0, 1, 0, "0.1", "warm-up fraction of the steps"),
    STR_K("train.schedule", train.schedule, 0, schedules, "cosine", "cosine|constant|linear"),
    F64_K("train.min_lr_ratio", train.min_lr_ratio, 0, 1, 0, "0.1", "final lr / peak lr"),
    F64_K("train.weight_decay", train.weight_decay, 0, INF, 0, "0.1", "AdamW decay (linear weights only)"),
    F64_K("train.beta1", train.beta1, 0, 1, F_OPEN_MAX, "0.9", "AdamW beta1"),
    F64_K("train.beta2", train.beta2, 0, 1, F_OPEN_MAX, "0.95", "AdamW beta2"),
    F64_K("train.eps", train.eps, 0, INF, F_OPEN_MIN, "1e-8", "AdamW epsilon"),
    F64_K("train.grad_clip", train.grad_clip, 0, INF, 0, "1.0", "global L2 gradient clip; 0 = off"),
    INT_K("train.eval_every", train.eval_every, 0, INT_MAX, 0, "200", "steps between evaluations; 0 = at the end"),
    INT_K("train.eval_tokens", train.eval_tokens, 1, INT_MAX, 0, "65536", "held-out tokens per evaluation"),
    INT_K("train.checkpoint_every", train.checkpoint_every, 0, INT_MAX, 0, "500",
          "steps between checkpoints; 0 = at the end"),
    INT_K("train.log_every", train.log_every, 1, INT_MAX, 0, "10", "steps between log lines and run-log flushes"),
    STR_K("train.precision", train.precision, 0, precisions, "fp32",
          "fp32|bf16: bf16 operands (f32 accumulation) in the linear layers' products; "
          "weights, optimizer and quantizers stay f32"),

    SIDE_KEYS("weights", weights),
    SIDE_KEYS("activations", activations),
};

enum { N_KEYS = (int)(sizeof qat_keys / sizeof qat_keys[0]) };

/* ------------------------------------------------------------ small helpers */

static void *field(qat_config *cfg, const qat_key *k) { return (char *)cfg + k->off; }
static const void *cfield(const qat_config *cfg, const qat_key *k) { return (const char *)cfg + k->off; }

/* Copy a string into a fixed buffer, zero-filling the tail: two configs with the
 * same values are then byte-identical (memcmp), which resume checks rely on. */
static void set_str(char *dst, size_t size, const char *src) {
    size_t n = strnlen(src, size - 1);
    memset(dst, 0, size);
    memcpy(dst, src, n);
}

static int key_index(const char *key) {
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(qat_keys[i].key, key)) return i;
    return -1;
}

/* `prefix` names a group (model, compress.weights, ...) when some key extends it. */
static int is_group(const char *prefix) {
    size_t n = strlen(prefix);
    if (!n) return 0;
    for (int i = 0; i < N_KEYS; i++)
        if (!strncmp(qat_keys[i].key, prefix, n) && qat_keys[i].key[n] == '.') return 1;
    return 0;
}

/* Optimal-string-alignment distance: Levenshtein plus adjacent transpositions,
 * so "trian" is one edit from "train". Strings longer than 63 are cut. */
static int edit_distance(const char *a, const char *b) {
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 63) n = 63;
    if (m > 63) m = 63;
    int d[64][64];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

static const char *last_component(const char *key) {
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

/* Score one candidate: the better of the whole-path distance and the distance
 * between last components (so `model.lr` finds `train.lr`), with prefixes of a
 * last component counted as one edit; ties go to the smaller whole-path
 * distance, then to table order. */
static void nearest_consider(const char *key, const char *cand, const char **best, int *bs, int *bf) {
    int full = edit_distance(key, cand);
    int last = edit_distance(last_component(key), last_component(cand));
    int s = last < full ? last : full;
    /* An abbreviation (`train.sched`) is as close as a one-letter typo. */
    const char *kl = last_component(key), *cl = last_component(cand);
    if (s > 1 && *kl && !strncmp(kl, cl, strlen(kl))) s = 1;
    if (!*best || s < *bs || (s == *bs && full < *bf)) {
        *best = cand;
        *bs = s;
        *bf = full;
    }
}

const char *qat_config_nearest_key(const char *key) {
    static _Thread_local char group[QAT_NAME_MAX];
    const char *best = NULL;
    int bs = 0, bf = 0;
    for (int i = 0; i < N_KEYS; i++) nearest_consider(key, qat_keys[i].key, &best, &bs, &bf);
    /* Group names are candidates too, for a misspelt section (`trian:`). */
    for (int i = 0; i < N_KEYS; i++) {
        char g[QAT_NAME_MAX];
        set_str(g, sizeof g, qat_keys[i].key);
        for (char *dot = strrchr(g, '.'); dot; dot = strrchr(g, '.')) {
            *dot = 0;
            const char *prev = best;
            nearest_consider(key, g, &best, &bs, &bf);
            if (best != prev) {
                set_str(group, sizeof group, g);
                best = group;
            }
        }
    }
    return best;
}

static const char *nearest_value(const char *v, const char *const *allowed) {
    const char *best = NULL;
    int bd = 0;
    for (int i = 0; allowed[i]; i++) {
        int d = edit_distance(v, allowed[i]);
        if (!best || d < bd) best = allowed[i], bd = d;
    }
    return best;
}

const char *qat_config_nearest_word(const char *word, const char *const *candidates) {
    return nearest_value(word, candidates);
}

/* A growable text buffer for messages and emitted YAML. */
typedef struct {
    char *s;    /* NUL-terminated text */
    size_t n;   /* length */
    size_t cap; /* allocated bytes */
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int w = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        QAT_ASSERT(w >= 0);
        if (b->s && (size_t)w < room) {
            b->n += (size_t)w;
            return;
        }
        b->cap = (b->cap + (size_t)w + 1) * 2;
        b->s = qat_xrealloc(b->s, b->cap);
        b->s[b->n] = 0;
    }
}

/* Shortest %g text that reads back to exactly `v`. */
static void fmt_double(char *buf, size_t n, double v) {
    if (v == floor(v) && fabs(v) < 1e15) { /* whole numbers in full: tokens: 2000000 */
        snprintf(buf, n, "%.0f", v);
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* "an integer in [1, 64]", "a number > 0", ... for range messages. */
static void describe_range(const qat_key *k, char *buf, size_t n) {
    const char *what = k->type == K_F64 ? "a number" : "an integer";
    char lo[32], hi[32];
    fmt_double(lo, sizeof lo, k->min);
    fmt_double(hi, sizeof hi, k->max);
    int has_lo = k->min > -INF, has_hi = k->max < INF && !(k->type == K_INT && k->max >= INT_MAX);
    if (has_lo && has_hi)
        snprintf(buf, n, "%s in %c%s, %s%c", what, k->flags & F_OPEN_MIN ? '(' : '[', lo, hi,
                 k->flags & F_OPEN_MAX ? ')' : ']');
    else if (has_lo)
        snprintf(buf, n, "%s %s %s", what, k->flags & F_OPEN_MIN ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(buf, n, "%s %s %s", what, k->flags & F_OPEN_MAX ? "<" : "<=", hi);
    else
        snprintf(buf, n, "%s", what);
    if (k->flags & F_POW2) snprintf(buf + strlen(buf), n - strlen(buf), " (-1, 0 or a power of two)");
}

static void describe_allowed(const char *const *allowed, char *buf, size_t n) {
    buf[0] = 0;
    for (int i = 0; allowed[i]; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s%s%s", i ? ", " : "",
                 allowed[i][0] ? "" : "\"", allowed[i], allowed[i][0] ? "" : "\"");
}

/* Check a numeric value against its row; on failure write why into `why`
 * ("0 is out of range, expected a number > 0") using `text` for the value. */
static int check_number(const qat_key *k, double v, const char *text, char *why, size_t n) {
    int ok = v >= k->min && v <= k->max;
    if ((k->flags & F_OPEN_MIN) && v == k->min) ok = 0;
    if ((k->flags & F_OPEN_MAX) && v == k->max) ok = 0;
    if (k->flags & F_POW2 && v > 0) {
        long long i = (long long)v;
        if (i & (i - 1)) ok = 0;
    }
    if (ok) return 0;
    char range[128];
    describe_range(k, range, sizeof range);
    snprintf(why, n, "%s is out of range, expected %s", text, range);
    return 1;
}

/* Check a string value (flags, allowed values, length). */
static int check_string(const qat_key *k, const char *v, char *why, size_t n) {
    size_t len = strlen(v);
    if (len >= k->size) {
        snprintf(why, n, "value is too long (%zu characters, at most %zu)", len, k->size - 1);
        return 1;
    }
    if (k->allowed) {
        for (int i = 0; k->allowed[i]; i++)
            if (!strcmp(v, k->allowed[i])) return 0;
        char list[256];
        describe_allowed(k->allowed, list, sizeof list);
        snprintf(why, n, "'%s' is not allowed, expected one of %s (did you mean '%s'?)", v, list,
                 nearest_value(v, k->allowed));
        return 1;
    }
    if ((k->flags & F_NONEMPTY) && !len) {
        snprintf(why, n, "expected a non-empty string");
        return 1;
    }
    if (k->flags & F_NOSPACE)
        for (const char *p = v; *p; p++)
            if (isspace((unsigned char)*p)) {
                snprintf(why, n, "'%s' contains white space, expected a format string such as int4", v);
                return 1;
            }
    if ((k->flags & F_FILENAME) && (strchr(v, '/') || !strcmp(v, ".") || !strcmp(v, ".."))) {
        snprintf(why, n, "'%s' cannot be a directory name (no '/', not '.' or '..')", v);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------- parsing one value */

/* YAML null in plain style: `key:`, `key: ~`, `key: null`. */
static int is_null_scalar(const char *s, int plain) {
    return plain && (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"));
}

/* Decimal number: digits, sign, point and exponent only (strtod alone would
 * also take hex, "inf" and "nan"). */
static int parse_double(const char *s, double *out) {
    if (!*s) return 0;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p)) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || end == s || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static const char *node_kind(const yaml_node_t *n) {
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a scalar";
}

/* Parse scalar text `s` for key `k` into cfg. Returns 0, or 1 with `why` filled. */
static int assign_scalar(qat_config *cfg, const qat_key *k, const char *s, int plain, char *why, size_t n) {
    void *f = field(cfg, k);
    switch (k->type) {
    case K_INT: {
        double v;
        /* Integers may be written 65536 or 6.5e4, as long as the value is whole. */
        if (!parse_double(s, &v) || v != floor(v)) {
            snprintf(why, n, "expected an integer, got '%s'", s);
            return 1;
        }
        if (check_number(k, v, s, why, n)) return 1;
        *(int *)f = (int)v;
        return 0;
    }
    case K_U64: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        double d;
        if (*s == '-' || !*s || *end || errno) {
            /* 1e6 is fine for a seed too, while it is an exact integer. */
            if (*s != '-' && parse_double(s, &d) && d == floor(d) && d >= 0 && d < 0x1p53) {
                v = (unsigned long long)d;
            } else {
                snprintf(why, n, "expected an unsigned integer, got '%s'", s);
                return 1;
            }
        }
        *(uint64_t *)f = v;
        return 0;
    }
    case K_F64: {
        double v;
        if (!parse_double(s, &v)) {
            snprintf(why, n, "expected a number, got '%s'", s);
            return 1;
        }
        if (check_number(k, v, s, why, n)) return 1;
        *(double *)f = v;
        return 0;
    }
    case K_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
        for (int i = 0; i < 4; i++) {
            if (!strcasecmp(s, yes[i])) return *(int *)f = 1, 0;
            if (!strcasecmp(s, no[i])) return *(int *)f = 0, 0;
        }
        snprintf(why, n, "expected true or false, got '%s'", s);
        return 1;
    }
    case K_STR: {
        const char *v = is_null_scalar(s, plain) ? "" : s;
        if (check_string(k, v, why, n)) return 1;
        set_str(f, k->size, v);
        return 0;
    }
    case K_LIST:
        break;
    }
    QAT_ASSERT(0);
    return 1;
}

/* ------------------------------------------------------------ the loader */

/* Where each key got its value, so cross-key errors can point at the line. */
typedef struct {
    int line, col;   /* 1-based position in the file; 0 = not from the file */
    int set;         /* index+1 of the --set that gave it; 0 = none */
} qat_key_where;

typedef struct {
    qat_config *cfg;              /* the config being filled */
    const char *origin;           /* file name / origin for messages */
    const char *set_text;         /* non-NULL while applying a --set: messages name it */
    int set_index;                /* 1-based index of that --set */
    const char *const *sets;      /* all overrides (for validation messages) */
    qat_key_where where[N_KEYS];  /* last assignment of each key */
    int seen[N_KEYS];             /* generation in which each key was last assigned */
    int generation;               /* one per document: duplicates inside one are errors */
    int source_explicit;          /* data.source was written (not implied by shards/text) */
    char source[16];              /* that explicit value */
} qat_loader;

/* "FILE:LINE:COL" or "--set key=value". */
static const char *at(const qat_loader *L, yaml_mark_t m, char *buf, size_t n) {
    if (L->set_text)
        snprintf(buf, n, "--set %s", L->set_text);
    else
        snprintf(buf, n, "%s:%zu:%zu", L->origin, m.line + 1, m.column + 1);
    return buf;
}

static int fail_at(const qat_loader *L, yaml_mark_t m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(const qat_loader *L, yaml_mark_t m, const char *fmt, ...) {
    char pos[QAT_PATH_MAX + 64], msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qat_fail(QAT_EINPUT, "%s: %s", at(L, m, pos, sizeof pos), msg);
}

static int apply_value(qat_loader *L, yaml_document_t *doc, int ki, yaml_node_t *v, yaml_mark_t keymark) {
    const qat_key *k = &qat_keys[ki];
    char why[1024];
    if (L->seen[ki] == L->generation) {
        /* Reached when one key is written two ways (train.lr: and train: {lr:}); a key
         * repeated inside one mapping was refused already (qat_yaml_unique_keys). */
        return fail_at(L, keymark, "duplicate key '%s' (first given at %d:%d)", k->key, L->where[ki].line,
                       L->where[ki].col);
    }
    L->seen[ki] = L->generation;
    L->where[ki].line = L->set_text ? 0 : (int)keymark.line + 1;
    L->where[ki].col = L->set_text ? 0 : (int)keymark.column + 1;
    L->where[ki].set = L->set_text ? L->set_index : 0;

    if (k->type == K_LIST) {
        char(*items)[QAT_PATH_MAX] = field(L->cfg, k);
        int *count = &L->cfg->data.n_text;
        int n = 0;
        if (v->type == YAML_SCALAR_NODE) {
            /* A single file may be written without brackets. */
            const char *s = (const char *)v->data.scalar.value;
            if (strlen(s) != v->data.scalar.length)
                return fail_at(L, v->start_mark, "%s: contains a NUL character (\\0), which no path may hold", k->key);
            if (!is_null_scalar(s, v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)) {
                if (strlen(s) >= k->size) return fail_at(L, v->start_mark, "%s: path is too long", k->key);
                set_str(items[n++], k->size, s);
            }
        } else if (v->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                yaml_node_t *e = yaml_document_get_node(doc, *it);
                if (e->type != YAML_SCALAR_NODE)
                    return fail_at(L, e->start_mark, "%s: expected a list of file names, got %s in it", k->key,
                                   node_kind(e));
                if (n >= (int)k->max)
                    return fail_at(L, e->start_mark, "%s: too many files, at most %d", k->key, (int)k->max);
                const char *s = (const char *)e->data.scalar.value;
                if (strlen(s) != e->data.scalar.length)
                    return fail_at(L, e->start_mark, "%s: contains a NUL character (\\0), which no path may hold", k->key);
                if (strlen(s) >= k->size) return fail_at(L, e->start_mark, "%s: path is too long", k->key);
                set_str(items[n++], k->size, s);
            }
        } else {
            return fail_at(L, v->start_mark, "%s: expected a list of file names, got a mapping", k->key);
        }
        for (int i = n; i < *count; i++) memset(items[i], 0, k->size);
        *count = n;
        if (n) set_str(L->cfg->data.source, sizeof L->cfg->data.source, "text");
        return QAT_OK;
    }

    if (v->type != YAML_SCALAR_NODE) {
        const char *want = k->type == K_STR ? "a string" : k->type == K_BOOL ? "true or false"
                         : k->type == K_F64 ? "a number" : "an integer";
        return fail_at(L, v->start_mark, "%s: expected %s, got %s", k->key, want, node_kind(v));
    }
    const char *s = (const char *)v->data.scalar.value;
    int plain = v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    /* "x\0y" in double quotes is a NUL inside the scalar: C strings would cut it to "x" */
    if (strlen(s) != v->data.scalar.length)
        return fail_at(L, v->start_mark, "%s: contains a NUL character (\\0), which no value may hold", k->key);
    if (assign_scalar(L->cfg, k, s, plain, why, sizeof why)) return fail_at(L, v->start_mark, "%s: %s", k->key, why);

    /* data.shards implies the source unless data.source itself was written. */
    if (!strcmp(k->key, "data.shards") && L->cfg->data.shards[0])
        set_str(L->cfg->data.source, sizeof L->cfg->data.source, "shards");
    if (!strcmp(k->key, "data.source")) {
        L->source_explicit = 1;
        set_str(L->source, sizeof L->source, L->cfg->data.source);
    }
    return QAT_OK;
}

/* Apply `key: value` where key is relative to `prefix` ("" at the top). */
static int apply_pair(qat_loader *L, yaml_document_t *doc, const char *prefix, const char *key, yaml_mark_t keymark,
                      yaml_node_t *v);

static int apply_mapping(qat_loader *L, yaml_document_t *doc, const char *prefix, yaml_node_t *m) {
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return fail_at(L, k->start_mark, "expected a key name, got %s", node_kind(k));
        QAT_TRY(apply_pair(L, doc, prefix, (const char *)k->data.scalar.value, k->start_mark, v));
    }
    return QAT_OK;
}

static int apply_pair(qat_loader *L, yaml_document_t *doc, const char *prefix, const char *key, yaml_mark_t keymark,
                      yaml_node_t *v) {
    char full[256];
    if (snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", key) >= (int)sizeof full)
        return fail_at(L, keymark, "key '%.60s...' is too long", full);
    int ki = key_index(full);
    if (ki >= 0) return apply_value(L, doc, ki, v, keymark);
    if (is_group(full)) {
        if (v->type == YAML_MAPPING_NODE) return apply_mapping(L, doc, full, v);
        if (v->type == YAML_SCALAR_NODE &&
            is_null_scalar((const char *)v->data.scalar.value, v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
            return QAT_OK; /* `model:` with nothing under it */
        return fail_at(L, v->start_mark, "%s: expected a mapping of %s.* keys, got %s", full, full, node_kind(v));
    }
    return fail_at(L, keymark, "unknown key '%s' (did you mean '%s'?)", full, qat_config_nearest_key(full));
}

/* The first key given twice in one mapping anywhere below `n` (depth-first, in
 * document order): libyaml keeps both pairs, and applying them in turn would
 * silently merge `train: {lr: 1}` with a later `train: {tokens: 2}`, so such a
 * file is refused before anything is applied. `path` holds the dotted key of
 * `n` and names the repeated key; *dup and *first receive the two key nodes. */
static int find_repeat(yaml_document_t *doc, yaml_node_t *n, char *path, size_t cap, int depth, yaml_node_t **dup,
                       yaml_node_t **first) {
    if (!n || depth > 64) return 0; /* deeper than any config: an alias loop at worst */
    size_t len = strlen(path);
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
            if (find_repeat(doc, yaml_document_get_node(doc, *it), path, cap, depth + 1, dup, first)) return 1;
        return 0;
    }
    if (n->type != YAML_MAPPING_NODE) return 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (!k || k->type != YAML_SCALAR_NODE) continue; /* the loaders name non-scalar keys themselves */
        const char *name = (const char *)k->data.scalar.value;
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k0 = yaml_document_get_node(doc, q->key);
            if (k0 && k0->type == YAML_SCALAR_NODE && !strcmp((const char *)k0->data.scalar.value, name)) {
                snprintf(path + len, cap - len, "%s%s", len ? "." : "", name);
                *dup = k;
                *first = k0;
                return 1;
            }
        }
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE)
            snprintf(path + len, cap - len, "%s%s", len ? "." : "", (const char *)k->data.scalar.value);
        if (find_repeat(doc, yaml_document_get_node(doc, p->value), path, cap, depth + 1, dup, first)) return 1;
        path[len] = 0;
    }
    return 0;
}

int qat_yaml_unique_keys(struct yaml_document_s *doc, struct yaml_node_s *node, const char *origin) {
    char path[512] = "";
    yaml_node_t *dup, *first;
    if (!find_repeat(doc, node, path, sizeof path, 0, &dup, &first)) return QAT_OK;
    return qat_fail(QAT_EINPUT, "%s:%zu:%zu: duplicate key '%s' (first given at %zu:%zu)", origin,
                    dup->start_mark.line + 1, dup->start_mark.column + 1, path, first->start_mark.line + 1,
                    first->start_mark.column + 1);
}

/* Parse YAML text and hand each node to `apply`. `what` prefixes syntax errors
 * in --set values. For a --set, the root is the value and key_for_set names it. */
static int apply_text(qat_loader *L, const char *text, size_t len, const char *key_for_set) {
    yaml_parser_t parser;
    yaml_document_t doc;
    char pos[QAT_PATH_MAX + 64];
    QAT_ASSERT(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc;
        if (parser.error == YAML_READER_ERROR) {
            rc = qat_fail(QAT_EINPUT, "%s: YAML syntax error: %s at byte %zu",
                          L->set_text ? at(L, parser.problem_mark, pos, sizeof pos) : L->origin,
                          parser.problem ? parser.problem : "unreadable input", parser.problem_offset);
        } else if (parser.context) {
            rc = fail_at(L, parser.problem_mark, "YAML syntax error: %s (%s at line %zu)", parser.problem,
                         parser.context, parser.context_mark.line + 1);
        } else {
            rc = fail_at(L, parser.problem_mark, "YAML syntax error: %s",
                         parser.problem ? parser.problem : "unknown error");
        }
        yaml_parser_delete(&parser);
        return rc;
    }
    int rc = QAT_OK;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    L->generation++;
    if (root && !L->set_text) {
        rc = qat_yaml_unique_keys(&doc, root, L->origin);
    } else if (root) {
        char path[512] = "";
        yaml_node_t *dup, *first;
        if (find_repeat(&doc, root, path, sizeof path, 0, &dup, &first))
            rc = fail_at(L, dup->start_mark, "duplicate key '%s.%s' in the value (first given at column %zu)",
                         key_for_set, path, first->start_mark.column + 1);
    }
    if (rc) {
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        return rc;
    }
    if (key_for_set) {
        /* An empty value (`--set data.shards=`) is an empty plain scalar. */
        yaml_node_t empty;
        if (!root) {
            memset(&empty, 0, sizeof empty);
            empty.type = YAML_SCALAR_NODE;
            empty.data.scalar.value = (yaml_char_t *)"";
            empty.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
            root = &empty;
        }
        yaml_mark_t none = {0, 0, 0};
        rc = apply_pair(L, &doc, "", key_for_set, none, root);
    } else if (root) {
        if (root->type == YAML_MAPPING_NODE)
            rc = apply_mapping(L, &doc, "", root);
        else if (!(root->type == YAML_SCALAR_NODE &&
                   is_null_scalar((const char *)root->data.scalar.value, 1)))
            rc = fail_at(L, root->start_mark, "expected a mapping of config keys at the top level, got %s",
                         node_kind(root));
        if (!rc) {
            /* A second document would be silently ignored: refuse it. */
            yaml_document_t more;
            if (!yaml_parser_load(&parser, &more)) {
                rc = fail_at(L, parser.problem_mark, "YAML syntax error: %s",
                             parser.problem ? parser.problem : "unknown error");
            } else {
                yaml_node_t *r2 = yaml_document_get_root_node(&more);
                if (r2) rc = fail_at(L, r2->start_mark, "expected a single YAML document, found a second one");
                yaml_document_delete(&more);
            }
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

static int apply_set(qat_loader *L, const char *assignment, int index) {
    const char *eq = strchr(assignment, '=');
    L->set_text = assignment;
    L->set_index = index;
    yaml_mark_t none = {0, 0, 0};
    char key[256];
    int rc;
    if (!eq) {
        rc = fail_at(L, none, "expected key=value, e.g. train.lr=1e-3");
    } else {
        const char *a = assignment, *b = eq;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (a == b || (size_t)(b - a) >= sizeof key) {
            rc = fail_at(L, none, "expected key=value, e.g. train.lr=1e-3");
        } else {
            memcpy(key, a, (size_t)(b - a));
            key[b - a] = 0;
            rc = apply_text(L, eq + 1, strlen(eq + 1), key);
        }
    }
    L->set_text = NULL;
    return rc;
}

static void loader_init(qat_loader *L, qat_config *cfg, const char *origin) {
    memset(L, 0, sizeof *L);
    L->cfg = cfg;
    L->origin = origin;
}

/* ---------------------------------------------------------------- defaults */

void qat_config_defaults(qat_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < N_KEYS; i++) {
        const qat_key *k = &qat_keys[i];
        char why[256];
        if (k->type == K_LIST) continue; /* empty: zeroed above */
        int rc = assign_scalar(cfg, k, k->def, 1, why, sizeof why);
        QAT_ASSERT(rc == 0); /* a default outside its own range is a bug in the table */
    }
}

/* -------------------------------------------------------------- validation */

/* Prefix for a message about key `name`: where it was given, else the origin. */
static const char *where_key(const qat_config *cfg, const qat_loader *L, const char *name, char *buf, size_t n) {
    int ki = key_index(name);
    QAT_ASSERT(ki >= 0);
    if (L && L->where[ki].line)
        snprintf(buf, n, "%s:%d:%d", L->origin, L->where[ki].line, L->where[ki].col);
    else if (L && L->where[ki].set && L->sets)
        snprintf(buf, n, "--set %s", L->sets[L->where[ki].set - 1]);
    else
        snprintf(buf, n, "%s", cfg->source_path[0] ? cfg->source_path : "config");
    return buf;
}

#define VFAIL(key, ...)                                                                  \
    do {                                                                                 \
        char pos_[QAT_PATH_MAX + 64], msg_[2048];                                        \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                        \
        return qat_fail(QAT_EINPUT, "%s: %s", where_key(cfg, L, key, pos_, sizeof pos_), msg_); \
    } while (0)

static int validate_at(const qat_config *cfg, const qat_loader *L) {
    /* Per-key: the same checks as the parser, for structs filled by code. */
    for (int i = 0; i < N_KEYS; i++) {
        const qat_key *k = &qat_keys[i];
        const void *f = cfield(cfg, k);
        char why[1024], text[64];
        switch (k->type) {
        case K_INT:
            snprintf(text, sizeof text, "%d", *(const int *)f);
            if (check_number(k, *(const int *)f, text, why, sizeof why)) VFAIL(k->key, "%s: %s", k->key, why);
            break;
        case K_F64:
            fmt_double(text, sizeof text, *(const double *)f);
            if (!isfinite(*(const double *)f)) VFAIL(k->key, "%s: %s is not a finite number", k->key, text);
            if (check_number(k, *(const double *)f, text, why, sizeof why)) VFAIL(k->key, "%s: %s", k->key, why);
            break;
        case K_BOOL:
            if (*(const int *)f != 0 && *(const int *)f != 1) VFAIL(k->key, "%s: expected 0 or 1", k->key);
            break;
        case K_STR:
            if (!memchr(f, 0, k->size)) VFAIL(k->key, "%s: string is not terminated", k->key);
            if (check_string(k, f, why, sizeof why)) VFAIL(k->key, "%s: %s", k->key, why);
            break;
        case K_LIST:
            if (cfg->data.n_text < 0 || cfg->data.n_text > QAT_MAX_TEXT_FILES)
                VFAIL(k->key, "%s: bad file count %d", k->key, cfg->data.n_text);
            for (int j = 0; j < cfg->data.n_text; j++)
                if (!memchr(cfg->data.text[j], 0, k->size) || !cfg->data.text[j][0])
                    VFAIL(k->key, "%s: entry %d is empty or not terminated", k->key, j);
            break;
        case K_U64:
            break;
        }
    }

    /* Model: without a preset the three sizes must be explicit; sizes given
     * explicitly must agree with each other (presets are checked by model/). */
    const qat_model_cfg *m = &cfg->model;
    if (!m->preset[0]) {
        if (m->layers <= 0) VFAIL("model.layers", "model.layers must be given (> 0) when model.preset is \"\"");
        if (m->dim <= 0) VFAIL("model.dim", "model.dim must be given (> 0) when model.preset is \"\"");
        if (m->heads <= 0) VFAIL("model.heads", "model.heads must be given (> 0) when model.preset is \"\"");
    }
    if (m->dim > 0 && m->heads > 0) {
        if (m->dim % m->heads)
            VFAIL("model.heads", "model.heads = %d must divide model.dim = %d", m->heads, m->dim);
        if ((m->dim / m->heads) % 2)
            VFAIL("model.heads", "model.dim / model.heads = %d must be even (RoPE rotates pairs)",
                  m->dim / m->heads);
    }

    /* Data: exactly one source, with the fields it needs and none of the others'. */
    const qat_data_cfg *d = &cfg->data;
    int has_shards = d->shards[0] != 0, has_text = d->n_text > 0;
    if (!strcmp(d->source, "english")) {
        if (has_shards)
            VFAIL("data.source", "data.source is english but data.shards is set; give exactly one data source");
        if (has_text)
            VFAIL("data.source", "data.source is english but data.text is set; give exactly one data source");
        if (m->vocab < 256)
            VFAIL("model.vocab", "model.vocab = %d is too small for the byte tokens of data.source english (>= 256)",
                  m->vocab);
    } else if (!strcmp(d->source, "synthetic")) {
        if (has_shards)
            VFAIL("data.source", "data.source is synthetic but data.shards is set; give exactly one data source");
        if (has_text)
            VFAIL("data.source", "data.source is synthetic but data.text is set; give exactly one data source");
        if (d->synth_vocab > m->vocab)
            VFAIL("data.synth_vocab", "data.synth_vocab = %d exceeds model.vocab = %d", d->synth_vocab, m->vocab);
    } else if (!strcmp(d->source, "shards")) {
        if (!has_shards) VFAIL("data.source", "data.source is shards but data.shards (a glob) is not given");
        if (has_text)
            VFAIL("data.text", "both data.shards and data.text are set; give exactly one data source");
    } else { /* text */
        if (!has_text) VFAIL("data.source", "data.source is text but data.text (a list of files) is not given");
        if (has_shards)
            VFAIL("data.shards", "both data.shards and data.text are set; give exactly one data source");
        if (m->vocab < 256)
            VFAIL("model.vocab", "model.vocab = %d is too small for byte tokens of data.text (>= 256)", m->vocab);
    }
    if (d->val_shards[0] && strcmp(d->source, "shards"))
        VFAIL("data.val_shards", "data.val_shards is only used with data.shards (data.source is %s)", d->source);

    /* Train: a budget, and whole sequences per step and per evaluation. */
    const qat_train_cfg *t = &cfg->train;
    if (t->tokens <= 0 && t->tokens_per_param <= 0)
        VFAIL("train.tokens", "train.tokens and train.tokens_per_param are both 0; give a token budget");
    if (t->batch_tokens % m->seq_len)
        VFAIL("train.batch_tokens", "train.batch_tokens = %d must be a multiple of model.seq_len = %d",
              t->batch_tokens, m->seq_len);
    if (t->eval_tokens < m->seq_len)
        VFAIL("train.eval_tokens", "train.eval_tokens = %d must hold at least one sequence (model.seq_len = %d)",
              t->eval_tokens, m->seq_len);
    return QAT_OK;
}

int qat_config_validate(const qat_config *cfg) { return validate_at(cfg, NULL); }

/* ---------------------------------------------------------------- loading */

/* data.source as written wins over the source implied by data.shards/data.text,
 * whatever the order of the keys; a contradiction is then caught by validation. */
static void settle_source(qat_loader *L) {
    if (L->source_explicit) set_str(L->cfg->data.source, sizeof L->cfg->data.source, L->source);
}

/* A mapping node of a document parsed by someone else (a sweep file's inline
 * `base:`): its marks are positions in that document's file, so every message
 * names the right FILE:LINE:COL without re-reading any text. */
static int apply_node(qat_loader *L, yaml_document_t *doc, yaml_node_t *node) {
    L->generation++;
    if (node->type == YAML_MAPPING_NODE) return apply_mapping(L, doc, "", node);
    if (node->type == YAML_SCALAR_NODE &&
        is_null_scalar((const char *)node->data.scalar.value, node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
        return QAT_OK;
    return fail_at(L, node->start_mark, "expected a mapping of config keys, got %s", node_kind(node));
}

/* data/ expands the glob long after loading; it names the line of data.shards from this. */
static void record_data_positions(qat_config *cfg, const qat_loader *L) {
    char buf[sizeof cfg->data.shards_at];
    int ki = key_index("data.shards");
    if (cfg->data.shards[0] && (L->where[ki].line || L->where[ki].set))
        set_str(cfg->data.shards_at, sizeof cfg->data.shards_at, where_key(cfg, L, "data.shards", buf, sizeof buf));
}

/* Defaults, then the text (or, when `node` is given, that node), then the
 * overrides, then validation unless `validate` is 0. */
static int load_from(const char *text, size_t len, yaml_document_t *doc, yaml_node_t *node, const char *origin,
                     const char *const *sets, int n_set, int validate, qat_config *out) {
    qat_config *cfg = qat_xmalloc(sizeof *cfg);
    qat_loader *L = qat_xmalloc(sizeof *L);
    qat_config_defaults(cfg);
    loader_init(L, cfg, origin ? origin : "config");
    L->sets = sets;
    int rc = node ? apply_node(L, doc, node) : text ? apply_text(L, text, len, NULL) : QAT_OK;
    for (int i = 0; !rc && i < n_set; i++) rc = apply_set(L, sets[i], i + 1);
    if (!rc) {
        settle_source(L);
        set_str(cfg->source_path, sizeof cfg->source_path, origin ? origin : "");
        record_data_positions(cfg, L);
        if (validate) rc = validate_at(cfg, L);
    }
    if (!rc) memcpy(out, cfg, sizeof *cfg);
    free(L);
    free(cfg);
    return rc;
}

static int load_text(const char *text, size_t len, const char *origin, const char *const *sets, int n_set,
                     qat_config *out) {
    return load_from(text, len, NULL, NULL, origin, sets, n_set, 1, out);
}

int qat_config_load_ex(const char *path, const char *const *sets, int n_set, int validate, qat_config *cfg) {
    if (!path) return load_from(NULL, 0, NULL, NULL, NULL, sets, n_set, validate, cfg);
    FILE *f = fopen(path, "rb");
    if (!f) return qat_fail(QAT_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    strbuf b = {0};
    char chunk[8192];
    size_t got;
    sb_printf(&b, "%s", "");
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) sb_printf(&b, "%.*s", (int)got, chunk);
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b.s);
        return qat_fail(QAT_EINPUT, "%s: cannot read: %s", path, strerror(errno));
    }
    if (strlen(b.s) != b.n) {
        free(b.s);
        return qat_fail(QAT_EINPUT, "%s: contains a NUL byte, expected YAML text", path);
    }
    int rc = load_from(b.s, b.n, NULL, NULL, path, sets, n_set, validate, cfg);
    free(b.s);
    return rc;
}

int qat_config_load(const char *path, const char *const *sets, int n_set, qat_config *cfg) {
    return qat_config_load_ex(path, sets, n_set, 1, cfg);
}

int qat_config_load_node(struct yaml_document_s *doc, struct yaml_node_s *node, const char *origin,
                         const char *const *sets, int n_set, int validate, qat_config *cfg) {
    QAT_ASSERT(doc && node);
    return load_from(NULL, 0, doc, node, origin, sets, n_set, validate, cfg);
}

int qat_config_load_string(const char *yaml, const char *origin, qat_config *cfg) {
    return load_text(yaml, strlen(yaml), origin ? origin : "config", NULL, 0, cfg);
}

int qat_config_set(qat_config *cfg, const char *assignment) {
    qat_config *tmp = qat_xmalloc(sizeof *tmp);
    qat_loader *L = qat_xmalloc(sizeof *L);
    memcpy(tmp, cfg, sizeof *tmp);
    loader_init(L, tmp, cfg->source_path[0] ? cfg->source_path : "config");
    const char *sets[1] = {assignment};
    L->sets = sets;
    int rc = apply_set(L, assignment, 1);
    if (!rc) {
        settle_source(L);
        memcpy(cfg, tmp, sizeof *tmp);
    }
    free(L);
    free(tmp);
    return rc;
}

/* ---------------------------------------------------------------- emitting */

/* Double-quoted YAML string: always quoted so "", "2:4", "yes" and "~" stay strings. */
static void emit_quoted(strbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            sb_printf(b, "\\x%02x", *p);
        else
            sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}

/* Value of key k as YAML text (lists excepted). */
static void emit_scalar(strbuf *b, const qat_config *cfg, const qat_key *k) {
    const void *f = cfield(cfg, k);
    char num[64];
    switch (k->type) {
    case K_INT: sb_printf(b, "%d", *(const int *)f); break;
    case K_U64: sb_printf(b, "%llu", (unsigned long long)*(const uint64_t *)f); break;
    case K_F64: fmt_double(num, sizeof num, *(const double *)f); sb_printf(b, "%s", num); break;
    case K_BOOL: sb_printf(b, "%s", *(const int *)f ? "true" : "false"); break;
    case K_STR: emit_quoted(b, f); break;
    case K_LIST: QAT_ASSERT(0);
    }
}

/* Split "a.b.c" in place into its components; returns their count (<= 8). */
static int split_path(char *s, char **out) {
    int n = 0;
    if (!*s) return 0;
    for (char *p = s; n < 8;) {
        out[n++] = p;
        p = strchr(p, '.');
        if (!p) break;
        *p++ = 0;
    }
    return n;
}

char *qat_config_to_yaml(const qat_config *cfg) {
    strbuf b = {0};
    sb_printf(&b, "# qat run config, fully resolved (docs/config.md); every key, defaults included.\n");
    char prev[128] = "";
    for (int i = 0; i < N_KEYS; i++) {
        const qat_key *k = &qat_keys[i];
        /* Open the groups this key enters: the components of its group path
         * that differ from the previous key's group path. */
        char group[128], *comp[8], *pcomp[8];
        set_str(group, sizeof group, k->key);
        char *dot = strrchr(group, '.');
        if (dot) *dot = 0; else group[0] = 0;
        char pbuf[128];
        set_str(pbuf, sizeof pbuf, prev);
        int nc = split_path(group, comp), np = split_path(pbuf, pcomp), common = 0;
        while (common < nc && common < np && !strcmp(comp[common], pcomp[common])) common++;
        for (int c = common; c < nc; c++) sb_printf(&b, "%*s%s:\n", 2 * c, "", comp[c]);
        int depth = nc;
        set_str(prev, sizeof prev, k->key);
        if ((dot = strrchr(prev, '.'))) *dot = 0; else prev[0] = 0;

        size_t line_start = b.n;
        sb_printf(&b, "%*s%s: ", 2 * depth, "", last_component(k->key));
        if (k->type == K_LIST) {
            if (!cfg->data.n_text) sb_printf(&b, "[]");
        } else {
            emit_scalar(&b, cfg, k);
        }
        int width = (int)(b.n - line_start);
        sb_printf(&b, "%*s# %s\n", width < 40 ? 40 - width : 1, "", k->help);
        if (k->type == K_LIST)
            for (int j2 = 0; j2 < cfg->data.n_text; j2++) {
                sb_printf(&b, "%*s- ", 2 * depth + 2, "");
                emit_quoted(&b, cfg->data.text[j2]);
                sb_printf(&b, "\n");
            }
    }
    return b.s;
}
