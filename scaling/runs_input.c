/*
 * scaling/runs_input.c — runs from HDF5 run logs (docs/files.md) and the dispatch
 * over command-line inputs.
 *
 * A run log counts only when its root attribute `status` is "completed" and
 * /final/val_loss, /final/tokens and the `n_params` attribute are present;
 * anything else (a running, failed or diverged run, a run killed before its
 * final evaluation) is skipped with a warning that names the file and the
 * reason. So is a run started from a checkpoint (`init_from`, qat train
 * --init or train.init, which stores `train.init: ""` for --init, so --where
 * cannot tell it): its /final/tokens are the fine-tuning tokens only, and as
 * a point (N, D) it would be a run of far fewer tokens than its weights saw;
 * a summary line says how many were left out and why. Attributes may be stored as fixed- or variable-length strings and
 * as integer or float numbers: HDF5 converts on read, so both are accepted.
 *
 * The stored config of each run log (its `config` attribute, the resolved
 * YAML) is read back with core/config's own loader, so `--where KEY=VALUE`
 * compares values the way the config does (1e5 and 100000 agree) and the data
 * check compares the keys that define the corpus, not file names. The same
 * config gives the run's backward scheme (compress.gradients.*, keyed by
 * qat_fit_bwd_key); a run log without a config or without those keys was
 * trained with the fp32 backward, which is what qat did before they existed.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "core/config.h"
#include "core/error.h"
#include "runlog/h5util.h"
#include "runlog/runlog.h"
#include "scaling/inputs.h"
#if QAT_HAVE_COMPRESS
#include "compress/format.h"
#include "compress/gradq.h"
#endif

static void skip(FILE *warn, int *skipped, const char *path, const char *why) {
    if (warn) fprintf(warn, "qat: warning: %s: skipped: %s\n", path, why);
    if (skipped) (*skipped)++;
}

/* The backward scheme key of the run log's stored config ("fp32" without one),
 * checked by the same rule as a CSV's grad_format. */
static int read_bwd_key(const char *path, char out[QAT_FIT_FMT_LEN]) {
    char key[QAT_FIT_FMT_LEN] = "fp32";
    char *yaml = qat_runlog_read_config(path);
    if (yaml && strspn(yaml, " \t\r\n") < strlen(yaml)) {
        qat_config *c = qat_xmalloc(sizeof *c);
        if (!qat_config_load_string(yaml, path, c))
            qat_fit_bwd_key(key, c->gradients.format, c->gradients.rounding, c->gradients.hadamard);
        free(c);
    }
    free(yaml);
    qat_clear_error();
    return qat_fit_bwd_check(path, key, out);
}

/* What an HDF5 file is, told by the groups and attributes each of qat's files
 * has (docs/files.md; runlog/ tells an output's kind the same way, and qat plot
 * names a run log given for a FIT.h5 so): asked of a file that did not read as
 * a run log. Opened as runlog/'s reader opens one, stale writer flags ignored
 * (a run killed while creating its log leaves them). */
enum { H5K_UNOPENED, H5K_EMPTY, H5K_RUNLOG, H5K_RUNLOG_BORN, H5K_FIT, H5K_CKPT, H5K_GRADS, H5K_OTHER };

static int h5_kind(const char *path) {
    hid_t f;
    hid_t sw = qat_h5_fapl(0, 0);
    qat_h5_swmr_attempts(sw, qat_runlog_is_live(path)); /* not HDF5's 100 on a damaged file */
    H5E_BEGIN_TRY {
        f = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, sw);
        if (f < 0) f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) {
            hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
            hbool_t clear = 1;
            if (H5Pset(fapl, "clear_status_flags", &clear) >= 0) f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
            H5Pclose(fapl);
        }
    } H5E_END_TRY;
    H5Pclose(sw);
    if (f < 0) return H5K_UNOPENED;
    int k = H5K_OTHER;
    H5E_BEGIN_TRY {
#define HAS(name) (H5Lexists(f, name, H5P_DEFAULT) > 0)
        H5O_info_t oi;
        H5G_info_t gi;
        int attrs = H5Oget_info(f, &oi) >= 0 ? (int)oi.num_attrs : 1;
        int links = H5Gget_info(f, &gi) >= 0 ? (int)gi.nlinks : 1;
        if (HAS("train") && HAS("eval")) k = H5K_RUNLOG;
        else if (HAS("runs") && HAS("pairs")) k = H5K_FIT;
        else if (H5Aexists(f, "law") > 0 && H5Aexists(f, "n_runs") > 0) k = H5K_FIT;
        else if (HAS("params") && HAS("state")) k = H5K_CKPT;
        else if (HAS("grads") && HAS("batch")) k = H5K_GRADS;
        else if (!links && H5Aexists(f, "qat_version") > 0) k = H5K_RUNLOG_BORN; /* its attributes come first */
        else if (!links && !attrs) k = H5K_EMPTY;
#undef HAS
    } H5E_END_TRY;
    H5Fclose(f);
    return k;
}

/* A file that did not read as a run log (runlog/'s reader said why, `why`):
 * a run log not finished (its status says so, or a run killed as it created
 * its log) is skipped with a warning, as unfinished runs are; a completed run
 * log missing a part it must have is damaged (QAT_ERUNTIME, as a checksum
 * that fails: docs/cli.md); a file of another kind is named for what it is
 * (QAT_EINPUT). They were all one warning, "not a readable qat run log", and
 * a FIT.h5 or a checkpoint given by mistake left the fit to go on without a
 * word of the runs the user meant. */
