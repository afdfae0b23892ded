/*
 * core/config.h — the resolved run configuration (docs/config.md).
 *
 * A run is described by one YAML file plus `--set key=value` overrides. The
 * loader fills a qat_config with defaults, applies the file, then the overrides,
 * then validates every value; any problem is reported as
 *     FILE:LINE:COL: <what was wrong>, expected <what is allowed>
 * (for an unknown key, with the nearest valid key) and returns QAT_EINPUT.
 *
 * Every key is a dotted path (`train.lr`, `compress.weights.format`). The table of
 * keys lives in config_keys.c: one row per key with its type, range, default and a
 * one-line help text, so --print-config, --set and the error messages all agree.
 * The other files each do one thing with that table:
 *     config_load.c    defaults, files, --set overrides and validation
 *     config_emit.c    the resolved YAML (--print-config, checkpoints)
 *     config_nearest.c "did you mean" by edit distance
 *     yaml_dupkeys.c   refusing a key given twice in one YAML mapping
 *     yaml_limits.c    refusing nesting and anchors that would make reading slow
 *
 * Model presets (`model.preset: s3`) are resolved by the model module, not here:
 * the loader only records the name; explicit model keys override the preset.
 * Names with a fixed vocabulary that code branches on every step (the schedule)
 * are stored as an enum, parsed once by the loader.
 */
#ifndef QAT_CORE_CONFIG_H
#define QAT_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define QAT_NAME_MAX 128
#define QAT_PATH_MAX 1024
#define QAT_FMT_MAX 64
#define QAT_MAX_TEXT_FILES 64
/* The largest token budget a run accepts (2^53): every whole number up to it is
 * exact as a double, so tokens and steps are counted exactly (docs/config.md). */
#define QAT_MAX_TOKENS 9007199254740992.0
/* What the synthetic corpus can generate (data/synth.c checks with these, and the
 * config refuses the rest where it is written): at most 64 topics, ids that fit 16
 * bits, and for K topics a vocabulary holding BOS, COPY, one token per topic, the
 * 16 copy-spec tokens and at least 32 content tokens. */
#define QAT_SYNTH_MAX_TOPICS 64
#define QAT_SYNTH_MAX_VOCAB 65536
#define QAT_SYNTH_MIN_VOCAB(topics) (2 + (topics) + 16 + 32)
/* Tokens per held-out block of a real corpus that is split (docs/data.md, "The split";
 * data/split.h): a sequence never crosses a block, so it bounds model.seq_len there. */
#define QAT_SPLIT_BLOCK 65536
#define QAT_MAX_SETS 256 /* --set overrides one command line may give (train, grads, eval) */

/* How one side (weights or activations) of every block linear is compressed. */
typedef struct {
    char format[QAT_FMT_MAX]; /* docs/formats.md format string; "fp32" = uncompressed */
    char estimator[16];       /* ste | clip | trust | lsq | rbbm | pv | masked ("" = the format's default) */
    int hadamard;             /* Hadamard block size along the input dim; 0 = off; -1 = auto (min(128, pow2 | in)) */
    char scale[16];           /* scale rule: rms | absmax | lsq */
    int group;                /* scale group size along the input dim; 0 = whole row */
    double clip_scale;        /* clip estimator: mask |x| <= c·s (docs/formats.md, default 1.0) */
    double trust;             /* trust estimator: T in RMS units; <= 0 means the default half step */
    double rbbm_p;            /* rbbm: band parameter p in (0, 0.5) */
    double pv_tau;            /* pv: fraction of groups re-projected per step */
    int pv_group;             /* pv: group size (elements along the input dim) */
    double pv_lr;             /* pv: V-step Adam lr of the buffer; 0 = the buffer is the weight (model's AdamW) */
    double pv_beta2;          /* pv: V-step Adam beta2 (beta1 = 0) */
    double pv_delta_decay;    /* pv: buffer decays towards the decoded weight by this after each V step */
    int per_row;              /* sparsity: 1 = top-k per row instead of per tensor */
} qat_compress_side;

