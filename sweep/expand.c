/*
 * sweep/expand.c — reading a sweep file and expanding it into runs (docs/config.md).
 * Naming the runs is names.c; each run's overrides, config and checks, runs.c;
 * dividing them (shards, --jobs auto), split.c; the Slurm script, slurm.c;
 * running them, pool.c.
 *
 *     base: {model: {preset: s3}, train: {tokens_per_param: 20}}   # or base: configs/x.yaml
 *     grid:
 *       compress.weights.format: [int4, fp4]
 *       train.tokens_per_param: [10, 20]
 *     repeat: 2                                                     # seeds 0, 1 (or a list)
 *     out: runs/my-sweep                                            # default runs/<file stem>
 *
 * How it is checked, and why that way:
 *  - The file is read once with libyaml's document API, so every node keeps its
 *    mark. An inline base is applied as a node of this document by
 *    qat_config_load_node, so a mistake inside it reads SWEEP:LINE:COL with the
 *    sweep file's own lines; no text is copied or re-indented.
 *  - The base is parsed without cross-key validation: a grid may complete it
 *    (model.dim only in the grid). Each grid value is then tried on the base as
 *    the `--set key=value` the worker will receive, which runs the table's own
 *    key, type and range checks; the loader's "--set k=v:" prefix is replaced by
 *    the grid entry's position. Whole runs are validated one by one
 *    (qat_sweep_run_config, runs.c): an impossible combination is a failed
 *    run, not a broken sweep, unless every run is impossible.
 *  - Each grid value gets a label for run names, readable first (int4, s3,
 *    dim16: numbers carry their key's last component), distinct within its axis
 *    (a value suffix); names.c joins them into names unique over the sweep.
 */
#include "sweep.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "compress/format.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/num.h"
#include "data/dataset.h"
#include "data/shard.h"
#include "sweep/names.h"
#include "sweep/runs.h"

static const char *const top_keys[] = {"base", "grid", "out", "repeat", NULL};

/* ------------------------------------------------------------------ helpers */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    QAT_ASSERT(n >= 0);
    char *s = qat_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Error at a mark of the sweep file. */
static int fail_mark(const qat_sweep *sw, yaml_mark_t m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_mark(const qat_sweep *sw, yaml_mark_t m, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return qat_fail(QAT_EINPUT, "%s:%zu:%zu: %s", sw->path, m.line + 1, m.column + 1, msg);
}

static const char *kind(const yaml_node_t *n) {
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a scalar";
}

static int is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* Looks like a number or a boolean: such values get their key's name in a run name. */
static int numeric_like(const char *s) {
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off", NULL};
    for (int i = 0; words[i]; i++)
        if (!strcasecmp(s, words[i])) return 1;
    if (!*s) return 0;
    int digit = 0;
    for (const char *p = s; *p; p++) {
        if (isdigit((unsigned char)*p)) digit = 1;
        else if (!strchr("+-.eE", *p)) return 0;
    }
    return digit;
}

/* What a grid value means once the config has read it, for finding one run given
 * twice in other spellings: a format's canonical name (nvfp4@sr@46 and nvfp4@46@sr
 * are one format, and the run log records it canonically), else the key's value as
 * the config prints it, so 1e5 and 100000, true and yes, "x" and x agree (the text
 * the resume check compares, qat_config_key_text). Two values with one meaning
 * would train the same run twice under two names, and a fit would count it twice.
 * A format that does not parse is an error (*rc), reported at the value. */
static char *value_meaning(const qat_config *cfg, const char *key, const char *raw, int *rc) {
    size_t kl = strlen(key);
    if (kl > 7 && !strcmp(key + kl - 7, ".format") && !strncmp(key, "compress.", 9)) {
        qat_fmt f;
        if ((*rc = qat_fmt_parse(raw, &f))) return NULL;
        return qat_xstrdup(f.name);
    }
    int i = qat_config_key_find(key);
    return i >= 0 ? qat_config_key_text(cfg, i) : qat_xstrdup(raw);
}

/* A YAML scalar as override text: plain stays plain, anything quoted is
 * re-quoted, so "2:4", "yes" and "" reach the worker as the strings they were. */
static void append_scalar(char **buf, const yaml_node_t *n) {
    const char *s = scalar(n);
    char *old = *buf;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        *buf = xasprintf("%s%s", old, s);
    } else {
        size_t len = strlen(s), k = 0;
        char *q = qat_xmalloc(4 * len + 3);
        q[k++] = '"';
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
            if (*p == '"' || *p == '\\') { q[k++] = '\\'; q[k++] = (char)*p; }
            else if (*p < 0x20) k += (size_t)sprintf(q + k, "\\x%02x", *p);
            else q[k++] = (char)*p;
        }
        q[k++] = '"';
        q[k] = 0;
        *buf = xasprintf("%s%s", old, q);
        free(q);
    }
    free(old);
}