static int not_read(const char *path, const qat_runlog_summary *sum, const char *why, int *skipped, FILE *warn) {
    size_t pl = strlen(path);
    if (!strncmp(why, path, pl) && !strncmp(why + pl, ": ", 2)) why += pl + 2; /* named once */
    char w[800];
    if (sum->status[0]) {
        if (!strcmp(sum->status, "completed"))
            return qat_fail(QAT_ERUNTIME, "%s: a completed run log that cannot be read: %s (the file is damaged)", path,
                            why);
        snprintf(w, sizeof w, "status is '%s', not 'completed' (and the log is incomplete: %s)", sum->status, why);
        skip(warn, skipped, path, w);
        return QAT_OK;
    }
    if (access(path, R_OK)) return qat_fail(QAT_ERUNTIME, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (!stat(path, &st) && st.st_size == 0) {
        skip(warn, skipped, path, "an empty file (a run killed as it created its log)");
        return QAT_OK;
    }
    htri_t h5;
    H5E_BEGIN_TRY { h5 = H5Fis_hdf5(path); } H5E_END_TRY;
    if (h5 <= 0) return qat_fail(QAT_EINPUT, "%s: not an HDF5 file, so not a qat run log (run.h5)", path);
    switch (h5_kind(path)) {
    case H5K_UNOPENED:
        return qat_fail(QAT_ERUNTIME, "%s: cannot be opened as an HDF5 file: %s (the file is damaged)", path, why);
    case H5K_FIT:
        return qat_fail(QAT_EINPUT, "%s is a fit file (qat fit --out), not a run log: give the runs (run.h5 files, "
                        "their directories, or CSV files)", path);
    case H5K_CKPT:
        return qat_fail(QAT_EINPUT, "%s is a checkpoint (ckpt.h5, written by qat train), not a run log: give its "
                        "run's run.h5 or the run directory", path);
    case H5K_GRADS:
        return qat_fail(QAT_EINPUT, "%s is a gradients file (qat grads --out), not a run log", path);
    case H5K_RUNLOG:
        return qat_fail(QAT_ERUNTIME, "%s: a run log that cannot be read: %s (the file is damaged)", path, why);
    case H5K_RUNLOG_BORN:
    case H5K_EMPTY:
        skip(warn, skipped, path, "a run log with no status yet (a run killed as it created its log)");
        return QAT_OK;
    default:
        return qat_fail(QAT_EINPUT, "%s is an HDF5 file but not a qat run log (no status attribute, no /train and "
                        "/eval groups): give run logs (run.h5 files or their directories) or CSV files", path);
    }
}

/* One run log, read through runlog/'s reader (the one definition of the
 * layout): completed runs with a final validation loss become fit points.
 * A run started from a checkpoint is skipped and also counted in *finetuned
 * (may be NULL) for the summary of qat_fit_read_inputs_sel. */
static int read_runlog(const char *path, qat_fit_runs *rs, int *skipped, int *finetuned, FILE *warn) {
    qat_runlog_summary *sum = qat_xmalloc(sizeof *sum);
    int e = qat_runlog_read_final(path, sum);
    if (!e) { /* the stored config too: its own checksum (runlog/h5util.h) */
        char *yaml = NULL;
        if (qat_runlog_config(path, &yaml) == QAT_ERUNTIME) e = QAT_ERUNTIME;
        else qat_clear_error();
        free(yaml);
    }
    if (e == QAT_ERUNTIME) { /* damaged (a checksum did not match): an error, not a run to skip */
        free(sum);
        return e;
    }
    if (e) {
        char why[600];
        snprintf(why, sizeof why, "%s", qat_errmsg());
        qat_clear_error();
        e = not_read(path, sum, why, skipped, warn);
        free(sum);
        return e;
    }
    qat_fit_run r;
    memset(&r, 0, sizeof r);
    r.n_terms = -1;
    snprintf(r.origin, sizeof r.origin, "%s", path);
    char why[160];
    if (strcmp(sum->status, "completed")) {
        snprintf(why, sizeof why, "status is '%s', not 'completed'", sum->status);
        skip(warn, skipped, path, why);
    } else if (!sum->has_final || !(sum->final.val_loss > 0) || !isfinite(sum->final.val_loss))
        skip(warn, skipped, path, "no positive /final/val_loss");
    else if (!(sum->final.tokens > 0))
        skip(warn, skipped, path, "no positive /final/tokens");
    else if (!(sum->n_params > 0))
        skip(warn, skipped, path, "no positive 'n_params' attribute");
    else if (sum->init_from[0]) {
        /* /final/tokens counts the fine-tuning tokens only: the weights it
         * started from saw others, so (N, D) does not say what the run was */
        snprintf(why, sizeof why, "started from a checkpoint (init_from %.100s)", sum->init_from);
        skip(warn, skipped, path, why);
        if (finetuned) (*finetuned)++;
    } else {
        r.loss = sum->final.val_loss;
        r.D = (double)sum->final.tokens;
        r.N = (double)sum->n_params;
        snprintf(r.wfmt, sizeof r.wfmt, "%s", sum->weight_format[0] ? sum->weight_format : "fp32");
        snprintf(r.afmt, sizeof r.afmt, "%s", sum->act_format[0] ? sum->act_format : "fp32");
        int e2 = read_bwd_key(path, r.gfmt);
        if (!e2) e2 = qat_fit_check_range(path, "N ('n_params')", 0, r.N);
        if (!e2) e2 = qat_fit_check_range(path, "D (/final/tokens)", 0, r.D);
        if (!e2) e2 = qat_fit_check_range(path, "loss (/final/val_loss)", 1, r.loss);
        if (e2) {
            free(sum);
            return e2;
        }
        qat_fit_runs_push(rs, &r);
    }
    free(sum);
    return QAT_OK;
}

int qat_fit_read_runlog(const char *path, qat_fit_runs *rs, int *skipped, FILE *warn) {
    return read_runlog(path, rs, skipped, NULL, warn);
}

struct qat_fit_select {
    const char *const *where; /* "KEY=VALUE", borrowed */
    int n_where;
    int *key;                 /* config key index of each --where */
    int *fkey;                /* FK_* of each --where: which format key, if any */
    char (*fval)[QAT_FMT_MAX]; /* a format key's value in canonical spelling */
    char **origin, **label;   /* run logs kept, and their data keys as "k=v" lines */
    int n, cap;
    qat_config *a, *b;        /* scratch (a config is large) */
};

/* The keys that say which tokens a run was trained and evaluated on, in the
 * order they are shown. */
static const char *const DATA_KEYS[] = {"data.source", "data.shards", "data.val_shards", "data.text",
                                        "data.val_fraction", "data.synth_seed", "data.synth_vocab",
                                        "data.synth_topics", "model.vocab", "model.seq_len", NULL};

/* Keys another source ignores are left out, so they cannot split a group. */
static int data_key_matters(const qat_config *c, const char *key) {
    int synth = !strcmp(c->data.source, "synthetic");
    if (!strncmp(key, "data.synth_", 11)) return synth;
    if (!strcmp(key, "data.val_fraction")) return !synth && !c->data.val_shards[0];
    if (!strcmp(key, "data.shards") || !strcmp(key, "data.val_shards")) return !strcmp(c->data.source, "shards");
    if (!strcmp(key, "data.text")) return !strcmp(c->data.source, "text");
    return 1;
}

/* The config keys whose value is a format: compared by canonical spelling,
 * since one format has several (modifiers in any order, nvfp4@sr@46 is the
 * nvfp4@46@sr the run log records and the fit prints). */
enum { FK_NONE, FK_WEIGHTS, FK_ACTS, FK_GRADS };

static int format_key(const char *key) {
    return !strcmp(key, "compress.weights.format")       ? FK_WEIGHTS
           : !strcmp(key, "compress.activations.format") ? FK_ACTS
           : !strcmp(key, "compress.gradients.format")   ? FK_GRADS
                                                         : FK_NONE;
}

static const char *format_value(const qat_config *c, int fk) {
    return fk == FK_WEIGHTS ? c->weights.format : fk == FK_ACTS ? c->activations.format : c->gradients.format;
}

/* The canonical spelling of format s (s itself when it does not parse, or
 * without compress/ to parse it). */
static void canonical_format(const char *s, char out[QAT_FMT_MAX]) {
    snprintf(out, QAT_FMT_MAX, "%s", s);
#if QAT_HAVE_COMPRESS
    qat_fmt f;
    if (!qat_fmt_parse(s, &f)) qat_fmt_print(&f, out, QAT_FMT_MAX);
    qat_clear_error();
#endif
}

/* A --where value of a format key: one the trainer takes for that key (a
 * format of docs/formats.md; for compress.gradients.format, one the backward
 * takes), or no run could ever match. */
static int check_format_value(const char *where, int fk, const char *v) {
#if QAT_HAVE_COMPRESS
    int rc;
    if (fk == FK_GRADS) {
        qat_compress_grad c = {.rounding = "rtn"};
        snprintf(c.format, sizeof c.format, "%s", v);
        qat_gradq g;
        rc = qat_gradq_init(&g, &c);
    } else {
        qat_fmt f;
        rc = qat_fmt_parse(v, &f);
    }
    if (rc) {
        char why[1024];
        snprintf(why, sizeof why, "%s", qat_errmsg());
        char *nl = strchr(why, '\n'); /* the grammar after the first line is long */
        if (nl) *nl = 0;
        return qat_fail(QAT_EINPUT, "--where %s: %s", where, why);
    }
#else
    (void)where, (void)fk, (void)v;
#endif
    return QAT_OK;
}

int qat_fit_select_new(const char *const *where, int n_where, qat_fit_select **out) {
    qat_fit_select *s = qat_xcalloc(1, sizeof *s);
    s->where = where;
    s->n_where = n_where;
    s->key = qat_xcalloc((size_t)n_where + 1, sizeof *s->key);
    s->fkey = qat_xcalloc((size_t)n_where + 1, sizeof *s->fkey);
    s->fval = qat_xcalloc((size_t)n_where + 1, sizeof *s->fval);
    s->a = qat_xmalloc(sizeof *s->a);
    s->b = qat_xmalloc(sizeof *s->b);
    *out = s;
    for (int i = 0; i < n_where; i++) {
        const char *eq = strchr(where[i], '=');
        char key[256];
        if (!eq || eq == where[i] || (size_t)(eq - where[i]) >= sizeof key)
            return qat_fail(QAT_EINPUT, "--where %s: expected KEY=VALUE with a config key, e.g. data.source=synthetic",
                            where[i]);
        snprintf(key, sizeof key, "%.*s", (int)(eq - where[i]), where[i]);
        s->key[i] = qat_config_key_find(key);
        if (s->key[i] < 0 && qat_config_is_group(key)) { /* "did you mean 'model'?" of 'model' said nothing */
            const char *first = NULL;
            size_t kl = strlen(key);
            for (int k = 0; k < qat_config_key_count() && !first; k++) {
                qat_config_key_info info;
                qat_config_key_get(k, &info);
                if (!strncmp(info.key, key, kl) && info.key[kl] == '.') first = info.key;
            }
            return qat_fail(QAT_EINPUT, "--where %s: '%s' is a group of config keys, not a key; --where compares one "
                            "key, e.g. --where %s=VALUE (docs/config.md)", where[i], key, first ? first : "KEY");
        }
        if (s->key[i] < 0)
            return qat_fail(QAT_EINPUT, "--where %s: unknown config key '%s' (did you mean '%s'?)", where[i], key,
                            qat_config_nearest_key(key));
        /* the value must be one the key accepts, or no run could ever match */
        qat_config_defaults(s->a);
        if (qat_config_set(s->a, where[i])) {
            /* the config names the override "--set K=V: "; here it is a --where */
            const char *m = qat_errmsg();
            size_t skip_n = strlen("--set ") + strlen(where[i]) + 2;
            char why[2048];
            snprintf(why, sizeof why, "%s", strlen(m) > skip_n && !strncmp(m, "--set ", 6) ? m + skip_n : m);
            return qat_fail(QAT_EINPUT, "--where %s: %s", where[i], why);
        }
        s->fkey[i] = format_key(key);
        if (s->fkey[i]) {
            QAT_TRY(check_format_value(where[i], s->fkey[i], format_value(s->a, s->fkey[i])));
            canonical_format(format_value(s->a, s->fkey[i]), s->fval[i]);
        }
    }
    return QAT_OK;
}

void qat_fit_select_free(qat_fit_select *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->origin[i]), free(s->label[i]);
    free(s->origin);
    free(s->label);
    free(s->key);
    free(s->fkey);
    free(s->fval);
    free(s->a);
    free(s->b);
    free(s);
}