/* compress.gradients.*: the backward products' operands (docs/formats.md, "The
 * backward pass"). "fp32" leaves the backward as it is. */
typedef struct {
    char format[QAT_FMT_MAX]; /* format of dY and of the re-quantized W and X operands */
    char rounding[8];         /* rtn (round to nearest, ties to even) | sr (stochastic, unbiased) */
    int hadamard;             /* Hadamard block along each backward product's inner dim; 0 = off */
} qat_compress_grad;

typedef struct {
    char preset[16];          /* "" or s1..s8 */
    int layers;               /* 0 = from preset */
    int dim;                  /* model width d */
    int heads;                /* attention heads; must divide dim */
    int hidden;               /* SwiGLU hidden size; 0 = 32·ceil((8d/3)/32) */
    int vocab;                /* vocabulary size (256 for bytes/synthetic default) */
    int seq_len;              /* context length T */
    double rope_theta;        /* 10000 */
    double norm_eps;          /* 1e-5 */
    double init_std;          /* 0.02 */
} qat_model_cfg;

#define QAT_CONFIG_KEYS_MAX 128 /* room for every key (config_keys.c asserts it) */

typedef struct {
    char source[16];                          /* english | synthetic | shards | text */
    char shards[QAT_PATH_MAX];                /* glob of llm.c shards, e.g. "dir/shard_*.bin" */
    char text[QAT_MAX_TEXT_FILES][QAT_PATH_MAX]; /* plain-text files, byte tokens */
    int n_text;
    char val_shards[QAT_PATH_MAX];            /* optional explicit validation shards */
    double val_fraction;                      /* held-out fraction when no val set is given */
    /* synthetic corpus knobs (docs/data.md) */
    uint64_t synth_seed;                      /* corpus seed (independent of the run seed) */
    int synth_vocab;                          /* 0 = model.vocab */
    int synth_topics;                         /* document-level topics */
    double synth_tokens;                      /* corpus size in tokens; 0 = enough for the run */
    /* Not a key (never emitted): where a non-empty data.shards was given, "FILE:LINE:COL"
     * or "--set data.shards=...", "" otherwise; the loader fills it so that data/ can name
     * the line of a glob that matches nothing. Like source_path, it can differ between
     * two configs with the same values. */
    char shards_at[QAT_PATH_MAX + 96];
    char val_shards_at[QAT_PATH_MAX + 96]; /* the same for data.val_shards */
    char text_at[QAT_PATH_MAX + 96];       /* the same for a non-empty data.text */
    /* Not a key: the command-line option that replaced the config's data (`qat eval --data`),
     * which data/'s messages name instead of a key the user never wrote; "" otherwise. */
    char option[16];
    /* Not a key: qat_config.stored, mirrored for data/, which sees only this struct. */
    int stored;
} qat_data_cfg;

/* Learning-rate schedules (optim/schedule.c computes them; docs/model.md). The
 * config holds the enum, so the training step switches on a number; the names
 * below are the one list of them, which train.schedule's row, its messages and
 * --print-config all use. */
typedef enum {
    QAT_SCHEDULE_COSINE,   /* QuEST's one-cycle: half-cosine ramp up, half-cosine decay */
    QAT_SCHEDULE_CONSTANT, /* linear ramp up, then hold */
    QAT_SCHEDULE_LINEAR,   /* linear ramp up, linear decay */
} qat_schedule;
/* "cosine", "constant", "linear", NULL: the name of each qat_schedule, in enum order. */
extern const char *const qat_schedule_names[];
/* compress.*.estimator spellings: "", then compress/estimator.h's qat_est order; NULL-terminated. */
extern const char *const qat_estimator_names[];