/* ------------------------------------------------------------- the grid */

/* Whether two values of a key that names files (data.text, or the matches of a
 * data.shards or data.val_shards glob: a and b, na and nb paths) train on the
 * same data: as many files, in order each the same file (device and inode,
 * however spelled: ./t.txt, t.txt, a link; data/dataset.h's
 * qat_data_same_file). A path that cannot be stat'ed matches nothing here:
 * the plan says it is missing (qat_sweep_check_text). */
static int same_files(char *const *a, int na, char *const *b, int nb) {
    if (na != nb || !na) return 0;
    for (int k = 0; k < na; k++) {
        const char *pair[2] = {a[k], b[k]};
        int x, y;
        if (strcmp(a[k], b[k]) && !qat_data_same_file(pair, 2, &x, &y)) return 0;
    }
    return 1;
}

/* The files a value of such a key names, once set on cfg (NULL, *n = 0 for
 * another key, or a glob that matches nothing: its reader says so). */
static char **value_files(const qat_config *cfg, const char *key, int *n) {
    char **p = NULL;
    *n = 0;
    if (!strcmp(key, "data.text")) {
        p = qat_xcalloc((size_t)(cfg->data.n_text > 0 ? cfg->data.n_text : 1), sizeof *p);
        for (int k = 0; k < cfg->data.n_text; k++) p[k] = qat_xstrdup(cfg->data.text[k]);
        *n = cfg->data.n_text;
    } else if (!strcmp(key, "data.shards") || !strcmp(key, "data.val_shards")) {
        const char *glob = key[5] == 's' ? cfg->data.shards : cfg->data.val_shards;
        if (!glob[0] || qat_shard_glob(glob, &p, n)) qat_clear_error(), p = NULL, *n = 0;
    }
    return p;
}
/* One grid entry `key: [values]`. */
static int add_axis(qat_sweep *sw, yaml_document_t *doc, const char *key, yaml_node_t *k, yaml_node_t *v) {
    for (int a = 0; a < sw->n_axes; a++)
        if (!strcmp(sw->axes[a].key, key))
            return fail_mark(sw, k->start_mark, "grid key '%s' given twice (first at line %d)", key, sw->axes[a].line);
    if (strlen(key) >= sizeof sw->axes[0].key) return fail_mark(sw, k->start_mark, "grid key '%.60s...' is too long", key);
    /* Linked keys: "a.b,c.d: [v1, v2]" gives both keys the same value in a run
     * (weights and activations in one format, W=A). The second key's override
     * travels in the axis' second slot, like an implied data.source. */
    char first[128], second[128] = "";
    snprintf(first, sizeof first, "%s", key);
    char *comma = strchr(first, ',');
    if (comma) {
        *comma = 0;
        snprintf(second, sizeof second, "%s", comma + 1);
        if (!*first || !*second || strchr(second, ','))
            return fail_mark(sw, k->start_mark, "grid key '%s': linked keys are two dotted keys joined by one comma, "
                             "e.g. compress.weights.format,compress.activations.format", key);
        const char *n2 = qat_config_nearest_key(second);
        if (strcmp(n2, second))
            return fail_mark(sw, k->start_mark, "unknown key '%s' in grid (did you mean '%s'?)", second, n2);
        if (!strcmp(first, second)) return fail_mark(sw, k->start_mark, "grid key '%s' links a key to itself", key);
    }
    const char *near = qat_config_nearest_key(first);
    if (strcmp(near, first))
        return fail_mark(sw, k->start_mark, "unknown key '%s' in grid (did you mean '%s'?)", first, near);
    if (!strcmp(key, "name"))
        return fail_mark(sw, k->start_mark, "name cannot be a grid key: each run's name is made from its grid values");
    if (v->type != YAML_SEQUENCE_NODE)
        return fail_mark(sw, v->start_mark, "grid.%s: expected a list of values, e.g. [a, b], got %s "
                         "(a fixed value belongs under base:)", key, kind(v));
    int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (!n) return fail_mark(sw, v->start_mark, "grid.%s: expected a non-empty list of values", key);

    sw->axes = qat_xrealloc(sw->axes, (size_t)(sw->n_axes + 1) * sizeof *sw->axes);
    qat_sweep_axis *ax = &sw->axes[sw->n_axes++];
    memset(ax, 0, sizeof *ax);
    snprintf(ax->key, sizeof ax->key, "%s", key);
    ax->line = (int)k->start_mark.line + 1;
    ax->col = (int)k->start_mark.column + 1;
    ax->set = qat_xcalloc((size_t)n, sizeof *ax->set);
    ax->label = qat_xcalloc((size_t)n, sizeof *ax->label);
    ax->vline = qat_xcalloc((size_t)n, sizeof *ax->vline);
    ax->vcol = qat_xcalloc((size_t)n, sizeof *ax->vcol);
    ax->implied = qat_xcalloc((size_t)n, sizeof *ax->implied);
    const char *implies = !strcmp(key, "data.shards") ? "shards" : !strcmp(key, "data.text") ? "text" : NULL;
    ax->n = n;

    qat_config *tmp = qat_xmalloc(sizeof *tmp);
    char **meaning = qat_xcalloc((size_t)n, sizeof *meaning); /* value_meaning of each value */
    /* values of a key naming files are also compared by the files (same_files) */
    char ***files = qat_xcalloc((size_t)n, sizeof *files); /* value_files of each value */
    int *n_files = qat_xcalloc((size_t)n, sizeof *n_files);
    int rc = QAT_OK;
    for (int j = 0; j < n && !rc; j++) {
        yaml_node_t *e = yaml_document_get_node(doc, v->data.sequence.items.start[j]);
        ax->vline[j] = (int)e->start_mark.line + 1;
        ax->vcol[j] = (int)e->start_mark.column + 1;
        char *text = qat_xstrdup(""), *raw = qat_xstrdup("");
        if (e->type == YAML_SCALAR_NODE) {
            append_scalar(&text, e);
            free(raw);
            raw = qat_xstrdup(scalar(e));
        } else if (e->type == YAML_SEQUENCE_NODE) {
            /* A list value (data.text: [[a.txt, b.txt], [c.txt]]) as a flow list. */
            char *t = text;
            text = xasprintf("%s[", t);
            free(t);
            for (yaml_node_item_t *it = e->data.sequence.items.start; it < e->data.sequence.items.top && !rc; it++) {
                yaml_node_t *x = yaml_document_get_node(doc, *it);
                if (x->type != YAML_SCALAR_NODE) {
                    rc = fail_mark(sw, x->start_mark, "grid.%s: expected scalars inside a list value, got %s", key, kind(x));
                    break;
                }
                if (it > e->data.sequence.items.start) { t = text; text = xasprintf("%s, ", t); free(t); }
                append_scalar(&text, x);
                t = raw;
                raw = xasprintf("%s%s%s", t, it > e->data.sequence.items.start ? "+" : "", scalar(x));
                free(t);
            }
            t = text;
            text = xasprintf("%s]", t);
            free(t);
        } else {
            rc = fail_mark(sw, e->start_mark, "grid.%s: expected a value or a list, got a mapping", key);
        }
        ax->set[j] = xasprintf("%s=%s", first, text);
        if (*second) ax->implied[j] = xasprintf("%s=%s", second, text);
        else if (implies && *raw && strcmp(text, "[]")) ax->implied[j] = xasprintf("data.source=%s", implies);
        free(text);
        if (!rc) {
            for (int i = 0; i < j; i++)
                if (!strcmp(ax->set[i], ax->set[j])) {
                    rc = fail_mark(sw, e->start_mark, "grid.%s: value %s given twice (first at line %d)", key,
                                   ax->set[j] + strlen(first) + 1, ax->vline[i]);
                    break;
                }
        }
        if (!rc) {
            /* The worker will get exactly this override: try it on the base now. */
            memcpy(tmp, &sw->base, sizeof *tmp);
            if (qat_config_set(tmp, ax->set[j]))
                rc = qat_sweep_move_set_error(sw, ax->set[j], ax->vline[j], ax->vcol[j]);
            else if (*second && qat_config_set(tmp, ax->implied[j]))
                rc = qat_sweep_move_set_error(sw, ax->implied[j], ax->vline[j], ax->vcol[j]);
        }
        /* a list value too: data.text's one path may be written with or without
         * brackets (t.txt and [t.txt]), which the config reads as one thing */
        if (!rc) {
            meaning[j] = value_meaning(tmp, first, raw, &rc);
            if (rc) {
                char why[2048];
                snprintf(why, sizeof why, "%s", qat_errmsg());
                rc = fail_mark(sw, e->start_mark, "grid.%s: %s", key, why);
            }
            for (int i = 0; i < j && !rc; i++)
                if (meaning[i] && !strcmp(meaning[i], meaning[j])) {
                    rc = fail_mark(sw, e->start_mark, "grid.%s: value %s is %s (line %d:%d) written another way "
                                   "(both mean %s): the two would train the same run twice; expected distinct values",
                                   key, ax->set[j] + strlen(first) + 1, ax->set[i] + strlen(first) + 1, ax->vline[i],
                                   ax->vcol[i], meaning[j]);
                    break;
                }
        }
        if (!rc) {
            files[j] = value_files(tmp, first, &n_files[j]);
            for (int i = 0; i < j && !rc; i++)
                if (same_files(files[i], n_files[i], files[j], n_files[j]))
                    rc = fail_mark(sw, e->start_mark, "grid.%s: value %s names the same file%s as %s (line %d:%d): the "
                                   "two would train the same run twice; expected distinct values", key,
                                   ax->set[j] + strlen(first) + 1, n_files[j] > 1 ? "s" : "",
                                   ax->set[i] + strlen(first) + 1, ax->vline[i], ax->vcol[i]);
        }
        if (!rc) {
            char lab[QAT_NAME_MAX], both[QAT_NAME_MAX + 64];
            if (!*raw) snprintf(both, sizeof both, "%s_empty", qat_config_key_leaf(key));
            else if (numeric_like(raw)) snprintf(both, sizeof both, "%s%s", qat_config_key_leaf(key), raw);
            else snprintf(both, sizeof both, "%s", raw);
            qat_sweep_sanitize(both, lab, 48);
            if (!*lab) snprintf(lab, sizeof lab, "%s", qat_config_key_leaf(key)); /* nothing readable: numbered below */
            ax->label[j] = qat_xstrdup(lab);
        }
        free(raw);
    }
    free(tmp);
    for (int j = 0; j < n; j++) {
        free(meaning[j]);
        qat_shard_free_paths(files[j], n_files[j]);
    }
    free(meaning);
    free(files);
    free(n_files);
    if (rc) return rc;
    /* Distinct values that read the same once sanitized ("2:4", "2/4"): number them. */
    for (int j = 1; j < n; j++)
        for (int i = 0; i < j; i++)
            if (!strcmp(ax->label[i], ax->label[j])) {
                char *old = ax->label[j];
                ax->label[j] = xasprintf("%s_v%d", old, j + 1);
                free(old);
                i = -1; /* recheck against all earlier labels */
            }
    return QAT_OK;
}