/* The run's config into sel->a; 0 when it has a readable, non-empty one. */
static int load_run_config(const char *path, qat_fit_select *sel) {
    char *yaml = qat_runlog_read_config(path);
    int ok = yaml && strspn(yaml, " \t\r\n") < strlen(yaml) && !qat_config_load_string(yaml, path, sel->a);
    free(yaml);
    qat_clear_error();
    return ok ? 0 : -1;
}

/* 1 when the config in sel->a (of run r) has every --where value. A weights or
 * activations format matches the format the run log records, the one in effect
 * (a block format's rotation folded in as @hB, whether the config spelled it
 * mxfp4@h32 or mxfp4 with hadamard: 32, or the other side's rotation imposed it),
 * so `mxfp4` selects unrotated MXFP4 runs only, as the fit's pairs name them; the
 * config's own value only when the log records none. Gradients formats are
 * compared in the config, canonically. */
static int selected(qat_fit_select *sel, const qat_fit_run *r) {
    for (int i = 0; i < sel->n_where; i++) {
        if (sel->fkey[i]) {
            char c[QAT_FMT_MAX];
            canonical_format(format_value(sel->a, sel->fkey[i]), c);
            const char *recorded = sel->fkey[i] == FK_WEIGHTS ? r->wfmt : sel->fkey[i] == FK_ACTS ? r->afmt : "";
            if (strcmp(*recorded ? recorded : c, sel->fval[i])) return 0;
            continue;
        }
        memcpy(sel->b, sel->a, sizeof *sel->b);
        if (qat_config_set(sel->b, sel->where[i])) return qat_clear_error(), 0;
        char *x = qat_config_key_text(sel->a, sel->key[i]), *y = qat_config_key_text(sel->b, sel->key[i]);
        int same = !strcmp(x, y);
        free(x);
        free(y);
        if (!same) return 0;
    }
    return 1;
}

