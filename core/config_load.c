/*
 * core/config_load.c — filling a qat_config (docs/config.md): defaults, a YAML
 * file (or text, or a node of a caller's document), `--set` overrides, then
 * validation. Every step walks the key table of config_keys.c.
 *
 * Files are read with libyaml's document API (a node tree with a mark per node),
 * which gives every error a FILE:LINE:COLUMN. Mappings may be block or flow style
 * and keys may also be written dotted (`train.lr: 1e-3` at the top level), which
 * is the same syntax --set and sweep grids use. A sweep file's inline `base:`
 * is applied as a node of the sweep's own document (qat_config_load_node), so
 * its messages carry the sweep file's lines and columns with no text copied.
 *
 * Per-key checks happen while parsing (the key exists, else the nearest valid
 * key is named; the value has the right type, is finite and in range; strings
 * are one of the allowed values and fit their buffer; an enum's name becomes
 * its number here, once; no key is given twice in a file); the cross-key rules
 * run afterwards, in config_validate.c.
 *
 * data.shards or data.text imply data.source when it is not written; when it
 * is, the written value stands and a contradiction is an error. Configs made
 * here are zero-filled past the end of every string, so equal configs compare
 * equal with memcmp once qat_config_forget_origin has cleared where they came from.
 */
#include "config_table.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "error.h"
#include "num.h"

/* ------------------------------------------------------- parsing one value */

