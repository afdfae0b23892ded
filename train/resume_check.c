/*
 * train/resume_check.c — whether a run already on disk is the run now asked for.
 * qat_runio_open asks it before a --resume continues a checkpoint (or leaves a
 * completed run as it is): the config the run was started with against the one
 * given, key by key, then the data its checkpoint was written on; qat sweep asks
 * it of a completed run (qat_runio_config_changes_run), so that a changed sweep
 * file never passes an old run off as the new one.
 *
 * A resume continues one run under one name, so only the keys that change no
 * step may differ (SAFE_KEYS); every other change is refused with all of them
 * listed, so that one edit fixes the config. What is one thing written two ways
 * is not a change: formats compare in canonical form, train.init by the file it
 * names (a run records its --init source absolute, qat_runio_absolute_init, and
 * may be resumed with a relative path or a link to it).
 */
#include "train/resume_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/format.h"
#include "core/error.h"
#include "data/dataset.h"
#include "runlog/checkpoint.h"
#include "train/runio.h"

/* Keys a resume may change (docs/config.md#resuming), and why each is safe:
 * none changes what a step computes. `name` only names the directory (a moved
 * run resumes under its new name); `threads` moves the last bits of a sum the
 * way another CPU does, and `threads: 0` already means "whatever this node
 * has"; the cadence keys only decide when the run evaluates (without
 * gradients, changing no state), logs and checkpoints; the budget keys extend
 * (or shorten) the run from the checkpoint on: batches stay a function of the
 * step, the schedule is recomputed for the new total. Everything else would
 * make the resumed run a different run under the same name. */
static const char *const SAFE_KEYS[] = {"name", "threads", "train.tokens", "train.tokens_per_param",
                                        "train.eval_every", "train.checkpoint_every", "train.log_every", NULL};

static int is_safe_key(const char *key) {
    for (int i = 0; SAFE_KEYS[i]; i++)
        if (!strcmp(SAFE_KEYS[i], key)) return 1;
    return 0;
}

/* Tiny growable string for the change lists. */
typedef struct {
    char *s;
    size_t n;
} textbuf;

static void tb_add(textbuf *b, const char *a, const char *c, const char *d, const char *e) {
    size_t add = strlen(a) + strlen(c) + strlen(d) + strlen(e);
    b->s = qat_xrealloc(b->s, b->n + add + 1);
    b->n += (size_t)snprintf(b->s + b->n, add + 1, "%s%s%s%s", a, c, d, e);
}

/* The config with every format in canonical form (compress/format.h): modifiers
 * in the grammar's order, and a block format's hadamard: B folded into its @hB,
 * so `mxfp4@sr@h32` and `mxfp4@h32@sr`, or `mxfp4` with hadamard: 32 and
 * `mxfp4@h32`, compare equal on resume. A format that does not parse is left
 * as written (the comparison then shows it). */
static qat_config canonical_formats(const qat_config *c) {
    qat_config k = *c; /* shallow: only fixed-size fields are rewritten, nothing is freed */
    qat_compress_side *sides[] = {&k.weights, &k.activations};
    for (int i = 0; i < 2; i++) {
        char buf[sizeof sides[i]->format];
        int h;
        if (!qat_fmt_canonical_side(sides[i]->format, sides[i]->hadamard, buf, sizeof buf, &h)) {
            memcpy(sides[i]->format, buf, sizeof buf);
            sides[i]->hadamard = h;
        }
    }
    qat_fmt g;
    if (!qat_fmt_parse(k.gradients.format, &g)) snprintf(k.gradients.format, sizeof k.gradients.format, "%s", g.name);
    qat_clear_error();
    return k;
}

/* Two train.init values name one source: the same text, the same absolute
 * path once a relative one is read from the current directory (a run records
 * its source absolute, qat_runio_absolute_init, and is resumed with `src.h5`
 * or `../src.h5`, also once the file is gone), or paths of the same file
 * (device and inode: another spelling, a hard or symbolic link). */
static int same_source(const char *a, const char *b) {
    if (!strcmp(a, b)) return 1;
    char x_abs[QAT_PATH_MAX], y_abs[QAT_PATH_MAX];
    if (!qat_runio_absolute_init(a, x_abs, sizeof x_abs) && !qat_runio_absolute_init(b, y_abs, sizeof y_abs) &&
        !strcmp(x_abs, y_abs))
        return 1;
    const char *pair[2] = {a, b};
    int x, y;
    int same = qat_data_same_file(pair, 2, &x, &y);
    qat_clear_error();
    return same;
}