static void remember_data(qat_fit_select *sel, const char *path) {
    size_t cap = 256, n = 0;
    char *label = qat_xmalloc(cap);
    label[0] = 0;
    for (int k = 0; DATA_KEYS[k]; k++) {
        if (!data_key_matters(sel->a, DATA_KEYS[k])) continue;
        char *v = qat_config_key_text(sel->a, qat_config_key_find(DATA_KEYS[k]));
        size_t need = n + strlen(DATA_KEYS[k]) + strlen(v) + 3;
        if (need > cap) label = qat_xrealloc(label, cap = 2 * need);
        n += (size_t)sprintf(label + n, "%s=%s\n", DATA_KEYS[k], v);
        free(v);
    }
    if (sel->n == sel->cap) {
        sel->cap = sel->cap ? 2 * sel->cap : 16;
        sel->origin = qat_xrealloc(sel->origin, (size_t)sel->cap * sizeof *sel->origin);
        sel->label = qat_xrealloc(sel->label, (size_t)sel->cap * sizeof *sel->label);
    }
    sel->origin[sel->n] = qat_xstrdup(path);
    sel->label[sel->n++] = label;
}

/* One run log through qat_fit_read_runlog, then --where and the data label. */
static int read_runlog_sel(const char *path, qat_fit_runs *rs, int *skipped, int *unselected, int *finetuned,
                           FILE *warn, qat_fit_select *sel) {
    int before = rs->n;
    QAT_TRY(read_runlog(path, rs, skipped, finetuned, warn));
    if (!sel || rs->n == before) return QAT_OK;
    if (load_run_config(path, sel)) {
        if (!sel->n_where) return QAT_OK; /* nothing to select by; the data check cannot see it */
        rs->n = before;
        skip(warn, skipped, path, "no readable stored config, so --where cannot select it");
        return QAT_OK;
    }
    if (!selected(sel, &rs->run[before])) {
        rs->n = before;
        if (unselected) (*unselected)++;
        return QAT_OK;
    }
    remember_data(sel, path);
    return QAT_OK;
}