/* The grid may nest (`compress: {weights: {format: [...]}}`) or use dotted keys. */
static int add_grid(qat_sweep *sw, yaml_document_t *doc, const char *prefix, yaml_node_t *m) {
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        if (k->type != YAML_SCALAR_NODE) return fail_mark(sw, k->start_mark, "expected a key name in grid, got %s", kind(k));
        char *key = xasprintf("%s%s%s", prefix, *prefix ? "." : "", scalar(k));
        int rc;
        if (v->type != YAML_MAPPING_NODE)
            rc = add_axis(sw, doc, key, k, v);
        else if (qat_config_is_group(key)) /* so the walk is as deep as the key table, aliases or not */
            rc = add_grid(sw, doc, key, v);
        else if (qat_config_key_find(key) >= 0)
            rc = fail_mark(sw, v->start_mark, "grid.%s: expected a list of values, e.g. [a, b], got a mapping", key);
        else
            rc = fail_mark(sw, k->start_mark, "unknown key '%s' in grid (did you mean '%s'?)", key,
                           qat_config_nearest_key(key));
        free(key);
        QAT_TRY(rc);
    }
    return QAT_OK;
}

/* ------------------------------------------------------------ top level */

static int load_base(qat_sweep *sw, yaml_document_t *doc, yaml_node_t *v) {
    if (!v || is_null(v)) {
        qat_config_defaults(&sw->base);
        snprintf(sw->base.source_path, sizeof sw->base.source_path, "%s", sw->path);
        return QAT_OK;
    }
    if (v->type == YAML_MAPPING_NODE) {
        sw->base_node = (int)(v - doc->nodes.start) + 1;
        return qat_config_load_node((struct yaml_document_s *)doc, (struct yaml_node_s *)v, sw->path, NULL, 0, 0,
                                    &sw->base);
    }
    if (v->type != YAML_SCALAR_NODE)
        return fail_mark(sw, v->start_mark, "base: expected a run config (a mapping) or the path of one, got %s", kind(v));
    /* A path is relative to the sweep file, so a sweep and its base travel together. */
    const char *p = scalar(v), *slash = strrchr(sw->path, '/');
    if (p[0] == '/' || !slash)
        snprintf(sw->base_path, sizeof sw->base_path, "%s", p);
    else
        snprintf(sw->base_path, sizeof sw->base_path, "%.*s/%s", (int)(slash - sw->path), sw->path, p);
    struct stat st;
    if (access(sw->base_path, R_OK))
        return fail_mark(sw, v->start_mark, "base: cannot read '%s': %s (a base path is relative to the sweep file)",
                         sw->base_path, strerror(errno));
    /* readable, but a directory (access says yes) is no config either: said here, where the base is named */
    if (!stat(sw->base_path, &st) && S_ISDIR(st.st_mode))
        return fail_mark(sw, v->start_mark, "base: '%s' is a directory; expected a run config file (a base path is "
                         "relative to the sweep file)", sw->base_path);
    return qat_config_load_ex(sw->base_path, NULL, 0, 0, &sw->base);
}