typedef struct {
    double tokens;            /* training tokens; 0 = tokens_per_param · N */
    double tokens_per_param;  /* used when tokens == 0 */
    int batch_tokens;         /* tokens per optimizer step (B·T) */
    double lr;                /* peak learning rate */
    double warmup;            /* warm-up fraction of steps */
    qat_schedule schedule;    /* parsed from its name once, at load */
    double min_lr_ratio;      /* final lr / peak lr */
    double weight_decay;      /* AdamW decay on linear weights only */
    double beta1, beta2, eps; /* AdamW moments */
    double grad_clip;         /* global L2 norm clip; 0 = off */
    int eval_every;           /* steps between evaluations; 0 = only at the end */
    int eval_tokens;          /* held-out tokens per evaluation */
    int checkpoint_every;     /* steps between checkpoints; 0 = only at the end */
    int log_every;            /* steps between log lines/flushes */
    char precision[8];        /* fp32 | bf16: operands of the linear layers' products */
    char init[QAT_PATH_MAX];  /* checkpoint to start from (as --init, which overrides it); "" = none */
} qat_train_cfg;

typedef struct qat_config {
    char name[QAT_NAME_MAX];  /* run name; directory under --out */
    uint64_t seed;            /* run seed: init, batches, noise */
    int threads;              /* 0 = all cores */
    qat_model_cfg model;
    qat_data_cfg data;
    qat_train_cfg train;
    qat_compress_side weights;     /* compress.weights.* */
    qat_compress_side activations; /* compress.activations.* */
    qat_compress_grad gradients;   /* compress.gradients.* */
    char source_path[QAT_PATH_MAX]; /* the YAML file it came from ("" for defaults only) */
    /* Not keys (never emitted): where each key got its value, indexed like the loader's key
     * table, so that checks made after loading (model shape, formats and estimators) can name
     * the line. Like source_path, it can differ between two configs with the same values. */
    struct {
        int32_t line, col; /* 1-based position in source_path; 0 = not from the file */
        int32_t set;       /* n >= 1: given by the n-th --set override (or a sweep's grid) */
    } key_at[QAT_CONFIG_KEYS_MAX];
    /* Not a key: 1 when this is the config of a run already on disk (a --resume that finds
     * its checkpoint, eval/grads/sample of a checkpoint, a sweep's run whose directory holds
     * one), set by qat_config_mark_stored. Checks added after a run could have been made
     * (an option without effect, one data file twice) refuse new runs only: such a run is
     * taken as it was made, or its user could neither resume nor evaluate it. */
    int stored;
} qat_config;

/* Mark cfg as the config of a run already on disk (qat_config.stored, and its mirror
 * in cfg->data). */
void qat_config_mark_stored(qat_config *cfg);

/* Where `key` got its value, for a message prefix: "FILE:LINE:COL" when the file gave
 * it, "--set KEY=VALUE" (the value in effect) when an override did, else qat_config_source(cfg). `key` may also be
 * a section ("compress.weights", "model"): then the first of its keys the file or an
 * override gave, in file order. Returns buf. */
const char *qat_config_where(const qat_config *cfg, const char *key, char *buf, size_t n);

/* Where the key given last among `keys` (NULL-terminated; each a key or a section)
 * got its value, as qat_config_where: a --set counts after the file and after the
 * --sets before it, and within the file a later line (or column) after an earlier
 * one. For a check between keys, this is the key that made the combination wrong.
 * When none was given, qat_config_where of keys[0]. Returns buf. */
const char *qat_config_where_last(const qat_config *cfg, const char *const *keys, char *buf, size_t n);

/* Clear what records where the values came from (source_path, data.shards_at,
 * val_shards_at and text_at, data.option, key_at, stored),
 * so that two configs with the same values compare equal with memcmp. */
void qat_config_forget_origin(qat_config *cfg);

/* What messages about cfg as a whole name: the file it came from, else "config". */
static inline const char *qat_config_source(const qat_config *cfg) {
    return cfg->source_path[0] ? cfg->source_path : "config";
}

/* ------------------------------------------------------------ loading (config_load.c) */

/* Defaults for every key. */
void qat_config_defaults(qat_config *cfg);

/* Load `path` (may be NULL: defaults only), then apply `n_set` overrides of the
 * form "dotted.key=value" (YAML scalar syntax for the value), then validate.
 * Returns QAT_OK or QAT_EINPUT with qat_errmsg() naming file:line:col or the
 * override and what was expected. */
int qat_config_load(const char *path, const char *const *sets, int n_set, qat_config *cfg);