static const char *label_of(const qat_fit_select *sel, const char *origin) {
    for (int i = 0; i < sel->n; i++)
        if (!strcmp(sel->origin[i], origin)) return sel->label[i];
    return NULL;
}

/* The value of `key` in a label ("" when the key is not in it); into buf. */
static const char *label_value(const char *label, const char *key, char *buf, size_t n) {
    size_t kl = strlen(key);
    for (const char *p = label; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            snprintf(buf, n, "%.*s", (int)(eol - p - (ptrdiff_t)kl - 1), p + kl + 1);
            return buf;
        }
        p = eol ? eol + 1 : NULL;
    }
    buf[0] = 0;
    return buf;
}

/* The --where options that select the first group and no other: one --where
 * alone can leave several groups (a hint that did not cure the error it came
 * with). Keys are taken in order, each one that sets apart a group not yet set
 * apart; a group is set apart by a key only where both groups have a value
 * (a key the other group's source does not use says nothing about it). */
static void hint_for_first_group(const char **glabel, int ng, char *hint, size_t cap) {
    char *out = qat_xcalloc((size_t)ng, 1); /* groups the hint already leaves out */
    hint[0] = 0;
    for (int k = 0; DATA_KEYS[k]; k++) {
        char v[2048], w[2048];
        label_value(glabel[0], DATA_KEYS[k], v, sizeof v);
        if (!v[0]) continue;
        int useful = 0;
        for (int h = 1; h < ng; h++) {
            if (out[h]) continue;
            label_value(glabel[h], DATA_KEYS[k], w, sizeof w);
            if (w[0] && strcmp(v, w)) out[h] = 1, useful = 1;
        }
        size_t hn = strlen(hint);
        if (useful && hn < cap) snprintf(hint + hn, cap - hn, "%s--where '%s=%s'", hn ? " " : "", DATA_KEYS[k], v);
    }
    if (!hint[0]) snprintf(hint, cap, "--where KEY=VALUE"); /* no value tells them apart: say how */
    free(out);
}

int qat_fit_check_data(const qat_fit_runs *rs, const qat_fit_select *sel, int allow_mixed, FILE *warn) {
    if (!sel) return QAT_OK;
    /* groups: distinct labels in first-seen order, with a count and a file */
    const char **glabel = qat_xcalloc((size_t)rs->n + 1, sizeof *glabel);
    const char **gfile = qat_xcalloc((size_t)rs->n + 1, sizeof *gfile);
    int *gcount = qat_xcalloc((size_t)rs->n + 1, sizeof *gcount), ng = 0;
    for (int i = 0; i < rs->n; i++) {
        const char *l = label_of(sel, rs->run[i].origin);
        if (!l) continue;
        int g = 0;
        while (g < ng && strcmp(glabel[g], l)) g++;
        if (g == ng) glabel[ng] = l, gfile[ng] = rs->run[i].origin, ng++;
        gcount[g]++;
    }
    int rc = QAT_OK;
    if (ng > 1) {
        /* name each group by the keys that differ between groups only */
        size_t cap = 4096, n = 0;
        char *msg = qat_xmalloc(cap);
        msg[0] = 0;
        char hint[2200] = "";
        for (int g = 0; g < ng; g++) {
            char line[4096];
            size_t ln = (size_t)snprintf(line, sizeof line, "\n  %d run%s with", gcount[g], gcount[g] == 1 ? "" : "s");
            for (int k = 0; DATA_KEYS[k]; k++) {
                char v[2048], w[2048];
                int differs = 0;
                label_value(glabel[g], DATA_KEYS[k], v, sizeof v);
                for (int h = 0; h < ng && !differs; h++) differs = strcmp(v, label_value(glabel[h], DATA_KEYS[k], w, sizeof w)) != 0;
                if (!differs) continue;
                if (!v[0]) continue; /* a key this group's source does not use */
                if (ln < sizeof line) ln += (size_t)snprintf(line + ln, sizeof line - ln, " %s=%s", DATA_KEYS[k], v);
            }
            if (ln < sizeof line) snprintf(line + ln, sizeof line - ln, " (e.g. %s)", gfile[g]);
            size_t need = n + strlen(line) + 1;
            if (need > cap) msg = qat_xrealloc(msg, cap = 2 * need);
            n += (size_t)sprintf(msg + n, "%s", line);
        }
        hint_for_first_group(glabel, ng, hint, sizeof hint);
        if (allow_mixed) {
            if (warn) fprintf(warn, "qat: warning: the runs were trained on different data (--mixed-data: fitted "
                                    "together as asked):%s\n", msg);
        } else {
            rc = qat_fail(QAT_EINPUT, "the runs were trained on different data, so their losses are not on one "
                          "scale:%s\n  select one group with %s (--where KEY=VALUE, repeatable, any config key), "
                          "or pass --mixed-data to fit them together anyway", msg, hint);
        }
        free(msg);
    }
    free(glabel);
    free(gfile);
    free(gcount);
    return rc;
}