static int load_repeat(qat_sweep *sw, yaml_document_t *doc, yaml_node_t *v) {
    sw->repeat_line = (int)v->start_mark.line + 1;
    sw->repeat_col = (int)v->start_mark.column + 1;
    uint64_t x;
    if (v->type == YAML_SCALAR_NODE) {
        if (!qat_parse_u64(scalar(v), &x) || x < 1 || x > 100000)
            return fail_mark(sw, v->start_mark, "repeat: expected a number of seeds in [1, 100000] or a list of seeds, "
                             "got '%s'", scalar(v));
        sw->n_seeds = (int)x;
        sw->seeds = qat_xcalloc(x, sizeof *sw->seeds);
        for (uint64_t i = 0; i < x; i++) sw->seeds[i] = i;
    } else if (v->type == YAML_SEQUENCE_NODE) {
        int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (!n) return fail_mark(sw, v->start_mark, "repeat: expected a non-empty list of seeds");
        sw->seeds = qat_xcalloc((size_t)n, sizeof *sw->seeds);
        for (int i = 0; i < n; i++) {
            yaml_node_t *e = yaml_document_get_node(doc, v->data.sequence.items.start[i]);
            /* the one rule of seeds, so a seed written for `seed:` (1e6) is one here too */
            if (e->type != YAML_SCALAR_NODE || !qat_parse_u64(scalar(e), &x))
                return fail_mark(sw, e->start_mark, "repeat: expected a seed, %s, got %s", QAT_U64_RULE,
                                 e->type == YAML_SCALAR_NODE ? scalar(e) : kind(e));
            for (int j = 0; j < i; j++)
                if (sw->seeds[j] == x) return fail_mark(sw, e->start_mark, "repeat: seed %llu given twice", (unsigned long long)x);
            sw->seeds[i] = x;
            sw->n_seeds = i + 1;
        }
    } else {
        return fail_mark(sw, v->start_mark, "repeat: expected a number of seeds or a list of seeds, got %s", kind(v));
    }
    sw->seed_set = qat_xcalloc((size_t)sw->n_seeds, sizeof *sw->seed_set);
    for (int i = 0; i < sw->n_seeds; i++) sw->seed_set[i] = xasprintf("seed=%llu", (unsigned long long)sw->seeds[i]);
    return QAT_OK;
}