/* YAML null in plain style: `key:`, `key: ~`, `key: null`. */
static int is_null_scalar(const char *s, int plain) {
    return plain && (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"));
}

/* Written as a whole number in digits (an optional sign, then only digits). */
static int integer_text(const char *s) {
    s += (*s == '+' || *s == '-');
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

static const char *node_kind(const yaml_node_t *n) {
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a scalar";
}

/* Parse scalar text `s` for key `k` into cfg. Returns 0, or 1 with `why` filled. */
static int assign_scalar(qat_config *cfg, const qat_key *k, const char *s, int plain, char *why, size_t n) {
    void *f = qat_config_field(cfg, k);
    switch (k->type) {
    case K_INT: {
        double v;
        /* Integers may be written 65536 or 6.5e4, as long as the value is whole. */
        if (!qat_parse_decimal(s, &v) || v != floor(v) || !qat_text_is_exactly(s, v)) { /* 2.0000000000000001 is no 2 */
            snprintf(why, n, "expected an integer, got '%s'", s);
            return 1;
        }
        if (qat_config_check_number(k, v, s, why, n)) return 1;
        *(int *)f = (int)v;
        return 0;
    }
    case K_U64: {
        /* the seeds: one rule with the commands' --seed options (core/num.h) */
        uint64_t v;
        if (!qat_parse_u64(s, &v)) {
            snprintf(why, n, "expected %s, got '%s'", QAT_U64_RULE, s);
            return 1;
        }
        *(uint64_t *)f = v;
        return 0;
    }
    case K_F64: {
        double v;
        if (!qat_parse_decimal(s, &v)) {
            /* a number's spelling whose value no double holds: say that, not "not a number" */
            char *end;
            errno = 0;
            double r = strtod(s, &end);
            if (end != s && !*end && errno == ERANGE && strspn(s, "0123456789+-.eE") == strlen(s))
                snprintf(why, n, "'%s' is %s a double's range (magnitudes from 2.2e-308 to 1.8e308, or 0), "
                         "expected a number within it", s, r == 0 ? "below" : "beyond");
            else
                snprintf(why, n, "expected a number, got '%s'", s);
            return 1;
        }
        /* Past 2^53 a text may name a number the double rounds away: a whole number
         * written in digits must be that number, and a bounded key (the token counts,
         * at most 2^53) must not take a text above its bound rounded down onto it. */
        if (fabs(v) >= 0x1p53 && (integer_text(s) || k->max < INFINITY) && !qat_text_is_exactly(s, v)) {
            if (k->max < INFINITY && v >= k->max) /* the text is above the bound it was rounded onto */
                return qat_config_check_number(k, nextafter(k->max, INFINITY), s, why, n);
            snprintf(why, n, "%s is not exactly a double (whole numbers are exact only up to 2^53 = "
                     "9007199254740992; it would read as %.0f), expected a value a double holds", s, v);
            return 1;
        }
        if (qat_config_check_number(k, v, s, why, n)) return 1;
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
        if (qat_config_check_string(k, v, why, n)) return 1;
        qat_config_copy_str(f, k->size, v);
        return 0;
    }
    case K_ENUM: {
        int i = qat_config_allowed_index(k, is_null_scalar(s, plain) ? "" : s, why, n);
        if (i < 0) return 1;
        *(int *)f = i;
        return 0;
    }
    case K_LIST:
        break;
    }
    QAT_ASSERT(0);
    return 1;
}

/* ------------------------------------------------------------ the loader */


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
    const qat_key *k = &qat_config_keys[ki];
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
        char(*items)[QAT_PATH_MAX] = qat_config_field(L->cfg, k);
        int *count = &L->cfg->data.n_text;
        int n = 0;
        if (v->type == YAML_SCALAR_NODE) {
            /* A single file may be written without brackets. */
            const char *s = (const char *)v->data.scalar.value;
            if (strlen(s) != v->data.scalar.length)
                return fail_at(L, v->start_mark, "%s: contains a NUL character (\\0), which no path may hold", k->key);
            if (!is_null_scalar(s, v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)) {
                /* entries are counted from 1, as the user counts them, in every message
                 * about them (here, the validator, data/'s same-file check) */
                if (!s[0]) return fail_at(L, v->start_mark, "%s: entry 1 is empty, expected a file name", k->key);
                if (strlen(s) >= k->size) return fail_at(L, v->start_mark, "%s: path is too long", k->key);
                qat_config_copy_str(items[n++], k->size, s);
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
                if (!s[0]) return fail_at(L, e->start_mark, "%s: entry %d is empty, expected a file name", k->key, n + 1);
                if (strlen(s) >= k->size) return fail_at(L, e->start_mark, "%s: path is too long", k->key);
                qat_config_copy_str(items[n++], k->size, s);
            }
        } else {
            return fail_at(L, v->start_mark, "%s: expected a list of file names, got a mapping", k->key);
        }
        for (int i = n; i < *count; i++) memset(items[i], 0, k->size);
        *count = n;
        if (n) qat_config_copy_str(L->cfg->data.source, sizeof L->cfg->data.source, "text");
        return QAT_OK;
    }

    if (v->type != YAML_SCALAR_NODE) {
        const char *want = k->type == K_STR || k->type == K_ENUM ? "a string"
                         : k->type == K_BOOL ? "true or false"
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
        qat_config_copy_str(L->cfg->data.source, sizeof L->cfg->data.source, "shards");
    if (!strcmp(k->key, "data.source")) {
        L->source_explicit = 1;
        qat_config_copy_str(L->source, sizeof L->source, L->cfg->data.source);
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
    int ki = qat_config_key_find(full);
    if (ki >= 0) return apply_value(L, doc, ki, v, keymark);
    if (qat_config_is_group(full)) {
        if (v->type == YAML_MAPPING_NODE) return apply_mapping(L, doc, full, v);
        if (v->type == YAML_SCALAR_NODE &&
            is_null_scalar((const char *)v->data.scalar.value, v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE))
            return QAT_OK; /* `model:` with nothing under it */
        return fail_at(L, v->start_mark, "%s: expected a mapping of %s.* keys, got %s", full, full, node_kind(v));
    }
    return fail_at(L, keymark, "unknown key '%s' (did you mean '%s'?)", full, qat_config_nearest_key(full));
}

/* Parse YAML text (one document: qat_yaml_load_text refuses a second) and hand
 * each node to `apply`. For a --set, the root is the value and key_for_set names it. */
static int apply_text(qat_loader *L, const char *text, size_t len, const char *key_for_set) {
    yaml_document_t doc;
    yaml_mark_t bad;
    char why[512];
    if (qat_yaml_load_text(text, len, &doc, &bad, why, sizeof why)) return fail_at(L, bad, "%s", why);
    int rc = QAT_OK;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    L->generation++;
    if (root && !L->set_text) {
        rc = qat_yaml_unique_keys(&doc, root, L->origin);
    } else if (root) {
        char path[512] = "";
        yaml_node_t *dup, *first;
        if (qat_yaml_find_repeat(&doc, root, path, sizeof path, &dup, &first))
            rc = fail_at(L, dup->start_mark, "duplicate key '%s.%s' in the value (first given at column %zu)",
                         key_for_set, path, first->start_mark.column + 1);
    }
    if (rc) {
        yaml_document_delete(&doc);
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
    }
    yaml_document_delete(&doc);
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
    for (int i = 0; i < qat_config_n_keys; i++) {
        const qat_key *k = &qat_config_keys[i];
        char why[256];
        if (k->type == K_LIST) continue; /* empty: zeroed above */
        int rc = assign_scalar(cfg, k, k->def, 1, why, sizeof why);
        QAT_ASSERT(rc == 0); /* a default outside its own range is a bug in the table */
    }
}

/* ---------------------------------------------------------------- loading */

/* data.source as written wins over the source implied by data.shards/data.text,
 * whatever the order of the keys; a contradiction is then caught by validation. */
static void settle_source(qat_loader *L) {
    if (L->source_explicit) qat_config_copy_str(L->cfg->data.source, sizeof L->cfg->data.source, L->source);
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
static void record_positions(qat_config *cfg, const qat_loader *L) {
    for (int ki = 0; ki < qat_config_key_count(); ki++) {
        cfg->key_at[ki].line = L->where[ki].line;
        cfg->key_at[ki].col = L->where[ki].col;
        cfg->key_at[ki].set = L->where[ki].set; /* which --set, 1-based */
    }
}


void qat_config_forget_origin(qat_config *cfg) {
    memset(cfg->source_path, 0, sizeof cfg->source_path);
    memset(cfg->data.shards_at, 0, sizeof cfg->data.shards_at);
    memset(cfg->data.val_shards_at, 0, sizeof cfg->data.val_shards_at);
    memset(cfg->data.text_at, 0, sizeof cfg->data.text_at);
    memset(cfg->data.option, 0, sizeof cfg->data.option);
    memset(cfg->key_at, 0, sizeof cfg->key_at);
    cfg->stored = cfg->data.stored = 0;
}

void qat_config_mark_stored(qat_config *cfg) { cfg->stored = cfg->data.stored = 1; }

static void record_data_positions(qat_config *cfg, const qat_loader *L) {
    char buf[sizeof cfg->data.shards_at];
    int ki = qat_config_key_find("data.shards");
    if (cfg->data.shards[0] && (L->where[ki].line || L->where[ki].set))
        qat_config_copy_str(cfg->data.shards_at, sizeof cfg->data.shards_at,
                            qat_config_where_given(cfg, L, "data.shards", buf, sizeof buf));
    ki = qat_config_key_find("data.val_shards");
    if (cfg->data.val_shards[0] && (L->where[ki].line || L->where[ki].set))
        qat_config_copy_str(cfg->data.val_shards_at, sizeof cfg->data.val_shards_at,
                            qat_config_where_given(cfg, L, "data.val_shards", buf, sizeof buf));
    ki = qat_config_key_find("data.text");
    if (cfg->data.n_text && (L->where[ki].line || L->where[ki].set))
        qat_config_copy_str(cfg->data.text_at, sizeof cfg->data.text_at,
                            qat_config_where_given(cfg, L, "data.text", buf, sizeof buf));
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
        qat_config_copy_str(cfg->source_path, sizeof cfg->source_path, origin ? origin : "");
        record_data_positions(cfg, L);
        record_positions(cfg, L);
        if (validate) rc = qat_config_validate_at(cfg, L);
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

int qat_config_read_text(const char *path, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return qat_fail(QAT_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    /* Raw bytes, not through printf: a "%.*s" copy stops at a NUL and would
     * silently drop the rest of the file. Read to its end in one pass, never
     * seeking, so that a pipe or a FIFO (`qat sweep <(...)`) reads as a file does. */
    qat_config_buf b = {0};
    size_t got;
    for (;;) {
        if (b.cap - b.n < 8192 + 1) {
            b.cap = b.cap ? 2 * b.cap : 16384;
            b.s = qat_xrealloc(b.s, b.cap);
        }
        if ((got = fread(b.s + b.n, 1, b.cap - b.n - 1, f)) == 0) break;
        b.n += got;
    }
    b.s[b.n] = 0;
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b.s);
        return qat_fail(QAT_EINPUT, "%s: cannot read: %s", path, strerror(errno));
    }
    /* YAML text holds no control character but tab, newline and carriage
     * return; name the first. */
    int line = 1, col = 1;
    for (size_t i = 0; i < b.n; i++) {
        unsigned char c = (unsigned char)b.s[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
            free(b.s);
            return qat_fail(QAT_EINPUT, "%s:%d:%d: contains a NUL byte/control character, expected YAML text", path,
                            line, col);
        }
        if (c == '\n') line++, col = 1;
        else if ((c & 0xc0) != 0x80) col++; /* columns count characters, not UTF-8 continuation bytes */
    }
    *text = b.s;
    *len = b.n;
    return QAT_OK;
}

int qat_config_load_ex(const char *path, const char *const *sets, int n_set, int validate, qat_config *cfg) {
    if (!path) return load_from(NULL, 0, NULL, NULL, NULL, sets, n_set, validate, cfg);
    char *text;
    size_t len;
    QAT_TRY(qat_config_read_text(path, &text, &len));
    int rc = load_from(text, len, NULL, NULL, path, sets, n_set, validate, cfg);
    free(text);
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
    loader_init(L, tmp, qat_config_source(cfg));
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

int qat_config_set_keys(const char *assignment, unsigned char *given) {
    /* Applied to a scratch config, so that what it assigns is what the loader itself
     * reads from the text: a dotted key, or every key of a group's mapping
     * (`compress.gradients={format: int4}`), however it is spelled. */
    qat_config *tmp = qat_xmalloc(sizeof *tmp);
    qat_loader *L = qat_xmalloc(sizeof *L);
    qat_config_defaults(tmp);
    loader_init(L, tmp, "config");
    const char *sets[1] = {assignment};
    L->sets = sets;
    (void)apply_set(L, assignment, 1);
    qat_clear_error(); /* the override itself reports it, with the stored config as its base */
    int n = 0;
    for (int i = 0; i < qat_config_n_keys; i++) n += given[i] = L->seen[i] != 0;
    free(L);
    free(tmp);
    return n;
}

int qat_config_override(qat_config *cfg, const char *const *sets, int n_set) {
    qat_config *tmp = qat_xmalloc(sizeof *tmp);
    qat_loader *L = qat_xmalloc(sizeof *L);
    memcpy(tmp, cfg, sizeof *tmp);
    memset(tmp->key_at, 0, sizeof tmp->key_at); /* the base was valid: only the overrides can be named */
    loader_init(L, tmp, qat_config_source(cfg));
    L->sets = sets;
    int rc = QAT_OK;
    for (int i = 0; !rc && i < n_set; i++) rc = apply_set(L, sets[i], i + 1);
    if (!rc) {
        settle_source(L);
        record_data_positions(tmp, L);
        record_positions(tmp, L);
        rc = qat_config_validate_at(tmp, L);
    }
    if (!rc) memcpy(cfg, tmp, sizeof *tmp);
    free(L);
    free(tmp);
    return rc;
}

