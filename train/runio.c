/*
 * train/runio.c — filling run.h5 and ckpt.h5 from a live run, and back. Whether
 * a run on disk is the one asked for (the stored config against the given one,
 * the data against the checkpoint's) is resume_check.c's; qat_runio_open asks it.
 *
 * Checkpoint layout (docs/files.md): /params/NAME for every model view under its
 * Hugging Face name, /optim/m/NAME and /optim/v/NAME for every view the
 * optimizer moves (quantizer parameters included), /compress/NAME for each
 * quantizer state array, and /state/{step,tokens,data_pos} plus the AdamW step
 * count and the wall time so far. The data position is the step: batches are a
 * pure function of it (data/batch.h), so nothing else of the stream is saved.
 */
#include "runio.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compress/capacity.h"
#include "compress/format.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "runlog/checkpoint.h"
#include "runlog/runlog.h"
#include "resume_check.h"
#include "trainer.h"

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int is_compress_view(const qat_param_view *v) { return v->kind == QAT_PARAM_COMPRESS; }

/* Every array of a checkpoint, with names allocated in one block. */
typedef struct {
    qat_ckpt_array *arr;
    char (*names)[160];
    int n;
} ckpt_list;

static void list_free(ckpt_list *l) {
    free(l->arr);
    free(l->names);
    memset(l, 0, sizeof *l);
}

static void list_add(ckpt_list *l, const char *prefix, const char *name, int ndim, const int64_t *shape, float *data) {
    int i = l->n++;
    snprintf(l->names[i], sizeof l->names[i], "%s%s", prefix, name);
    l->arr[i].name = l->names[i];
    l->arr[i].ndim = ndim;
    for (int d = 0; d < QAT_CKPT_MAX_DIMS; d++) l->arr[i].shape[d] = d < ndim ? shape[d] : 0;
    l->arr[i].data = data;
}

/* The arrays of model m and optimizer opt (opt may be NULL: parameters only). */
static void build_list(qat_model *m, qat_adamw *opt, ckpt_list *l) {
    int ns = qat_model_compress_state_count(m);
    int cap = 3 * m->n_views + ns;
    l->arr = qat_xcalloc((size_t)cap, sizeof *l->arr);
    l->names = qat_xcalloc((size_t)cap, sizeof *l->names);
    l->n = 0;
    for (int i = 0; i < m->n_views; i++) {
        qat_param_view *v = &m->views[i];
        if (!is_compress_view(v)) list_add(l, "params/", v->name, v->ndim, v->shape, v->data);
    }
    for (int i = 0; opt && i < m->n_views; i++) {
        qat_param_view *v = &m->views[i];
        list_add(l, "optim/m/", v->name, v->ndim, v->shape, qat_adamw_m(opt, i));
        list_add(l, "optim/v/", v->name, v->ndim, v->shape, qat_adamw_v(opt, i));
    }
    for (int i = 0; i < ns; i++) {
        char name[96];
        float *data;
        int64_t n;
        qat_model_compress_state(m, i, name, &data, &n);
        list_add(l, "compress/", name, 1, &n, data);
    }
}

static void fill_attrs(const qat_config *cfg, const qat_model *m, qat_ckpt_attrs *a, char *yaml) {
    memset(a, 0, sizeof *a);
    a->config_yaml = yaml;
    a->layers = m->s.layers;
    a->dim = m->s.dim;
    a->heads = m->s.heads;
    a->hidden = m->s.hidden;
    a->vocab = m->s.vocab;
    a->seq_len = m->s.seq_len;
    a->rope_theta = m->s.rope_theta;
    a->norm_eps = m->s.norm_eps;
    snprintf(a->weight_format, sizeof a->weight_format, "%s", qat_model_weight_format(m));
    snprintf(a->act_format, sizeof a->act_format, "%s", qat_model_act_format(m));
    snprintf(a->estimator, sizeof a->estimator, "%s", qat_model_estimator(m));
    snprintf(a->precision, sizeof a->precision, "%s", m->bf16 ? "bf16" : "fp32");
    (void)cfg;
}

