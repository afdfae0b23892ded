/*
 * core/config_keys.c — the table of config keys (docs/config.md) and what each
 * row allows.
 *
 * One row per dotted key: its type, the field it fills, its range or allowed
 * values, its default (as YAML text, parsed by the same code as a file, so the
 * default can never disagree with what the parser accepts) and a one-line help.
 * Defaults, parsing, --set, range checks, "did you mean", the emitted YAML and
 * the key listing all walk this table, so adding a key to qat_config means
 * adding one row here (and a line in docs/config.md, which tests/test_config.c
 * checks against it).
 *
 * The per-row checks live here too, since they read nothing but the row and the
 * value: the parser (config_load.c) runs them on YAML text, validation runs them
 * again on structs that code filled.
 *
 * Schedule names are defined here, once: the config stores the qat_schedule
 * enum, and core cannot include optim/, so the vocabulary sits next to the row
 * that parses it and optim/schedule.c switches on the enum.
 */
#include "config_table.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

const char *const qat_schedule_names[] = {
    [QAT_SCHEDULE_COSINE] = "cosine", [QAT_SCHEDULE_CONSTANT] = "constant", [QAT_SCHEDULE_LINEAR] = "linear", NULL,
};

/* ------------------------------------------------------------------ the table */

#define OFF(f) offsetof(qat_config, f)
#define SZ(f) sizeof(((qat_config *)0)->f)
#define INF HUGE_VAL
#define INT_K(k, f, lo, hi, fl, d, h) {k, K_INT, OFF(f), 0, lo, hi, fl, NULL, d, h}
#define U64_K(k, f, d, h) {k, K_U64, OFF(f), 0, 0, 0, 0, NULL, d, h}
#define F64_K(k, f, lo, hi, fl, d, h) {k, K_F64, OFF(f), 0, lo, hi, fl, NULL, d, h}
#define STR_K(k, f, fl, al, d, h) {k, K_STR, OFF(f), SZ(f), 0, 0, fl, al, d, h}
#define BOOL_K(k, f, d, h) {k, K_BOOL, OFF(f), 0, 0, 1, 0, NULL, d, h}
#define ENUM_K(k, f, names, d, h) {k, K_ENUM, OFF(f), 0, 0, 0, 0, names, d, h}