static int load_out(qat_sweep *sw, yaml_node_t *v) {
    if (!v || is_null(v)) {
        /* runs/<file stem> */
        const char *b = strrchr(sw->path, '/');
        b = b ? b + 1 : sw->path;
        const char *dot = strrchr(b, '.');
        int len = dot && dot != b ? (int)(dot - b) : (int)strlen(b);
        snprintf(sw->out, sizeof sw->out, "runs/%.*s", len, b);
        return QAT_OK;
    }
    if (v->type != YAML_SCALAR_NODE || !*scalar(v))
        return fail_mark(sw, v->start_mark, "out: expected a directory name, got %s", v->type == YAML_SCALAR_NODE ? "''" : kind(v));
    if (strlen(scalar(v)) >= sizeof sw->out - QAT_NAME_MAX - 32)
        return fail_mark(sw, v->start_mark, "out: path is too long");
    snprintf(sw->out, sizeof sw->out, "%s", scalar(v));
    return QAT_OK;
}

int qat_sweep_load(const char *path, qat_sweep **out) {
    *out = NULL;
    qat_sweep *sw = qat_xcalloc(1, sizeof *sw);
    if (strlen(path) >= sizeof sw->path) {
        free(sw);
        return qat_fail(QAT_EINPUT, "%.60s...: path is too long", path);
    }
    snprintf(sw->path, sizeof sw->path, "%s", path);
    /* read whole once: the limits' scan and the document are two parses of it,
     * and a pipe or FIFO cannot be read twice (fseek) */
    char *text;
    size_t len;
    int rc = qat_config_read_text(path, &text, &len);
    if (rc) {
        free(sw);
        return rc;
    }
    yaml_document_t *doc = qat_xcalloc(1, sizeof *doc);
    yaml_mark_t bad;
    char why[512];
    if (qat_yaml_load_text(text, len, doc, &bad, why, sizeof why)) {
        rc = fail_mark(sw, bad, "%s", why);
        free(doc);
        doc = NULL;
    }
    free(text); /* the document holds its own copies of the scalars */
    if (rc) {
        qat_sweep_free(sw);
        return rc;
    }
    sw->doc = doc;

    yaml_node_t *root = yaml_document_get_root_node(doc);
    yaml_node_t *val[4] = {NULL, NULL, NULL, NULL};
    /* A repeated key at any depth (base: twice, or train: twice inside base:) would
     * merge or shadow silently: refuse it at its line:column. */
    if (root) rc = qat_yaml_unique_keys(doc, root, sw->path);
    if (!rc && (!root || root->type != YAML_MAPPING_NODE)) {
        yaml_mark_t m = root ? root->start_mark : (yaml_mark_t){0, 0, 0};
        rc = fail_mark(sw, m, "expected a sweep: a mapping with base, grid, out and repeat");
    }
    for (yaml_node_pair_t *p = rc ? NULL : root->data.mapping.pairs.start; p && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k->type != YAML_SCALAR_NODE) {
            rc = fail_mark(sw, k->start_mark, "expected a key name, got %s", kind(k));
            break;
        }
        int i = 0;
        while (top_keys[i] && strcmp(top_keys[i], scalar(k))) i++;
        if (!top_keys[i]) {
            rc = fail_mark(sw, k->start_mark, "unknown key '%s' in a sweep file (did you mean '%s'?); expected base, "
                           "grid, out, repeat", scalar(k), qat_config_nearest_word(scalar(k), top_keys));
            break;
        }
        if (val[i]) {
            rc = fail_mark(sw, k->start_mark, "duplicate key '%s' (first given at line %zu)", top_keys[i],
                           val[i]->start_mark.line + 1);
            break;
        }
        val[i] = yaml_document_get_node(doc, p->value);
    }
    /* base first: grid values are checked against it. */
    if (!rc) rc = load_base(sw, doc, val[0]);
    if (!rc) rc = load_out(sw, val[2]);
    if (!rc && val[3] && !is_null(val[3])) rc = load_repeat(sw, doc, val[3]);
    if (!rc && val[1] && !is_null(val[1])) {
        if (val[1]->type != YAML_MAPPING_NODE)
            rc = fail_mark(sw, val[1]->start_mark, "grid: expected a mapping of dotted keys to lists of values, got %s",
                           kind(val[1]));
        else
            rc = add_grid(sw, doc, "", val[1]);
    }
    double runs = sw->n_seeds ? sw->n_seeds : 1;
    for (int a = 0; !rc && a < sw->n_axes; a++) {
        const qat_sweep_axis *ax = &sw->axes[a];
        yaml_mark_t m = {0, (size_t)ax->line - 1, (size_t)ax->col - 1};
        if (!strcmp(ax->key, "seed") && sw->n_seeds)
            rc = fail_mark(sw, m, "seed is a grid key and repeat: is given too; use one of them");
        else if (!strcmp(ax->key, "threads"))
            sw->threads_explicit = 1;
        /* train.tokens wins over tokens_per_param: such a grid would repeat one run. */
        else if (!strcmp(ax->key, "train.tokens_per_param") && sw->base.train.tokens > 0) {
            int has_tokens = 0;
            for (int b = 0; b < sw->n_axes; b++) has_tokens |= !strcmp(sw->axes[b].key, "train.tokens");
            if (!has_tokens)
                rc = fail_mark(sw, m, "grid.train.tokens_per_param has no effect: the base sets train.tokens, which wins; "
                               "remove train.tokens from the base");
        }
        runs *= ax->n;
    }
    if (!rc && runs > QAT_SWEEP_MAX_RUNS)
        rc = qat_fail(QAT_EINPUT, "%s: the grid has %.0f runs, more than %d", sw->path, runs, QAT_SWEEP_MAX_RUNS);
    if (rc) {
        qat_sweep_free(sw);
        return rc;
    }
    if (sw->base.threads != 0) sw->threads_explicit = 1;
    /* data.source in the grid says itself what the source is. */
    for (int a = 0; a < sw->n_axes; a++)
        if (!strcmp(sw->axes[a].key, "data.source"))
            for (int b = 0; b < sw->n_axes; b++)
                for (int j = 0; j < sw->axes[b].n; j++) {
                    if (!sw->axes[b].implied[j] || strncmp(sw->axes[b].implied[j], "data.source=", 12)) continue;
                    free(sw->axes[b].implied[j]);
                    sw->axes[b].implied[j] = NULL;
                }
    sw->n_runs = (int)runs;
    qat_sweep_make_names(sw);

    /* One impossible combination is that run's failure; none possible is the file's. */
    if (qat_sweep_check_runs(sw)) {
        qat_sweep_free(sw);
        return QAT_EINPUT;
    }
    *out = sw;
    return QAT_OK;
}

void qat_sweep_free(qat_sweep *sw) {
    if (!sw) return;
    for (int a = 0; a < sw->n_axes; a++) {
        qat_sweep_axis *ax = &sw->axes[a];
        for (int j = 0; j < ax->n; j++) {
            free(ax->set[j]);
            free(ax->label[j]);
            free(ax->implied[j]);
        }
        free(ax->implied);
        free(ax->set);
        free(ax->label);
        free(ax->vline);
        free(ax->vcol);
    }
    free(sw->axes);
    for (int i = 0; i < sw->n_seeds; i++) free(sw->seed_set ? sw->seed_set[i] : NULL);
    free(sw->seed_set);
    free(sw->seeds);
    for (int r = 0; r < sw->n_runs && sw->names; r++) {
        free(sw->names[r]);
        free(sw->name_set[r]);
    }
    free(sw->names);
    free(sw->name_set);
    if (sw->doc) {
        yaml_document_delete(sw->doc);
        free(sw->doc);
    }
    free(sw);
}