typedef struct {
    char **v;
    int n, cap;
} strlist;

static void strlist_push(strlist *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = qat_xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    l->v[l->n++] = qat_xstrdup(s);
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The walk of one directory given on the command line. Links are followed (a
 * run directory linked in from elsewhere is a run of the folder), but each
 * directory is entered once, by device and inode: a link back up (`latest ->
 * .`, an absolute link to the folder itself) made the walk follow it forever.
 * Links are followed once the real tree below the directory given has been
 * walked, so that a run log reached both ways is named by its real path; a run
 * log reached twice (a directory link, a linked run.h5) is listed once. A directory that cannot be read is an error (its run logs would
 * be lost without a word). */
typedef struct {
    struct { dev_t dev; ino_t ino; } *id;
    int n, cap;
} id_set;

/* 1 when st's file is in s already; else it is added and 0 is returned */
static int id_seen(id_set *s, const struct stat *st) {
    for (int i = 0; i < s->n; i++)
        if (s->id[i].dev == st->st_dev && s->id[i].ino == st->st_ino) return 1;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->id = qat_xrealloc(s->id, (size_t)s->cap * sizeof *s->id);
    }
    s->id[s->n].dev = st->st_dev, s->id[s->n].ino = st->st_ino, s->n++;
    return 0;
}

typedef struct {
    strlist *out;   /* the run logs found */
    id_set dirs, files;
    strlist links;  /* links met, walked once the real tree is done */
} walk;

static int walk_dir(walk *w, const char *dir, int top) {
    DIR *d = opendir(dir);
    if (!d) {
        if (top) return qat_fail(QAT_EINPUT, "%s: cannot open: %s", dir, strerror(errno));
        return qat_fail(QAT_ERUNTIME, "%s: cannot read this directory: %s (the run logs below it would be left out of "
                        "the fit)", dir, strerror(errno));
    }
    strlist names = {0};
    struct dirent *e;
    int rc = QAT_OK;
    for (;;) {
        errno = 0;
        if (!(e = readdir(d))) {
            if (errno) rc = qat_fail(QAT_ERUNTIME, "%s: cannot read this directory: %s", dir, strerror(errno));
            break;
        }
        if (e->d_name[0] != '.') strlist_push(&names, e->d_name);
    }
    closedir(d);
    if (names.n) qsort(names.v, (size_t)names.n, sizeof *names.v, str_cmp); /* the order must not depend on readdir */
    for (int k = 0; k < names.n && !rc; k++) {
        size_t len = strlen(dir) + strlen(names.v[k]) + 2;
        char *p = qat_xmalloc(len);
        snprintf(p, len, "%s/%s", dir, names.v[k]);
        struct stat st;
        int is_log = !strcmp(names.v[k], "run.h5");
        if (lstat(p, &st))
            rc = qat_fail(QAT_ERUNTIME, "%s: cannot read this directory: %s: %s", dir, names.v[k], strerror(errno));
        else if (S_ISLNK(st.st_mode)) strlist_push(&w->links, p);
        else if (S_ISDIR(st.st_mode)) {
            if (!id_seen(&w->dirs, &st)) rc = walk_dir(w, p, 0);
        } else if (is_log && !id_seen(&w->files, &st)) strlist_push(w->out, p);
        free(p);
    }
    for (int k = 0; k < names.n; k++) free(names.v[k]);
    free(names.v);
    return rc;
}