/* As qat_config_load, but `validate` = 0 skips the final cross-key validation
 * (per-key type and range checks still apply): a sweep's base may be completed
 * by its grid (model.dim given only there). */
int qat_config_load_ex(const char *path, const char *const *sets, int n_set, int validate, qat_config *cfg);

/* Load a config from YAML text held in memory (a checkpoint's `config` attribute);
 * `origin` names it in error messages. */
int qat_config_load_string(const char *yaml, const char *origin, qat_config *cfg);

/* Load a config from a mapping node of a YAML document the caller parsed with
 * libyaml (a sweep file's inline `base:`), then `n_set` overrides, then validate
 * unless `validate` is 0. The node's marks are positions in the caller's file,
 * so messages read `origin:LINE:COL` with that file's lines and columns. A null
 * node value (`base:` with nothing under it) means defaults. */
struct yaml_document_s;
struct yaml_node_s;
int qat_config_load_node(struct yaml_document_s *doc, struct yaml_node_s *node, const char *origin,
                         const char *const *sets, int n_set, int validate, qat_config *cfg);

/* Apply one "key=value" override to an already loaded config (no validation). */
int qat_config_set(qat_config *cfg, const char *assignment);

/* The keys one "key=value" override assigns, whatever their values: given[i] = 1 for
 * key i of the table (qat_config_key_get), else 0 (given holds qat_config_key_count()
 * bytes). A group's mapping value assigns each key written under it. Keys after a bad
 * key or value are not counted: applying the override reports that error. For commands
 * that refuse keys they have no use for (train/ckpt_model.c). Returns how many. */
int qat_config_set_keys(const char *assignment, unsigned char *given);

/* Apply `n_set` overrides to a config already loaded and valid (a checkpoint's stored
 * one), then validate. The base's positions are dropped: it was valid, so every error
 * names the override that caused it ("--set model.seq_len=100: ..."), and checks made
 * later (qat_config_where) name only overrides. cfg is unchanged on error. */
int qat_config_override(qat_config *cfg, const char *const *sets, int n_set);

/* Check ranges and cross-key rules (heads divide dim, one data source, ...). */
int qat_config_validate(const qat_config *cfg);

/* model.seq_len against a data source split into blocks of QAT_SPLIT_BLOCK tokens
 * (english, text, shards without val_shards): seq_len + 1 tokens must fit in one,
 * so seq_len <= QAT_SPLIT_BLOCK - 1 (docs/data.md, "The split"). Not part of the
 * load's rules because it honors cfg->stored, set after loading: a run already
 * made with a longer context on a tiny corpus (whose blocks then grow to one
 * sequence) is taken as made. Called with the checks of the model's sizes
 * (model/llama.c), which train, --print-config, a sweep's plan, eval and grads
 * all pass, so a new run is refused before anything is read or written. */
int qat_config_check_split(const qat_config *cfg);

/* data.synth_* given with a value other than its default while data.source is not
 * synthetic: exit 2 naming the key, since the run would ignore it. Honors
 * cfg->stored like qat_config_check_split, and is called next to it. */
int qat_config_check_synth(const qat_config *cfg);

/* ----------------------------------------------------------- emitting (config_emit.c) */

/* The resolved config as YAML text (every key, in table order); caller frees.
 * Loading this text back yields the same config. */
char *qat_config_to_yaml(const qat_config *cfg);

/* -------------------------------------------------------- the key table (config_keys.c) */

/* The key table itself (one row per dotted key, in table order), for tools and
 * tests that must agree with it: the resume check compares two configs key by
 * key, `qat fit --where` selects runs by any key, and tests/test_config.c checks
 * docs/config.md's table against it. */
typedef struct {
    const char *key;             /* dotted name, e.g. "train.lr" */
    const char *type;            /* "int", "unsigned int", "number", "string", "bool" or "list" */
    double min, max;             /* numeric range (int, number); +-HUGE_VAL when unbounded */
    int min_open, max_open;      /* 1 when that bound is excluded */
    int pow2;                    /* int: must be <= 0 or a power of two */
    const char *const *allowed;  /* string: the permitted values, NULL-terminated; NULL = any */
    const char *def;             /* default, as YAML scalar text ("[]" for the list) */
    const char *help;            /* the one-line help --print-config shows */
} qat_config_key_info;

