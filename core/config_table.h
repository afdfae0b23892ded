/*
 * core/config_table.h — what the config files share among themselves: the row
 * type of the key table and the few helpers more than one of them needs.
 *
 * Internal to core/config_*.c: other modules see the table only through
 * core/config.h (qat_config_key_get and friends), so a row's layout can change
 * without touching them. The table itself is defined in config_keys.c.
 */
#ifndef QAT_CORE_CONFIG_TABLE_H
#define QAT_CORE_CONFIG_TABLE_H

#include <stddef.h>
#include <string.h>

#include "config.h"

/* How a key's YAML value is read and where it lands. */
typedef enum {
    K_INT,  /* int field */
    K_U64,  /* uint64_t field */
    K_F64,  /* double field */
    K_STR,  /* char[size] field, optionally one of `allowed` */
    K_BOOL, /* int field, 0 or 1 */
    K_LIST, /* data.text: char[max][size] plus data.n_text */
    K_ENUM, /* enum field: the index of its name in `allowed` (parsed once, switched on later) */
} qat_key_type;

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
    const char *const *allowed;  /* K_STR: the permitted values, K_ENUM: the names (NULL-terminated) */
    const char *def;             /* default, as YAML scalar text */
    const char *help;            /* one line, shown in --print-config and the key listing */
} qat_key;

/* The loader keeps per-key positions in fixed arrays; config_keys.c checks that
 * the table fits. */

extern const qat_key qat_config_keys[];
extern const int qat_config_n_keys;

static inline void *qat_config_field(qat_config *cfg, const qat_key *k) { return (char *)cfg + k->off; }
static inline const void *qat_config_cfield(const qat_config *cfg, const qat_key *k) {
    return (const char *)cfg + k->off;
}

/* Copy a string into a fixed buffer, zero-filling the tail: two configs with the
 * same values are then byte-identical (memcmp), which resume checks rely on. */
static inline void qat_config_copy_str(char *dst, size_t size, const char *src) {
    size_t n = strnlen(src, size - 1);
    memset(dst, 0, size);
    memcpy(dst, src, n);
}

/* The number of allowed values of a row (the names of a K_ENUM). */
static inline int qat_config_n_allowed(const qat_key *k) {
    int n = 0;
    while (k->allowed[n]) n++;
    return n;
}

/* Shortest %g text that reads back to exactly `v` (whole numbers in full). */
void qat_config_fmt_double(char *buf, size_t n, double v);

/* Check a numeric value against its row; on failure return 1 and write why into
 * `why` ("0 is out of range, expected a number > 0") using `text` for the value. */
int qat_config_check_number(const qat_key *k, double v, const char *text, char *why, size_t n);
/* Check a string value against its row (length, allowed values, flags); 1 = bad. */
int qat_config_check_string(const qat_key *k, const char *v, char *why, size_t n);
/* The index of `v` in the row's allowed values (a K_ENUM's value), or -1 with
 * `why` filled: "'cosin' is not allowed, expected one of ... (did you mean ...)". */
int qat_config_allowed_index(const qat_key *k, const char *v, char *why, size_t n);

/* ------------------------------------------------ the loader (config_load.c) */

/* Where each key got its value, so cross-key errors can point at the line. */
typedef struct {
    int line, col;   /* 1-based position in the file; 0 = not from the file */
    int set;         /* index+1 of the --set that gave it; 0 = none */
} qat_key_where;

/* The state of one load: the config being filled and where each key came from,
 * which validation (config_validate.c) needs to point at the key a message is about. */
typedef struct {
    qat_config *cfg;              /* the config being filled */
    const char *origin;           /* file name / origin for messages */
    const char *set_text;         /* non-NULL while applying a --set: messages name it */
    int set_index;                /* 1-based index of that --set */
    const char *const *sets;      /* all overrides (for validation messages) */
    qat_key_where where[QAT_CONFIG_KEYS_MAX]; /* last assignment of each key */
    int seen[QAT_CONFIG_KEYS_MAX];            /* generation in which each key was last assigned */
    int generation;               /* one per document: duplicates inside one are errors */
    int source_explicit;          /* data.source was written (not implied by shards/text) */
    char source[16];              /* that explicit value */
} qat_loader;

/* Validation (config_validate.c): the per-key and cross-key rules of
 * qat_config_validate, with messages placed by L (NULL: by the config's origin). */
int qat_config_validate_at(const qat_config *cfg, const qat_loader *L);
/* "FILE:LINE:COL" or "--set key=value" of the last assignment of key `name`
 * during the load L, else the config's origin; into buf (n bytes), returned. */
const char *qat_config_where_given(const qat_config *cfg, const qat_loader *L, const char *name, char *buf, size_t n);

/* A growable text buffer for emitted YAML and a file read whole (config_emit.c). */
typedef struct {
    char *s;    /* NUL-terminated text */
    size_t n;   /* length */
    size_t cap; /* allocated bytes */
} qat_config_buf;

void qat_config_bprintf(qat_config_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like qat_yaml_unique_keys, but returns 1 and the two key nodes (and the dotted
 * path below `n` in `path`) instead of a message, for callers that word their own
 * (a --set value). `path` must start as "" (yaml_dupkeys.c). */
struct yaml_document_s;
struct yaml_node_s;
int qat_yaml_find_repeat(struct yaml_document_s *doc, struct yaml_node_s *n, char *path, size_t cap,
                         struct yaml_node_s **dup, struct yaml_node_s **first);

#endif