/* 1 when a checkpoint's recorded format is the one the model now uses. A qat
 * older than the effective-@hB naming recorded a rotated block format without
 * its @hB (`mxfp4` for mxfp4 with hadamard: 32); the config comparison already
 * checked the settings, so such a name matches the same format with its @hB. */
static int same_format(const char *stored, const char *now) {
    qat_fmt a, b;
    if (qat_fmt_parse(stored, &a) || qat_fmt_parse(now, &b)) {
        qat_clear_error();
        return !strcmp(stored, now);
    }
    if (!a.had && qat_fmt_is_block(&b)) {
        b.had = 0;
        b.mods &= ~(unsigned)QAT_MOD_H;
    }
    char x[QAT_FMT_MAX], y[QAT_FMT_MAX];
    return !strcmp(qat_fmt_print(&a, x, sizeof x), qat_fmt_print(&b, y, sizeof y));
}

int qat_runio_load_checkpoint(const char *path, const qat_config *cfg, qat_model *m, qat_adamw *opt,
                              int64_t *step, double *wall_s) {
    qat_ckpt_file *f;
    QAT_TRY(qat_ckpt_open(path, &f));
    qat_ckpt_attrs a;
    int rc = qat_ckpt_read_attrs(f, &a);
    /* Only a run that continues must match: evaluation may read the weights
     * through other formats on purpose (qat eval --set compress...). */
    if (!rc && opt && (!same_format(a.weight_format, qat_model_weight_format(m)) ||
                       !same_format(a.act_format, qat_model_act_format(m))))
        rc = qat_fail(QAT_EINPUT, "%s: checkpoint was trained with weights %s / activations %s, the config asks for %s / %s",
                      path, a.weight_format, a.act_format, qat_model_weight_format(m), qat_model_act_format(m));
    ckpt_list l = {0};
    if (!rc) {
        build_list(m, opt, &l);
        for (int i = 0; i < l.n && !rc; i++)
            rc = qat_ckpt_read_array(f, l.arr[i].name, l.arr[i].ndim, l.arr[i].shape, (float *)l.arr[i].data);
    }
    qat_ckpt_state st;
    if (!rc) rc = qat_ckpt_read_state(f, &st);
    if (!rc) {
        if (step) *step = st.step;
        double w = 0;
        if (wall_s) *wall_s = qat_ckpt_state_get_real(&st, "wall_s", &w) ? 0 : w;
        int64_t t = st.step;
        if (opt) {
            qat_ckpt_state_get_int(&st, "adam_t", &t);
            opt->t = t;
        }
    }
    list_free(&l);
    qat_ckpt_close(f);
    (void)cfg;
    return rc;
}

int qat_runio_stored_config(const char *yaml, const char *path, qat_config *cfg) {
    int rc = qat_config_load_string(yaml, path, cfg);
    if (rc) {
        char msg[4096];
        snprintf(msg, sizeof msg, "%s", qat_errmsg());
        size_t pl = strlen(path);
        const char *body = msg;
        int line = 0, col = 0, used = 0;
        if (!strncmp(msg, path, pl)) {
            if (sscanf(msg + pl, ":%d:%d: %n", &line, &col, &used) == 2 && used > 0) body = msg + pl + used;
            else if (!strncmp(msg + pl, ": ", 2)) body = msg + pl + 2;
        }
        if (line)
            return qat_fail(rc, "the config stored in %s cannot be read (line %d, column %d of its YAML): %s", path,
                            line, col, body);
        return qat_fail(rc, "the config stored in %s cannot be read: %s", path, body);
    }
    qat_config_forget_origin(cfg);
    char src[sizeof cfg->source_path];
    if ((size_t)snprintf(src, sizeof src, "the config stored in %s", path) >= sizeof src)
        snprintf(src, sizeof src, "%s", path); /* too long to say more: the file's name */
    memcpy(cfg->source_path, src, sizeof src);
    return QAT_OK;
}