/* Every run.h5 below `dir` (into out, in walk order), each file once. */
static int find_runlogs(const char *dir, strlist *out) {
    walk w = {.out = out};
    struct stat st;
    int rc = QAT_OK;
    if (!stat(dir, &st)) id_seen(&w.dirs, &st);
    rc = walk_dir(&w, dir, 1);
    for (int i = 0; i < w.links.n && !rc; i++) { /* grows while links below links are met */
        const char *p = w.links.v[i], *base = strrchr(p, '/') + 1;
        if (stat(p, &st)) { /* a link to nothing: no directory; as a run log, one that cannot be read */
            if (!strcmp(base, "run.h5"))
                rc = qat_fail(QAT_ERUNTIME, "%s: cannot open: %s (a link to a run log that is not there)", p,
                              strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if (!id_seen(&w.dirs, &st)) rc = walk_dir(&w, p, 0);
        } else if (!strcmp(base, "run.h5") && !id_seen(&w.files, &st)) strlist_push(out, p);
    }
    for (int i = 0; i < w.links.n; i++) free(w.links.v[i]);
    free(w.links.v);
    free(w.dirs.id);
    free(w.files.id);
    return rc;
}

int qat_fit_read_inputs(char *const *paths, int n, qat_fit_runs *rs, int *skipped, FILE *warn) {
    return qat_fit_read_inputs_sel(paths, n, rs, skipped, NULL, warn, NULL);
}

/* The files read so far, by identity: a file met twice (a path given twice, a
 * run log inside a directory also given, a CSV and a link to it) would count its
 * runs twice, and the fit, its leave-one-out error and its bootstrap with them. */
typedef struct {
    struct {
        dev_t dev;
        ino_t ino;
        char *path;
    } *f;
    int n, cap;
    int finetuned; /* run logs skipped as started from a checkpoint */
    struct {       /* the runs taken from run logs, by content */
        char *config, *path;
        double loss, D, N;
    } *run;
    int n_run, cap_run;
} seen_files;

/* A run log whose run was taken already from another file: the same stored
 * config (a run is a pure function of it), N, D and final loss to the bit. A
 * run directory copied twice into one folder was counted twice (only the same
 * file, by inode, was caught), weighting it double in the fit, its
 * leave-one-out error and its bootstrap. A rerun of one config that ended
 * elsewhere (another thread count or CPU) is another measurement and stays.
 * The copy is left out with a warning naming both (docs/cli.md, qat fit). */
static int read_runlog_once(const char *path, qat_fit_runs *rs, int *skipped, int *unselected, FILE *warn,
                            qat_fit_select *sel, seen_files *seen) {
    int before = rs->n;
    QAT_TRY(read_runlog_sel(path, rs, skipped, unselected, &seen->finetuned, warn, sel));
    if (rs->n == before) return QAT_OK;
    char *yaml = NULL;
    if (qat_runlog_config(path, &yaml) || !yaml || !yaml[0]) { /* no stored config: nothing to tell a copy by */
        qat_clear_error();
        free(yaml);
        return QAT_OK;
    }
    const qat_fit_run *r = &rs->run[before];
    for (int i = 0; i < seen->n_run; i++)
        if (seen->run[i].loss == r->loss && seen->run[i].D == r->D && seen->run[i].N == r->N &&
            !strcmp(seen->run[i].config, yaml)) {
            if (warn)
                fprintf(warn, "qat: warning: %s: the same run as %s (the same stored config, N, D and final loss "
                        "%.10g: a copy), counted once\n", path, seen->run[i].path, r->loss);
            rs->n = before;
            if (skipped) (*skipped)++;
            free(yaml);
            return QAT_OK;
        }
    if (seen->n_run == seen->cap_run) {
        seen->cap_run = seen->cap_run ? 2 * seen->cap_run : 16;
        seen->run = qat_xrealloc(seen->run, (size_t)seen->cap_run * sizeof *seen->run);
    }
    seen->run[seen->n_run].config = yaml;
    seen->run[seen->n_run].path = qat_xstrdup(path);
    seen->run[seen->n_run].loss = r->loss, seen->run[seen->n_run].D = r->D, seen->run[seen->n_run].N = r->N;
    seen->n_run++;
    return QAT_OK;
}

static int first_reading(seen_files *s, const char *path) {
    struct stat st;
    if (stat(path, &st)) return QAT_OK; /* the reader reports it */
    for (int i = 0; i < s->n; i++)
        if (s->f[i].dev == st.st_dev && s->f[i].ino == st.st_ino)
            return qat_fail(QAT_EINPUT, "%s: the same file as %s, read already (a path given twice, or a run log "
                            "inside a directory also given); give each input once, so that no run counts twice",
                            path, s->f[i].path);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->f = qat_xrealloc(s->f, (size_t)s->cap * sizeof *s->f);
    }
    s->f[s->n].dev = st.st_dev, s->f[s->n].ino = st.st_ino, s->f[s->n].path = qat_xstrdup(path);
    s->n++;
    return QAT_OK;
}

/* A name that says HDF5: "….h5" or "….hdf5" (any case). */
static int h5_name(const char *path) {
    size_t n = strlen(path);
    return (n > 3 && !strcasecmp(path + n - 3, ".h5")) || (n > 5 && !strcasecmp(path + n - 5, ".hdf5"));
}

static int read_inputs(char *const *paths, int n, qat_fit_runs *rs, int *skipped, int *unselected, FILE *warn,
                       qat_fit_select *sel, seen_files *seen) {
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st))
            return qat_fail(QAT_EINPUT, "%s: cannot open: %s", paths[i], strerror(errno));
        if (S_ISDIR(st.st_mode)) {
            strlist l = {0};
            int rc = find_runlogs(paths[i], &l);
            if (!rc && l.n == 0) rc = qat_fail(QAT_EINPUT, "%s: no run.h5 below this directory", paths[i]);
            if (l.n) qsort(l.v, (size_t)l.n, sizeof *l.v, str_cmp); /* file order must not depend on readdir */
            for (int k = 0; k < l.n && !rc; k++) {
                rc = first_reading(seen, l.v[k]);
                if (!rc) rc = read_runlog_once(l.v[k], rs, skipped, unselected, warn, sel, seen);
            }
            for (int k = 0; k < l.n; k++) free(l.v[k]);
            free(l.v);
            QAT_TRY(rc);
            continue;
        }
        htri_t is_h5;
        H5E_BEGIN_TRY { is_h5 = H5Fis_hdf5(paths[i]); } H5E_END_TRY; /* quiet: HDF5 printed its stack for a 000 file */
        if (is_h5 > 0) {
            QAT_TRY(first_reading(seen, paths[i]));
            QAT_TRY(read_runlog_once(paths[i], rs, skipped, unselected, warn, sel, seen));
        } else if (h5_name(paths[i]) && access(paths[i], R_OK) == 0) {
            /* a .h5 whose first bytes no longer say HDF5 (damaged, or not HDF5): it was read as a
             * CSV, "unknown column 'XHDF' ignored", then "the header has no column for N" */
            return qat_fail(QAT_EINPUT, "%s: not an HDF5 file (its first bytes are not HDF5's signature; "
                            "expected a run log, run.h5, or a CSV table under a name not ending in .h5)", paths[i]);
        } else {
            if (sel && sel->n_where)
                return qat_fail(QAT_EINPUT, "%s: a CSV has no run configs for --where to select by; "
                                "give run logs, or drop --where", paths[i]);
            QAT_TRY(first_reading(seen, paths[i]));
            QAT_TRY(qat_fit_read_csv_warn(paths[i], rs, warn));
        }
    }
    return QAT_OK;
}