static const char *const presets[] = {"", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", NULL};
static const char *const sources[] = {"english", "synthetic", "shards", "text", NULL};
static const char *const precisions[] = {"fp32", "bf16", NULL};
/* The one list of estimator spellings: "" (the format's default), then in the
 * order of compress/estimator.h's qat_est, which reads its names from here. */
const char *const qat_estimator_names[] = {"", "ste", "clip", "trust", "lsq", "rbbm", "pv", "masked", NULL};
static const char *const scales[] = {"rms", "absmax", "lsq", NULL};
static const char *const roundings[] = {"rtn", "sr", NULL};

/* The two compress sides share their rows; only the prefix and the field differ. */
#define SIDE_KEYS(P, S)                                                                        \
    STR_K("compress." P ".format", S.format, F_NONEMPTY | F_NOSPACE, NULL, "fp32",             \
          "format string (docs/formats.md): fp32, int4, fp4, sp50, 2:4, sp50+int4, vq2x2, noise(int4), mxfp4, nvfp4, int4@g128, FORMAT@MOD"), \
    STR_K("compress." P ".estimator", S.estimator, 0, qat_estimator_names, "",                          \
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
    F64_K("compress." P ".pv_lr", S.pv_lr, 0, INF, 0, "0.01",                                  \
          "pv estimator: V-step Adam learning rate of the buffer; 0 = the buffer is the weight"), \
    F64_K("compress." P ".pv_beta2", S.pv_beta2, 0, 1, F_OPEN_MAX, "0.95",                     \
          "pv estimator: V-step Adam beta2 (beta1 is 0)"),                                     \
    F64_K("compress." P ".pv_delta_decay", S.pv_delta_decay, 0, 1, 0, "0",                     \
          "pv estimator: buffer <- d*decoded + (1-d)*buffer after each V step"),               \
    BOOL_K("compress." P ".per_row", S.per_row, "false",                                       \
           "sparsity: top-k per row instead of per tensor")

const qat_key qat_config_keys[] = {
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
    INT_K("model.seq_len", model.seq_len, 2, 1 << 20, 0, "128",
          "context length T (>= 2)"),
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
    INT_K("data.synth_vocab", data.synth_vocab, 0, QAT_SYNTH_MAX_VOCAB, 0, "0", "synthetic vocabulary; 0 = model.vocab"),
    INT_K("data.synth_topics", data.synth_topics, 1, QAT_SYNTH_MAX_TOPICS, 0, "16", "synthetic document-level topics"),
    F64_K("data.synth_tokens", data.synth_tokens, 0, INF, 0, "0",
          "synthetic corpus size in tokens; 0 = enough for the run"),

    /* Token counts are doubles on the way to int64 step and token counters
     * (run.h5, ckpt.h5): above 2^53 a double no longer holds every whole number,
     * so the count the run logs would not be the count it saw. */
    F64_K("train.tokens", train.tokens, 0, QAT_MAX_TOKENS, 0, "0",
          "training tokens; 0 = tokens_per_param * N (tokens wins when both are set)"),
    F64_K("train.tokens_per_param", train.tokens_per_param, 0, QAT_MAX_TOKENS, 0, "20",
          "tokens per non-embedding parameter, used when tokens is 0"),
    INT_K("train.batch_tokens", train.batch_tokens, 1, INT_MAX, 0, "4096",
          "tokens per optimizer step (B*T, a multiple of seq_len)"),
    F64_K("train.lr", train.lr, 0, INF, F_OPEN_MIN, "3e-3", "peak learning rate"),
    F64_K("train.warmup", train.warmup, 0, 1, 0, "0.1", "warm-up fraction of the steps"),
    ENUM_K("train.schedule", train.schedule, qat_schedule_names, "cosine", "cosine|constant|linear"),
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
    STR_K("train.init", train.init, 0, NULL, "",
          "checkpoint whose weights start the run, as --init (which overrides it); \"\" = none; "
          "relative to the current directory"),
    STR_K("train.precision", train.precision, 0, precisions, "fp32",
          "fp32|bf16: bf16 operands (f32 accumulation) in the linear layers' products; "
          "weights, optimizer and quantizers stay f32"),

    SIDE_KEYS("weights", weights),
    SIDE_KEYS("activations", activations),
    STR_K("compress.gradients.format", gradients.format, F_NONEMPTY | F_NOSPACE, NULL, "fp32",
          "format of the backward products' operands (dY, W, X); fp32 = unquantized backward"),
    STR_K("compress.gradients.rounding", gradients.rounding, 0, roundings, "rtn",
          "rtn|sr: round to nearest or stochastic (unbiased) rounding in the backward"),
    /* 1024 = compress/gradq.h's QAT_GRADQ_MAX_HADAMARD: the key's own range, so
     * the loader, the message and docs/config.md state one rule */
    INT_K("compress.gradients.hadamard", gradients.hadamard, 0, 1024, F_POW2, "0",
          "Hadamard block along each backward product's inner dim: 0 = off, or a power of two from 2 to 1024"),
};

enum { N_KEYS = (int)(sizeof qat_config_keys / sizeof qat_config_keys[0]) };
_Static_assert(N_KEYS <= QAT_CONFIG_KEYS_MAX, "raise QAT_CONFIG_KEYS_MAX: the loader's per-key arrays");
const int qat_config_n_keys = N_KEYS;

/* ------------------------------------------------------------------ lookup */

int qat_config_key_count(void) { return N_KEYS; }

int qat_config_key_find(const char *key) {
    if (!key) return -1;
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(qat_config_keys[i].key, key)) return i;
    return -1;
}

void qat_config_key_get(int i, qat_config_key_info *out) {
    QAT_ASSERT(i >= 0 && i < N_KEYS);
    static const char *const type_names[] = {
        [K_INT] = "int", [K_U64] = "unsigned int", [K_F64] = "number",
        [K_STR] = "string", [K_BOOL] = "bool", [K_LIST] = "list",
        [K_ENUM] = "string", /* an enum is a string to the user */
    };
    const qat_key *k = &qat_config_keys[i];
    memset(out, 0, sizeof *out);
    out->key = k->key;
    out->type = type_names[k->type];
    out->min = k->type == K_INT || k->type == K_F64 ? k->min : -INF;
    out->max = k->type == K_INT || k->type == K_F64 ? k->max : INF;
    out->min_open = (k->flags & F_OPEN_MIN) != 0;
    out->max_open = (k->flags & F_OPEN_MAX) != 0;
    out->pow2 = (k->flags & F_POW2) != 0;
    out->allowed = k->allowed;
    out->def = k->def;
    out->help = k->help;
}

int qat_config_is_group(const char *prefix) {
    size_t n = strlen(prefix);
    if (!n) return 0;
    for (int i = 0; i < N_KEYS; i++)
        if (!strncmp(qat_config_keys[i].key, prefix, n) && qat_config_keys[i].key[n] == '.') return 1;
    return 0;
}

/* ----------------------------------------------------------- checking a value */

void qat_config_fmt_double(char *buf, size_t n, double v) {
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
    qat_config_fmt_double(lo, sizeof lo, k->min);
    qat_config_fmt_double(hi, sizeof hi, k->max);
    /* an int key's upper bound is said even when it is INT_MAX: 2147483648 is refused,
     * and "expected an integer >= 1" would contradict the value refused */
    int has_lo = k->min > -INF, has_hi = k->max < INF;
    if (has_lo && has_hi)
        snprintf(buf, n, "%s in %c%s, %s%c", what, k->flags & F_OPEN_MIN ? '(' : '[', lo, hi,
                 k->flags & F_OPEN_MAX ? ')' : ']');
    else if (has_lo)
        snprintf(buf, n, "%s %s %s", what, k->flags & F_OPEN_MIN ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(buf, n, "%s %s %s", what, k->flags & F_OPEN_MAX ? "<" : "<=", hi);
    else
        snprintf(buf, n, "%s", what);
    /* a key whose range starts at 0 has no -1 (auto) and no block of 1 */
    if (k->flags & F_POW2 && k->min >= 0)
        snprintf(buf, n, "0 (off) or a power of two from 2 to %s", hi);
    else if (k->flags & F_POW2)
        snprintf(buf, n, "-1 (auto), 0 (off) or a power of two from 2 to %s", hi);
}

static void describe_allowed(const char *const *allowed, char *buf, size_t n) {
    buf[0] = 0;
    for (int i = 0; allowed[i]; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s%s%s", i ? ", " : "",
                 allowed[i][0] ? "" : "\"", allowed[i], allowed[i][0] ? "" : "\"");
}

int qat_config_check_number(const qat_key *k, double v, const char *text, char *why, size_t n) {
    int ok = v >= k->min && v <= k->max;
    if ((k->flags & F_OPEN_MIN) && v == k->min) ok = 0;
    if ((k->flags & F_OPEN_MAX) && v == k->max) ok = 0;
    char range[128];
    describe_range(k, range, sizeof range);
    if (ok && k->flags & F_POW2 && v > 0) {
        long long i = (long long)v, lo = 1;
        if (!(i & (i - 1))) return 0;
        /* in range but not a power of two: say that, with the two nearest ("12 is
         * out of range" named a range 12 is in) */
        while (lo * 2 <= i) lo *= 2;
        if (2 * lo <= k->max)
            snprintf(why, n, "%s is not a power of two, expected %s; the nearest are %lld and %lld", text, range, lo,
                     2 * lo);
        else
            snprintf(why, n, "%s is not a power of two, expected %s; the nearest is %lld", text, range, lo);
        return 1;
    }
    if (ok) return 0;
    snprintf(why, n, "%s is out of range, expected %s", text, range);
    return 1;
}

/* "'cosin' is not allowed, expected one of cosine, constant, linear (did you mean ...)". */
static void not_allowed(const qat_key *k, const char *v, char *why, size_t n) {
    char list[256];
    describe_allowed(k->allowed, list, sizeof list);
    snprintf(why, n, "'%s' is not allowed, expected one of %s (did you mean '%s'?)", v, list,
             qat_config_nearest_word(v, k->allowed));
}

int qat_config_allowed_index(const qat_key *k, const char *v, char *why, size_t n) {
    for (int i = 0; k->allowed[i]; i++)
        if (!strcmp(v, k->allowed[i])) return i;
    not_allowed(k, v, why, n);
    return -1;
}

int qat_config_check_string(const qat_key *k, const char *v, char *why, size_t n) {
    size_t len = strlen(v);
    /* a key with a fixed vocabulary is refused by its list, whatever the length:
     * "stochastic" for rounding is a wrong word (expected rtn or sr), not a long one,
     * and an allowed word that did not fit its buffer would be a bug in the table */
    if (k->allowed) {
        if (qat_config_allowed_index(k, v, why, n) < 0) return 1;
        QAT_ASSERT(len < k->size);
        return 0;
    }
    if (len >= k->size) {
        snprintf(why, n, "value is too long (%zu characters, at most %zu)", len, k->size - 1);
        return 1;
    }
    if ((k->flags & F_NONEMPTY) && !len) {
        snprintf(why, n, "expected a non-empty string");
        return 1;
    }
    if (k->flags & F_NOSPACE) /* where and which, as compress/format.c says it */
        for (const char *p = v; *p; p++)
            if (isspace((unsigned char)*p)) {
                size_t i = (size_t)(p - v);
                snprintf(why, n, "'%s' has %s %s at character %zu, expected a format string such as int4 (no white space)",
                         v, i + 1 == len ? "a trailing" : i == 0 ? "a leading" : "a", qat_space_name((unsigned char)*p), i + 1);
                return 1;
            }
    if ((k->flags & F_FILENAME) && (strchr(v, '/') || !strcmp(v, ".") || !strcmp(v, ".."))) {
        snprintf(why, n, "'%s' cannot be a directory name (no '/', not '.' or '..')", v);
        return 1;
    }
    if (k->flags & F_FILENAME) /* a newline or an escape in a directory name, printed raw to the terminal */
        for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
            /* C0 and DEL, and C1 (U+0080..U+009F: UTF-8 C2 80..C2 9F, e.g. CSI, NEL) */
            unsigned c = *p < 0x20 || *p == 0x7f ? *p : (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) ? p[1] : 0;
            if (c || *p < 0x20) {
                snprintf(why, n, "contains the control character U+%04X, expected a directory name of printable "
                         "characters", c);
                return 1;
            }
        }
    return 0;
}