/* The config and step a checkpoint was written with. */
static int read_ckpt_head(const char *path, qat_config *old, int64_t *step) {
    qat_ckpt_file *f;
    QAT_TRY(qat_ckpt_open(path, &f));
    char *yaml = NULL;
    qat_ckpt_state st;
    int rc = qat_ckpt_read_config(f, &yaml);
    if (!rc) rc = qat_ckpt_read_state(f, &st);
    qat_ckpt_close(f);
    if (!rc) rc = qat_runio_stored_config(yaml, path, old);
    if (!rc) *step = st.step;
    free(yaml);
    return rc;
}

/* The budget of config c in steps, as the trainer plans it for model m; -1
 * when it cannot be planned (then it matches no other). */
static int64_t budget_steps(const qat_config *c, const qat_model *m) {
    qat_run_plan plan;
    if (qat_train_plan(c, m->n_params, m->s.seq_len, &plan)) {
        qat_clear_error();
        return -1;
    }
    return plan.steps;
}

/* For a --resume that starts afresh over an unfinished run.h5 (no checkpoint):
 * the train.init the log's config records when the given config names none, so
 * that an --init run stopped before its first checkpoint (in its PTQ
 * evaluation, or killed before step checkpoint_every) starts again from its
 * source, as `--resume` of an --init run needs no --init, rather than from
 * random weights. io->cfg becomes a copy with it (io->own_cfg); 1 when taken. */
static int adopt_recorded_init(qat_runio *io, const char *runpath) {
    if (io->cfg->train.init[0]) return 0; /* given: a fresh start is the config given */
    char *yaml = NULL;
    qat_config *old = qat_xmalloc(sizeof *old);
    int took = 0;
    if (!qat_runlog_config(runpath, &yaml) && !qat_runio_stored_config(yaml, runpath, old) && old->train.init[0]) {
        io->own_cfg = qat_xmalloc(sizeof *io->own_cfg);
        *io->own_cfg = *io->cfg;
        memcpy(io->own_cfg->train.init, old->train.init, sizeof old->train.init);
        io->cfg = io->own_cfg;
        took = 1;
    }
    qat_clear_error(); /* an unreadable log is started afresh, as the note says */
    free(yaml);
    free(old);
    return took;
}

/* The source named by the line a run killed while starting left in its lock,
 * "starting from train.init SOURCE" (qat_runlog_lock_say below), when the resume
 * gives none: 1 with io->cfg a copy holding it. */
static int adopt_lock_init(qat_runio *io, const char *said) {
    static const char pre[] = "starting from train.init ";
    const size_t n = sizeof pre - 1;
    if (io->cfg->train.init[0] || strncmp(said, pre, n) || !said[n]) return 0;
    if (strlen(said + n) >= sizeof io->cfg->train.init) return 0; /* cut short: not the file */
    io->own_cfg = qat_xmalloc(sizeof *io->own_cfg);
    *io->own_cfg = *io->cfg;
    snprintf(io->own_cfg->train.init, sizeof io->own_cfg->train.init, "%s", said + n);
    io->cfg = io->own_cfg;
    return 1;
}