int qat_config_key_count(void);
/* Row i (0 <= i < qat_config_key_count()). */
void qat_config_key_get(int i, qat_config_key_info *out);
/* Index of a dotted key, or -1 when there is no such key. */
int qat_config_key_find(const char *key);
/* `prefix` names a group (model, compress.weights, ...) when some key extends it. */
int qat_config_is_group(const char *prefix);
/* The value of key i in cfg as the YAML text --print-config shows (strings
 * double-quoted, the list as a flow list); caller frees. Two configs agree on
 * key i exactly when these texts are equal. (config_emit.c) */
char *qat_config_key_text(const qat_config *cfg, int i);

/* The last component of a dotted key: "lr" for "train.lr", the key itself when
 * it has no dot. */
static inline const char *qat_config_key_leaf(const char *key) {
    const char *p = key, *leaf = key;
    for (; *p; p++)
        if (*p == '.') leaf = p + 1;
    return leaf;
}

/* ---------------------------- naming mistakes (config_nearest.c, yaml_dupkeys.c) */

/* The valid dotted key closest to `key` (edit distance), for "did you mean". */
const char *qat_config_nearest_key(const char *key);

/* The candidate closest to `word` by edit distance (NULL-terminated list), for
 * "did you mean" on keys that are not config keys (a sweep file's top level). */
const char *qat_config_nearest_word(const char *word, const char *const *candidates);

/* QAT_EINPUT "ORIGIN:LINE:COL: duplicate key 'a.b' (first given at LINE:COL)"
 * for the first key repeated inside one mapping anywhere below `node` (leaf or
 * mapping key, any depth); QAT_OK when every mapping's keys are distinct. */
int qat_yaml_unique_keys(struct yaml_document_s *doc, struct yaml_node_s *node, const char *origin);

/* Limits that keep reading a file linear in its size (docs/config.md, "YAML"):
 * nesting depth, and anchors and aliases each (libyaml compares them pairwise). */
#define QAT_YAML_MAX_DEPTH 64
#define QAT_YAML_MAX_ANCHORS 100
/* Scan a fresh parser's whole input (tokens only, no document) and return 1 with
 * the offending token's mark in *at and the reason in why (n bytes) at the first
 * token past a limit; else 0, also on a syntax error, which the caller's real
 * parse (a new parser over the same input) reports. (yaml_limits.c) */
struct yaml_parser_s;
struct yaml_mark_s;
int qat_yaml_check_limits(struct yaml_parser_s *parser, struct yaml_mark_s *at, char *why, size_t n);

/* After a YAML_READER_ERROR (bytes that are not UTF-8), whose only position is
 * the byte offset parser->problem_offset: set parser->problem_mark's line and
 * column (0-based, counted in characters as the parser's own marks are) from the
 * input text (len bytes). Other errors are left as they are. (yaml_limits.c) */
void qat_yaml_reader_mark(struct yaml_parser_s *parser, const char *text, size_t len);

/* The document of YAML text (len bytes) into *doc, after the limits above:
 * 0, or 1 with nothing to free, the position in *at and the message in why
 * (n bytes): the limit passed, or "YAML syntax error: ..." (a reader error
 * placed by line and column, qat_yaml_reader_mark). (yaml_limits.c) */
struct yaml_document_s;
int qat_yaml_load_text(const char *text, size_t len, struct yaml_document_s *doc, struct yaml_mark_s *at, char *why,
                       size_t n);

/* A YAML file read whole into *text (NUL-terminated, *len bytes; the caller
 * frees it), in one pass, so a pipe or FIFO reads as a regular file does.
 * QAT_EINPUT "PATH: cannot open/read: ..." or "PATH:LINE:COL: contains a NUL
 * byte/control character" (any but tab, newline, CR). (config_load.c) */
int qat_config_read_text(const char *path, char **text, size_t *len);

#endif