int qat_runio_absolute_init(const char *path, char *out, size_t n) {
    char cwd[QAT_PATH_MAX];
    if (path[0] == '/' || !path[0]) return snprintf(out, n, "%s", path) >= (int)n;
    if (!getcwd(cwd, sizeof cwd)) return 1;
    while (path[0] == '.' && path[1] == '/') /* `./src.h5` is `src.h5` */
        for (path += 2; *path == '/'; path++) {}
    return snprintf(out, n, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", path) >= (int)n;
}

int qat_runio_compare_configs(const char *origin, const qat_config *old, const qat_config *cfg, const char *init_from,
                              char **note) {
    textbuf bad = {0}, safe = {0};
    int n_bad = 0;
    qat_config old_c = canonical_formats(old), cfg_c = canonical_formats(cfg);
    /* train.init is how the run began, a fact the checkpoint already holds: a resume
     * that does not say it (no --init, no key) continues the same run, and so does
     * one of a run whose stored config did not record it (started with --init
     * before --init was written into train.init, or from random weights: --init
     * then only gets its "not applied" note), and one that names the recorded
     * file under another spelling (`./t/src.h5` for `t/src.h5`, a link), told
     * by device and inode as every "same file" of qat is (docs/cli.md). Another
     * file is another run, refused. Never opened: the checkpoint holds
     * everything, and the source may have moved since (then the same text still
     * continues, and another spelling cannot be shown to be it). */
    int init_same = !cfg_c.train.init[0] || !old_c.train.init[0] || same_source(old_c.train.init, cfg_c.train.init);
    /* a run started before the source was recorded absolute stored it as spelled,
     * relative to a directory nobody knows now: run.h5's init_from (absolute,
     * from the same start) says which file it was */
    if (!init_same && old_c.train.init[0] != '/' && init_from && init_from[0])
        init_same = same_source(init_from, cfg_c.train.init);
    if (init_same) memcpy(cfg_c.train.init, old_c.train.init, sizeof cfg_c.train.init);
    old = &old_c;
    cfg = &cfg_c;
    for (int i = 0; i < qat_config_key_count(); i++) {
        char *a = qat_config_key_text(old, i), *b = qat_config_key_text(cfg, i);
        if (strcmp(a, b)) {
            qat_config_key_info k;
            qat_config_key_get(i, &k);
            if (is_safe_key(k.key)) {
                tb_add(&safe, safe.n ? "; " : "", k.key, " ", a);
                tb_add(&safe, " -> ", b, "", "");
            } else {
                tb_add(&bad, "\n  ", k.key, ": ", a);
                tb_add(&bad, " -> ", b, "", "");
                if (!strcmp(k.key, "train.init")) /* the way on: the checkpoint needs no source */
                    tb_add(&bad, access(old->train.init, F_OK) ? " (the recorded file is not there to compare with: "
                                                                 "leave out --init/train.init, the checkpoint holds the "
                                                                 "run)" : " (another file; a resume needs no --init: "
                                                                 "leave it out to continue)", "", "", "");
                n_bad++;
            }
        }
        free(a);
        free(b);
    }
    *note = safe.s;
    if (!n_bad) return QAT_OK;
    textbuf allowed = {0};
    for (int i = 0; SAFE_KEYS[i]; i++) tb_add(&allowed, i ? ", " : "", SAFE_KEYS[i], "", "");
    int rc = qat_fail(QAT_EINPUT,
                      "%s: --resume with a config that differs from the one the run was started with in %d key%s "
                      "(stored -> given):%s\n"
                      "  a resume continues the same run; only %s may change (docs/config.md#resuming). "
                      "Resume with the stored config, or start a new run under another name",
                      origin, n_bad, n_bad == 1 ? "" : "s", bad.s, allowed.s);
    free(bad.s);
    free(allowed.s);
    free(safe.s);
    *note = NULL;
    return rc;
}

int qat_runio_config_changes_run(const qat_config *old, const qat_config *cfg) {
    /* the keys that say how a run is run or logged, not what it trains; and the
     * two spellings of the budget, which the caller compares resolved */
    static const char *const cadence[] = {"name", "threads", "train.eval_every", "train.checkpoint_every",
                                          "train.log_every", "train.tokens", "train.tokens_per_param", NULL};
    qat_config a = canonical_formats(old), b = canonical_formats(cfg);
    int changed = 0;
    for (int i = 0; i < qat_config_key_count() && !changed; i++) {
        qat_config_key_info k;
        qat_config_key_get(i, &k);
        int how = 0;
        for (int c = 0; cadence[c]; c++) how |= !strcmp(cadence[c], k.key);
        if (how) continue;
        if (!strcmp(k.key, "train.init")) { /* recorded absolute, given as the sweep spells it */
            changed = !(a.train.init[0] ? b.train.init[0] && same_source(a.train.init, b.train.init) : !b.train.init[0]);
            continue;
        }
        char *x = qat_config_key_text(&a, i), *y = qat_config_key_text(&b, i);
        changed = strcmp(x, y) != 0;
        free(x);
        free(y);
    }
    return changed;
}

int qat_runio_check_data(const char *ckpt_path, uint32_t crc, int64_t tokens) {
    if (access(ckpt_path, F_OK) != 0 || tokens <= 0) return QAT_OK;
    qat_ckpt_file *f;
    if (qat_ckpt_open(ckpt_path, &f)) {
        qat_clear_error(); /* what is wrong with the checkpoint is reported where it is loaded */
        return QAT_OK;
    }
    qat_ckpt_state st;
    int64_t c = 0, n = 0;
    int rc = QAT_OK;
    if (!qat_ckpt_read_state(f, &st) && !qat_ckpt_state_get_int(&st, "data_crc32", &c) &&
        !qat_ckpt_state_get_int(&st, "data_tokens", &n) && ((uint32_t)c != crc || n != tokens))
        rc = qat_fail(QAT_EINPUT, "%s: the training data changed since this checkpoint was written (then %lld tokens "
                      "with CRC-32 %08x, now %lld tokens with CRC-32 %08x); a resume continues the same run on the "
                      "same data: restore the data, or start a new run under another name", ckpt_path, (long long)n,
                      (unsigned)c, (long long)tokens, (unsigned)crc);
    if (!rc) qat_clear_error();
    qat_ckpt_close(f);
    return rc;
}