int qat_runio_open(qat_runio *io, const char *dir, const qat_config *cfg, qat_model *m, qat_adamw *opt,
                   int resume, double tokens_target, uint32_t data_crc, int64_t data_tokens, int64_t *start_step,
                   double *wall_before, qat_runio_start_fn at_start, void *start_ctx) {
    memset(io, 0, sizeof *io);
    snprintf(io->dir, sizeof io->dir, "%s", dir);
    snprintf(io->ckpt, sizeof io->ckpt, "%s/ckpt.h5", dir);
    io->cfg = cfg;
    io->model = m;
    io->opt = opt;
    io->data_crc = data_crc;
    io->data_tokens = data_tokens;
    char runpath[sizeof io->dir + 16];
    snprintf(runpath, sizeof runpath, "%s/run.h5", dir);
    *start_step = 0;
    *wall_before = 0;

    /* Everything below is decided under the run's writer lock: checked first
     * and acted on after, another process (a second sweep over the same
     * directory, a resume typed by hand) could complete or start the run in
     * between, and this one would then overwrite what that one wrote. */
    /* run.h5 and ckpt.h5 are read before they are written: a FIFO or a device
     * there would block the read or be replaced, so refuse it first. */
    int rc0 = qat_out_check_as(runpath, QAT_OUT_RUNLOG, NULL, 0);
    if (rc0 && resume && file_exists(io->ckpt)) {
        /* another kind of file where the run log was (overwritten by hand or by a
         * tool): never replaced, but the run goes on from its checkpoint once the
         * file is moved aside, which "choose another output" does not tell */
        char msg[4096];
        snprintf(msg, sizeof msg, "%s", qat_errmsg());
        return qat_fail(rc0, "%s; to continue from %s, move %s aside and --resume again (a new run log is started)",
                        msg, io->ckpt, runpath);
    }
    QAT_TRY(rc0);
    QAT_TRY(qat_out_check_as(io->ckpt, QAT_OUT_CKPT, NULL, 0));
    /* a lock left without a log by a run killed between taking it and creating
     * run.h5, which only an --init run's PTQ evaluation makes long (seconds):
     * told by the line such a run leaves in it (qat_runlog_lock_say below), not
     * by the file, which a sweep creates too when it decides to start a run */
    char killed_starting[QAT_PATH_MAX + 64];
    qat_runlog_lock_said(runpath, killed_starting, sizeof killed_starting);
    int had_lock = killed_starting[0] != 0;
    int lock_fd;
    QAT_TRY(qat_runlog_lock(runpath, &lock_fd, NULL));
    /* an empty run.h5 (a copy or a disk that stopped at 0 bytes) holds no series:
     * it is a missing log, recreated from the checkpoint on --resume */
    struct stat rst;
    int have_ckpt = file_exists(io->ckpt),
        have_log = file_exists(runpath) && !(stat(runpath, &rst) == 0 && S_ISREG(rst.st_mode) && rst.st_size == 0);
    int completed = 0;
    int64_t final_tokens = 0; /* of a completed run: what it trained */
    char status[16] = "", init_from[sizeof ((qat_runlog_summary *)0)->init_from] = "";
    if (have_log) {
        qat_runlog_summary *sum = qat_xmalloc(sizeof *sum);
        if (!qat_runlog_read_final(runpath, sum)) {
            snprintf(status, sizeof status, "%s", sum->status);
            snprintf(init_from, sizeof init_from, "%s", sum->init_from);
            completed = !strcmp(sum->status, "completed") && sum->has_final;
            if (completed) io->completed_val_loss = sum->final.val_loss, final_tokens = sum->final.tokens;
        }
        free(sum);
        qat_clear_error();
    }
    int64_t new_steps = (int64_t)llround(tokens_target / (double)cfg->train.batch_tokens);
    char *note = NULL;
    int rc = QAT_OK;

    if (!resume) {
        /* A fresh start never replaces a checkpoint or a finished run's log. */
        if (have_ckpt)
            rc = qat_fail(QAT_EINPUT, "%s already holds a run with a checkpoint; continue it with --resume, "
                          "or choose another name/--out", dir);
        else if (completed)
            rc = qat_fail(QAT_EINPUT, "%s already holds a completed run (validation loss %.4f); choose another "
                          "name/--out, or delete the directory to train it again", dir, io->completed_val_loss);
        else if (have_log)
            snprintf(io->note, sizeof io->note, "%s held an unfinished run with no checkpoint (status %s); "
                     "starting it afresh", runpath, status[0] ? status : "unreadable");
        if (rc) goto unlock;
        goto fresh;
    }

    if (!have_ckpt) {
        if (completed) {
            /* A finished run whose checkpoint was deleted: nothing to continue
             * from. The same rule as with a checkpoint: a change outside the
             * safe keys is refused, a safe key (threads, log_every) alone
             * leaves the completed run as it is, and only a new budget, which
             * would need the checkpoint to continue, is refused. */
            char *yaml = NULL;
            qat_config *old = qat_xmalloc(sizeof *old);
            rc = qat_runlog_config(runpath, &yaml);
            if (!rc) rc = qat_runio_stored_config(yaml, runpath, old);
            if (!rc) rc = qat_runio_compare_configs(runpath, old, cfg, init_from, &note);
            free(yaml);
            free(old);
            if (!rc && new_steps * cfg->train.batch_tokens != final_tokens)
                rc = qat_fail(QAT_EINPUT, "%s: the run is completed at %lld tokens and its checkpoint %s is gone, "
                              "so it cannot be continued to %lld tokens%s%s", runpath, (long long)final_tokens,
                              io->ckpt, (long long)(new_steps * cfg->train.batch_tokens), note ? " with " : "",
                              note ? note : "");
            if (!rc) io->completed = 1;
            goto unlock;
        }
        if (have_log && adopt_recorded_init(io, runpath)) {
            cfg = io->cfg;
            snprintf(io->note, sizeof io->note, "%s: no checkpoint to resume from (status %s); starting afresh from "
                     "train.init %s, which it records (the run began from that checkpoint)", runpath,
                     status[0] ? status : "unreadable", cfg->train.init);
        } else if (have_log)
            snprintf(io->note, sizeof io->note, "%s: no checkpoint to resume from (status %s); starting afresh",
                     runpath, status[0] ? status : "unreadable");
        else if (had_lock && adopt_lock_init(io, killed_starting)) {
            /* the line a run killed while starting left (an --init run killed in its
             * PTQ evaluation) names its source, absolute (trainer.c): a fine-tune
             * resumed without --init starts from it, as one stopped by a signal does
             * from what its run.h5 records */
            cfg = io->cfg;
            snprintf(io->note, sizeof io->note, "%s holds no run.h5 and no checkpoint, only the lock of a run killed "
                     "before it wrote its log (it was %s); starting afresh from train.init %s, which the lock records",
                     dir, killed_starting, cfg->train.init);
        } else if (had_lock)
            /* a source given, or none recorded: said all the same, so that a
             * fine-tune whose --init was left out is not found later to have
             * trained from random weights */
            snprintf(io->note, sizeof io->note, "%s holds no run.h5 and no checkpoint, only the lock of a run killed "
                     "before it wrote its log (an --init run killed in its PTQ evaluation, say; it was %s); starting "
                     "afresh %s%s", dir, killed_starting, cfg->train.init[0] ? "from train.init " : "from random "
                     "weights", cfg->train.init);
        goto fresh;
    }

    /* A checkpoint: continue it, but only as the run it was started as. */
    {
        qat_config *old = qat_xmalloc(sizeof *old);
        int64_t ck_step = 0;
        rc = read_ckpt_head(io->ckpt, old, &ck_step);
        if (!rc) rc = qat_runio_compare_configs(io->ckpt, old, cfg, init_from, &note);
        if (!rc && strcmp(old->train.init, cfg->train.init)) {
            /* the checkpoints this resume writes keep recording how the run began */
            io->own_cfg = qat_xmalloc(sizeof *io->own_cfg);
            *io->own_cfg = *cfg;
            memcpy(io->own_cfg->train.init, old->train.init, sizeof old->train.init);
            io->cfg = cfg = io->own_cfg;
        }
        /* the run's own budget, in steps (tokens and tokens_per_param are two
         * spellings of it) */
        int64_t old_steps = rc ? -1 : budget_steps(old, m);
        free(old);
        /* the data is compared only once the configs agree: a changed key is
         * reported as that key, not as the data it changes */
        if (!rc) rc = qat_runio_check_data(io->ckpt, io->data_crc, io->data_tokens);
        if (rc) goto unlock;
        if (completed && new_steps == ck_step && have_log) {
            io->completed = 1; /* nothing more to train; a finished run stays as it is */
            goto unlock;
        }
        /* A checkpoint at the run's own budget is a run with every step trained
         * whose final evaluation did not happen (a signal cut it short, or a
         * kill came first): the resume makes it and completes the run. A budget
         * changed to the checkpoint's step or below is refused (docs/config.md
         * #resuming): "completing" there would end the run short of the budget
         * it was started for, with a final evaluation at a step its schedule
         * never meant as the end, and ckpt.h5 still storing the old budget. */
        if (new_steps < ck_step || (new_steps == ck_step && new_steps != old_steps)) {
            int64_t bt = cfg->train.batch_tokens;
            char own[96] = "";
            if (old_steps > ck_step) /* a budget the run has not reached: giving it back finishes the run */
                snprintf(own, sizeof own, ", or its own budget of %lld tokens to finish it as it was started",
                         (long long)(old_steps * bt));
            rc = qat_fail(QAT_EINPUT, "%s: the checkpoint is at step %lld (%lld tokens), but the budget given now is "
                          "%lld steps (%.0f tokens), %s the checkpoint's step; a resume continues a run to a larger "
                          "budget: expected train.tokens (or tokens_per_param) of at least %lld tokens (one more step) "
                          "to continue%s", io->ckpt, (long long)ck_step, (long long)(ck_step * bt),
                          (long long)new_steps, tokens_target, new_steps == ck_step ? "at" : "below",
                          (long long)((ck_step + 1) * bt), own);
            goto unlock;
        }
        rc = qat_runio_load_checkpoint(io->ckpt, cfg, m, opt, start_step, wall_before);
        if (!rc) rc = qat_checkpoint_check_finite(io->ckpt, m, opt);
        if (rc) goto unlock;
        char *yaml = qat_config_to_yaml(cfg);
        char line[4096];
        if (!have_log) {
            /* run.h5 is gone but the checkpoint is not: never start over it.
             * A new log continues from the checkpoint; the rows before it are lost. */
            snprintf(line, sizeof line, "step %lld: run.h5 was missing; new log started from ckpt.h5%s%s",
                     (long long)*start_step, note ? "; " : "", note ? note : "");
            snprintf(io->note, sizeof io->note, "%s is missing; resuming from %s at step %lld with a new run log "
                     "(the series before that step are lost)%s%s", runpath, io->ckpt, (long long)*start_step,
                     note ? "; changed: " : "", note ? note : "");
            free(note);
            note = qat_xstrdup(line);
            free(yaml);
            goto fresh;
        }
        if (note) {
            snprintf(line, sizeof line, "step %lld: %s", (long long)*start_step, note);
            snprintf(io->note, sizeof io->note, "resuming %s at step %lld with %s (recorded in run.h5 attribute "
                     "resumes)", dir, (long long)*start_step, note);
        }
        rc = qat_runlog_resume_noted(runpath, *start_step - 1, note ? line : NULL, note ? yaml : NULL,
                                     note ? (int64_t)tokens_target : -1, lock_fd, &io->log);
        free(yaml);
        free(note);
        /* A run.h5 that cannot be opened (truncated, overwritten, damaged) holds the
         * series up to its damage, so it is never replaced here; the user is told the
         * way on that keeps the checkpoint's steps (writer.c's two messages). */
        if (rc && (strstr(qat_errmsg(), "not a readable HDF5 run log") || strstr(qat_errmsg(), "(the file is damaged)"))) {
            char msg[4096];
            snprintf(msg, sizeof msg, "%s", qat_errmsg());
            rc = qat_fail(rc, "%s; to continue from %s at step %lld, move %s aside and --resume again (a new run log "
                          "is started; the series before that step stay in the file moved aside)",
                          msg, io->ckpt, (long long)*start_step, runpath);
        }
        return rc; /* the lock is the log's now, or released on failure */
    }

fresh: {
    /* a fresh run (also when --resume finds nothing to resume) */
    char *yaml = qat_config_to_yaml(cfg);
    double gw = NAN, ga = NAN, rho_w = NAN, rho_a = NAN;
    qat_cap_params pub[QAT_CAP_NTYPES] = {QAT_CAP_PUBLISHED, QAT_CAP_PUBLISHED, QAT_CAP_PUBLISHED};
    const char *wf = qat_model_weight_format(m), *af = qat_model_act_format(m);
    qat_fmt_est ew, ea; /* GMSE and ρ of one estimate each, as `qat capacity` prints them */
    if (!qat_fmt_estimate(wf, 0, 0, pub, &ew)) gw = ew.gmse, rho_w = ew.rho;
    if (!qat_fmt_estimate(af, 0, 0, pub, &ea)) ga = ea.gmse, rho_a = ea.rho;
    qat_clear_error();
    qat_runlog_attrs at = {
        .name = cfg->name, .config_yaml = yaml, .seed = cfg->seed,
        .n_params = m->n_params, .n_params_total = m->n_total, .tokens_target = (int64_t)tokens_target,
        .weight_format = wf, .act_format = af, .estimator = qat_model_estimator(m),
        .gmse_w = gw, .gmse_a = ga, .rho_pred = rho_w * rho_a,
        .grad_format = cfg->gradients.format, .grad_rounding = cfg->gradients.rounding,
        .grad_hadamard = cfg->gradients.hadamard,
        .precision = m->bf16 ? "bf16" : "fp32", .resumes = note,
    };
    /* said in the lock until run.h5 exists: a kill in between (the PTQ
     * evaluation) leaves it for the next --resume to report */
    char starting[QAT_PATH_MAX + 32];
    snprintf(starting, sizeof starting, "starting%s%s", cfg->train.init[0] ? " from train.init " : "", cfg->train.init);
    qat_runlog_lock_say(lock_fd, starting);
    if (at_start && *start_step == 0 && (rc = at_start(start_ctx, cfg, &at))) {
        free(yaml);
        qat_runlog_lock_say(lock_fd, NULL);
        goto unlock;
    }
    rc = qat_runlog_create_locked(runpath, &at, lock_fd, &io->log);
    if (!rc) qat_runlog_lock_say(lock_fd, NULL);
    free(yaml);
    free(note);
    return rc;
}
unlock:
    free(note);
    qat_runlog_unlock(lock_fd);
    return rc;
}