int qat_fit_read_inputs_sel(char *const *paths, int n, qat_fit_runs *rs, int *skipped, int *unselected, FILE *warn,
                            qat_fit_select *sel) {
    seen_files seen = {0};
    int rc = read_inputs(paths, n, rs, skipped, unselected, warn, sel, &seen);
    if (!rc && seen.finetuned && warn)
        fprintf(warn, "qat: warning: %d run%s started from a checkpoint (qat train --init or train.init; run.h5 "
                "attribute init_from) left out, as warned above: %s /final/tokens counts the fine-tuning tokens "
                "only, not those behind the weights it started from, so it is no point of a law over (N, D); "
                "fit the runs trained from scratch\n", seen.finetuned, seen.finetuned == 1 ? "" : "s",
                seen.finetuned == 1 ? "its" : "each one's");
    for (int i = 0; i < seen.n; i++) free(seen.f[i].path);
    free(seen.f);
    for (int i = 0; i < seen.n_run; i++) free(seen.run[i].config), free(seen.run[i].path);
    free(seen.run);
    return rc;
}

int qat_fit_input_files(char *const *paths, int n, char ***files, int *nf) {
    strlist l = {0};
    int rc = QAT_OK;
    for (int i = 0; i < n && !rc; i++) {
        struct stat st;
        if (!stat(paths[i], &st) && S_ISDIR(st.st_mode)) rc = find_runlogs(paths[i], &l);
        else strlist_push(&l, paths[i]);
    }
    if (rc) { /* the caller gets nothing to free */
        for (int i = 0; i < l.n; i++) free(l.v[i]);
        free(l.v);
        l.v = NULL, l.n = 0;
    }
    *files = l.v;
    *nf = l.n;
    return rc;
}

void qat_fit_drop_highest(qat_fit_runs *rs, int k) {
    for (; k > 0 && rs->n > 0; k--) {
        int worst = 0;
        for (int i = 1; i < rs->n; i++)
            if (rs->run[i].loss > rs->run[worst].loss) worst = i;
        memmove(&rs->run[worst], &rs->run[worst + 1], (size_t)(rs->n - worst - 1) * sizeof *rs->run);
        rs->n--;
    }
}

/* A GLOB is compared with one thing, told by its shape alone, so that what it
 * drops never depends on how an input path is spelled: '*' crossed '/' and
 * every glob was tried on the file path too, so '*' '/' '*' '/' 'mxfp4*' (a
 * backward scheme) dropped every row of exp/quartet/mxfp4-study.csv, and
 * 'mxfp4*' (a weight format) every row of mxfp4-study.csv. A glob ending in
 * .csv or .h5 (a file name; no format ends so) matches the run's file, its
 * path as given with '*' crossing '/' (a CSV row's file is its CSV); any
 * other by its '/'-separated parts, each part one part ('*' never crossing
 * '/'): one part the weight format, two the W/A pair, three the W/A/G key. */
static int file_glob(const char *glob) {
    size_t n = strlen(glob);
    return (n >= 4 && !strcasecmp(glob + n - 4, ".csv")) || (n >= 3 && !strcasecmp(glob + n - 3, ".h5"));
}

int qat_fit_exclude(qat_fit_runs *rs, const char *glob) {
    int parts = 1;
    for (const char *c = glob; *c; c++) parts += *c == '/';
    int by_file = file_glob(glob);
    int m = 0, removed = 0;
    for (int i = 0; i < rs->n; i++) {
        const qat_fit_run *r = &rs->run[i];
        char what[sizeof r->origin > QAT_FIT_KEY_LEN ? sizeof r->origin : QAT_FIT_KEY_LEN];
        int flags = FNM_PATHNAME;
        if (by_file) {
            /* a CSV row's origin is FILE:LINE: the glob names the file, as for a run log */
            snprintf(what, sizeof what, "%s", r->origin);
            char *colon = strrchr(what, ':');
            if (r->from_csv && colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) *colon = 0;
            flags = 0;
        } else if (parts == 1) snprintf(what, sizeof what, "%s", r->wfmt);
        else if (parts == 2) snprintf(what, sizeof what, "%s/%s", r->wfmt, r->afmt);
        else if (parts == 3) snprintf(what, sizeof what, "%s/%s/%s", r->wfmt, r->afmt, qat_fit_run_bwd(r));
        else what[0] = 0; /* nothing has four parts */
        if ((by_file || parts <= 3) && !fnmatch(glob, what, flags)) {
            removed++;
            continue;
        }
        rs->run[m++] = *r;
    }
    rs->n = m;
    return removed;
}