void qat_runio_train(qat_runio *io, int64_t step, double tokens, double loss, double lr, double gnorm, double time_s) {
    if (io->log) qat_runlog_train(io->log, step, (int64_t)tokens, loss, lr, gnorm, time_s);
}

void qat_runio_eval(qat_runio *io, int64_t step, double tokens, double loss) {
    if (io->log) qat_runlog_eval(io->log, step, (int64_t)tokens, loss);
}

int qat_runio_flush(qat_runio *io) { return io->log ? qat_runlog_flush(io->log) : QAT_OK; }

int qat_runio_checkpoint(qat_runio *io, int64_t steps_done, double tokens, double wall_s) {
    QAT_TRY(qat_runio_flush(io));
    ckpt_list l = {0};
    build_list(io->model, io->opt, &l);
    char *yaml = qat_config_to_yaml(io->cfg);
    qat_ckpt ck;
    memset(&ck, 0, sizeof ck);
    fill_attrs(io->cfg, io->model, &ck.attrs, yaml);
    ck.arrays = l.arr;
    ck.n_arrays = l.n;
    ck.state.step = steps_done;
    ck.state.tokens = (int64_t)tokens;
    ck.state.data_pos = steps_done;
    qat_ckpt_state_set_int(&ck.state, "adam_t", io->opt ? io->opt->t : 0);
    if (io->data_tokens > 0) {
        qat_ckpt_state_set_int(&ck.state, "data_crc32", io->data_crc);
        qat_ckpt_state_set_int(&ck.state, "data_tokens", io->data_tokens);
    }
    qat_ckpt_state_set_real(&ck.state, "wall_s", wall_s);
    int rc = qat_ckpt_write(io->ckpt, &ck);
    free(yaml);
    list_free(&l);
    return rc;
}

int qat_runio_finish(qat_runio *io, const char *status, double val_loss, double train_loss, double tokens,
                     int64_t steps, double wall_s) {
    if (!io->log) return QAT_OK;
    int st = qat_run_status_parse(status);
    QAT_ASSERT(st >= 0);
    qat_runlog_final fin = {val_loss, train_loss, (int64_t)tokens, steps, wall_s};
    return qat_runlog_finish(io->log, (qat_run_status)st, &fin);
}

void qat_runio_fail(qat_runio *io) {
    if (!io->log || qat_runlog_is_finished(io->log)) return;
    char saved[4096];
    snprintf(saved, sizeof saved, "%s", qat_errmsg());
    (void)qat_runlog_finish(io->log, QAT_RUN_FAILED, NULL);
    qat_fail(QAT_ERUNTIME, "%s", saved);
}

void qat_runio_close(qat_runio *io) {
    if (io->log) qat_runlog_close(io->log);
    io->log = NULL;
    free(io->own_cfg);
    io->own_cfg = NULL;
}
