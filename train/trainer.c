/*
 * train/trainer.c — the training loop.
 *
 * Concerns handled here and nowhere else: turning the config into a plan
 * (batch, steps), the order of operations within a step, when to log, evaluate
 * and checkpoint, divergence, and interruption. The run log and checkpoint
 * formats live in runlog/; this file only decides what goes into them.
 */
#include "trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "autograd/tape.h"
#include "compress/format.h"
#include "compress/quantizer.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/stop.h"
#include "core/threads.h"
#include "data/dataset.h"
#include "model/llama.h"
#include "optim/adamw.h"
#include "optim/schedule.h"
#include "init.h"
#include "progress.h"
#include "runio.h"

/* The "compress:" line of the run's header: each side's format by the name the
 * run log records, with its own estimator next to it (one estimator after both
 * formats read as the activations' while it was the weights'), and, when a
 * block format carries an @hB its config did not ask for, why: both operands of
 * a product share one Hadamard basis, so a side on hadamard: -1 is rotated by
 * the block the other side rotates with (docs/formats.md, "@hB and
 * compress.*.hadamard"); the name says it because the rotation is applied. */
static const char *describe_compress(const qat_config *cfg, const qat_model *m, char *buf, size_t n) {
    const qat_compress_side *side[2] = {&cfg->weights, &cfg->activations};
    const char *key[2] = {"compress.weights", "compress.activations"}, *other[2] = {"activations", "weights"};
    struct qat_quantizer *q[2] = {m->blocks[0].qw[0], m->blocks[0].qa[0]};
    size_t l = (size_t)snprintf(buf, n, "weights %s (estimator %s), activations %s (estimator %s)",
                                qat_quantizer_format(q[0]), qat_quantizer_estimator(q[0]), qat_quantizer_format(q[1]),
                                qat_quantizer_estimator(q[1]));
    for (int i = 0; i < 2 && l < n; i++) {
        qat_fmt asked, now;
        if (qat_fmt_parse(side[i]->format, &asked) || qat_fmt_parse(qat_quantizer_format(q[i]), &now)) {
            qat_clear_error();
            continue;
        }
        if (asked.had || side[i]->hadamard >= 0 || !now.had) continue; /* the user's own block, or none */
        const qat_compress_side *o = side[1 - i];
        qat_fmt of;
        int other_auto = !qat_fmt_parse(o->format, &of) && !of.had && o->hadamard < 0;
        qat_clear_error();
        l += (size_t)snprintf(buf + l, n - l, "; %s %s is rotated by Hadamard block %d (hence @h%d) because the %s "
                              "rotate by %d: both operands of a product share one basis%s%s%s", key[i], side[i]->format,
                              now.had, now.had, other[i], now.had, other_auto ? " (" : "", other_auto ? key[1 - i] : "",
                              other_auto ? ".hadamard: 0 rotates neither)" : "");
    }
    return buf;
}

/* Whether the step (0-based) of a run of `steps` ends with an evaluation: every
 * eval_every steps, and the last. */
static int eval_due(const qat_train_cfg *t, int64_t step, int64_t steps) {
    return step + 1 == steps || (t->eval_every > 0 && (step + 1) % t->eval_every == 0);
}

int qat_train_plan(const qat_config *cfg, int64_t n_params, int seq_len, qat_run_plan *plan) {
    const qat_train_cfg *t = &cfg->train;
    /* Whole sequences per step: qat_config_validate refused any other batch_tokens. */
    QAT_ASSERT(seq_len == cfg->model.seq_len && seq_len > 0);
    QAT_ASSERT(t->batch_tokens >= seq_len && t->batch_tokens % seq_len == 0);
    plan->batch = t->batch_tokens / seq_len;
    double tokens = t->tokens > 0 ? t->tokens : t->tokens_per_param * (double)n_params;
    /* checks between keys point at the later of them, like the loader's (docs/config.md) */
    char pos[QAT_PATH_MAX + 96];
    const char *kb[] = {"train.tokens", "train.tokens_per_param", NULL};
    if (!(tokens > 0))
        return qat_fail(QAT_EINPUT, "%s: set train.tokens or train.tokens_per_param to a positive number",
                        qat_config_where_last(cfg, kb, pos, sizeof pos));
    /* Range-check before the budget becomes a count: the key table bounds each
     * key to QAT_MAX_TOKENS, past which doubles no longer count tokens exactly,
     * but tokens_per_param · N, and rounding up to whole steps, can still pass
     * it. The tokens trained are ceil(D / batch) · batch, so the largest budget
     * is the largest whole number of steps within the bound: QAT_MAX_TOKENS
     * itself when batch_tokens divides it (any power of two does). */
    double bt = (double)t->batch_tokens, max_ok = floor(QAT_MAX_TOKENS / bt) * bt;
    int fits = tokens <= QAT_MAX_TOKENS && ceil(tokens / bt) * bt <= QAT_MAX_TOKENS;
    const char *kp[] = {"train.tokens_per_param", "train.batch_tokens", "model", NULL},
               *kt[] = {"train.tokens", "train.batch_tokens", NULL};
    if (t->tokens <= 0 && !fits)
        return qat_fail(QAT_EINPUT, "%s: train.tokens_per_param = %g gives %.4g training tokens for N = %lld, "
                        "more than the largest budget %.0f; expected train.tokens_per_param <= %.6g",
                        qat_config_where_last(cfg, kp, pos, sizeof pos), t->tokens_per_param, tokens, (long long)n_params, max_ok,
                        floor(max_ok / (double)n_params * 1e6) / 1e6);
    if (!fits)
        return qat_fail(QAT_EINPUT, "%s: train.tokens = %.17g is too large for whole steps of %d tokens; expected "
                        "train.tokens <= %.0f", qat_config_where_last(cfg, kt, pos, sizeof pos), tokens, t->batch_tokens, max_ok);
    plan->steps = (int64_t)ceil(tokens / (double)t->batch_tokens);
    if (plan->steps < 1) plan->steps = 1;
    plan->tokens = (double)plan->steps * t->batch_tokens;
    return QAT_OK;
}

/* Mean validation loss over about `tokens` held-out tokens (at least one batch),
 * stopping between batches once *stop is set: an evaluation of millions of
 * tokens takes seconds to minutes, and a SIGINT must not wait for it. */
int qat_train_evaluate_until(qat_model *m, qat_tape *tp, const qat_dataset *ds, int B, int64_t tokens,
                             int32_t *in, int32_t *tg, int64_t step, const volatile sig_atomic_t *stop, double *loss) {
    int64_t T = m->s.seq_len;
    int64_t nb = tokens / (B * T);
    int64_t avail = qat_dataset_val_batches(ds, B);
    if (nb < 1) nb = 1;
    if (nb > avail) nb = avail;
    int saved = tp->grad_enabled;
    tp->grad_enabled = 0;
    double sum = 0;
    int64_t i = 0;
    for (; i < nb && !(stop && *stop); i++) {
        qat_dataset_val_batch(ds, i, B, in, tg);
        qat_tape_reset(tp);
        sum += qat_model_forward(m, tp, in, tg, B, step)->data[0];
    }
    tp->grad_enabled = saved;
    if (i < nb) return 0;
    *loss = sum / (double)nb;
    return 1;
}

double qat_train_evaluate(qat_model *m, qat_tape *tp, const qat_dataset *ds, int B, int64_t tokens,
                          int32_t *in, int32_t *tg, int64_t step) {
    double loss = NAN;
    qat_train_evaluate_until(m, tp, ds, B, tokens, in, tg, step, NULL, &loss);
    return loss;
}

/* A run whose model cannot fit in the machine's memory is refused before
 * anything is allocated: it would otherwise die part-way, out of memory, after
 * minutes of setup, or swap the machine to a halt. The estimate is a lower
 * bound, so a run it lets through may still need more, and a run it refuses
 * could not have fit: 16 bytes per parameter (every float of the model,
 * embeddings and head included: the weight, its gradient, AdamW's two moments)
 * and the tape of one step over train.batch_tokens tokens
 * (qat_model_step_bytes). Not counted: the corpus, quantizer masks and
 * scratch, the evaluation's buffers, oneDNN's workspaces. Physical memory, not
 * what is free: whether other processes make room is the kernel's business. */
static const char *bytes_text(double b, char *buf, size_t n) {
    const double M = 1024.0 * 1024.0;
    if (b < 1024 * M) snprintf(buf, n, "%.0f MiB", b / M);
    else if (b < 1024 * 1024 * M) snprintf(buf, n, "%.1f GiB", b / (1024 * M));
    else snprintf(buf, n, "%.1f TiB", b / (1024 * 1024 * M));
    return buf;
}

static int check_memory(const qat_config *cfg, const qat_model_shape *s, int64_t batch_tokens) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) return QAT_OK; /* unknown: no refusal */
    double machine = (double)pages * (double)page;
    double n_total = (double)qat_model_count_params(s) + 2.0 * s->vocab * s->dim; /* + embedding and head */
    double state = 16.0 * n_total, acts = qat_model_step_bytes(s, batch_tokens);
    if (state + acts <= machine) return QAT_OK;
    char need[32], have[32], st[32], ac[32];
    return qat_fail(QAT_ERUNTIME, "%s: the run needs at least %s of memory and this machine has %s: %s for %.4g "
                    "parameters (model.layers %d, model.dim %d, model.hidden %d, model.vocab %d; 16 bytes each: "
                    "weight, gradient, two AdamW moments) and %s for one step's activations (train.batch_tokens %lld); "
                    "expected a smaller model or train.batch_tokens", qat_config_source(cfg),
                    bytes_text(state + acts, need, sizeof need), bytes_text(machine, have, sizeof have),
                    bytes_text(state, st, sizeof st), n_total, s->layers, s->dim, s->hidden, s->vocab,
                    bytes_text(acts, ac, sizeof ac), (long long)batch_tokens);
}

int qat_train_validate(const qat_config *cfg) {
    qat_model_shape shape;
    QAT_TRY(qat_model_shape_from_config(cfg, &shape));
    qat_run_plan plan;
    QAT_TRY(qat_train_plan(cfg, qat_model_count_params(&shape), shape.seq_len, &plan));
    /* formats and estimators against the widths, without building the model
     * (a one-layer model was 206 GB at dim 65536): --print-config and a sweep's
     * plan validate any size the keys allow */
    return qat_model_check(cfg, &shape);
}

/* What the start hook of qat_runio_open needs to evaluate an --init run's
 * starting point (train/init.h) under the run's lock, before run.h5 exists. */
typedef struct {
    qat_init *init;           /* the source, once loaded */
    const qat_config *given;  /* the config given (its train.init is --init or the key) */
    int from_key;             /* 1: the given train.init is the key, not --init (messages name the key) */
    const char *dir;          /* the run directory (messages about a source the log recorded) */
    qat_model *m;
    qat_tape *tp;
    const qat_dataset *ds;
    int B;
    int32_t *in, *tg;         /* (B, T) scratch */
    int loaded;               /* 1: *init was read before the run directory was made */
    int applied;              /* 1 once the run started from it */
    int stopped;              /* 1: a signal came before the start was evaluated (run.h5 records the source) */
    const volatile sig_atomic_t *stop; /* SIGINT/SIGTERM seen: the evaluations stop between batches */
} init_ctx;

/* Read the source src into c->init for the run of config cfg. Its messages say
 * --init; when the user wrote the key, or the source is the one an unfinished
 * run.h5 recorded (a --resume that named none), they say that instead. */
static int load_init(init_ctx *c, const char *src, const qat_config *cfg) {
    int rc = qat_init_load(c->init, src, cfg, c->m);
    int recorded = !c->given->train.init[0];
    if (rc && (c->from_key || recorded)) {
        char msg[4096], pos[QAT_PATH_MAX + 96];
        snprintf(msg, sizeof msg, "%s", qat_errmsg());
        const char *body = strncmp(msg, "--init ", 7) ? msg : msg + 7;
        if (recorded)
            rc = qat_fail(rc, "%s/run.h5 records train.init (the run began from that checkpoint): %s; restore it, "
                          "or start the run afresh without --resume", c->dir, body);
        else
            rc = qat_fail(rc, "%s: train.init: %s", qat_config_where(c->given, "train.init", pos, sizeof pos), body);
    }
    if (!rc) c->loaded = 1;
    return rc;
}

static int init_at_start(void *p, const qat_config *cfg, qat_runlog_attrs *at) {
    init_ctx *c = p;
    /* the source is cfg's: the one given, or the one run.h5 recorded for a
     * --resume that gave none (train/runio.h); none: a random start */
    if (!c->loaded && !cfg->train.init[0]) return QAT_OK;
    if (!c->loaded) QAT_TRY(load_init(c, cfg->train.init, cfg));
    QAT_TRY(qat_init_evaluate(c->init, cfg, c->m, c->tp, c->ds, c->B, c->in, c->tg, c->stop));
    /* stopped in the PTQ evaluation: run.h5 is still created, without the
     * init_* attributes (nothing was measured), so that its config records
     * train.init and --resume starts from the source again, --init or not */
    if (*c->stop) {
        c->stopped = 1;
        return QAT_OK;
    }
    at->init_from = c->init->abspath;
    at->init_hash = c->init->hash;
    at->init_state = qat_init_state(c->init);
    at->init_state_weights = qat_init_side_state(c->init, 1);
    at->init_state_activations = qat_init_side_state(c->init, 0);
    at->init_ptq_loss = c->init->ptq_loss;
    at->init_source_loss = c->init->source_loss;
    c->applied = 1;
    return QAT_OK;
}

int qat_train_run(const qat_config *cfg, const qat_train_opts *opts) {
    /* SIGINT and SIGTERM stop the run from here if `qat train` has not caught them
     * already (it does before reading the config: core/stop.h), so that a signal in
     * the setup (reading the corpus, building the model: seconds with vq codebooks
     * or pv) stops the run as one during training does. SIGPIPE too: `qat train cfg
     * | head` killed the run at its next progress line, losing the steps since its
     * last checkpoint; now the run stops as on Ctrl-C, checkpoint written, and the
     * write itself fails with EPIPE. They stay caught after the run: a signal while
     * the log closes must not kill the process half-way, and the messages still to
     * come (the error on stderr, the last buffered stdout) would meet the same
     * closed pipe, where SIGPIPE's default would turn the exit 1 into a death. */
    qat_stop_catch(QAT_STOP_PIPE);
    const volatile sig_atomic_t *stop = qat_stop_flag();
    int rc;
    int nthreads = qat_threads_init(cfg->threads);

    qat_model_shape shape;
    QAT_TRY(qat_model_shape_from_config(cfg, &shape));
    qat_run_plan plan;
    QAT_TRY(qat_train_plan(cfg, qat_model_count_params(&shape), shape.seq_len, &plan));
    int B = plan.batch;
    int64_t T = shape.seq_len;
    QAT_TRY(check_memory(cfg, &shape, (int64_t)B * T));

    /* stopped while the config was read and checked: nothing is set up yet, and
     * nothing need be (the corpus and the model can take seconds) */
    if (*stop)
        return qat_fail(QAT_ERUNTIME, "interrupted before step 1 (before the setup); nothing written, nothing "
                        "trained: run the same command again");
    qat_dataset *ds = NULL;
    qat_model *m = NULL;
    rc = qat_dataset_open(&cfg->data, shape.vocab, shape.seq_len, plan.tokens, cfg->seed, &ds);
    if (!rc) rc = qat_model_create(cfg, &shape, B, &m);
    if (rc) {
        qat_dataset_free(ds);
        return rc;
    }
    qat_adamw opt;
    qat_adamw_init(&opt, m->views, m->n_views, &cfg->train);
    qat_tape tp;
    qat_tape_init(&tp, 0);
    int32_t *in = qat_xmalloc((size_t)B * T * sizeof(int32_t));
    int32_t *tg = qat_xmalloc((size_t)B * T * sizeof(int32_t));

    char dir[QAT_PATH_MAX * 2];
    snprintf(dir, sizeof dir, "%s/%s", opts->out_dir ? opts->out_dir : "runs", cfg->name);
    qat_runio io;
    memset(&io, 0, sizeof io); /* closed on every exit path, even before it opens */
    qat_config *recorded = NULL; /* cfg with its train.init made absolute (below), or NULL */
    int64_t start = 0;
    double wall_before = 0;
    /* --init is read and checked before anything is created: a wrong file or a
     * mismatched tensor leaves no run directory behind. When a checkpoint is
     * resumed instead, it overwrites every array read here. */
    qat_init init;
    memset(&init, 0, sizeof init);
    init_ctx ictx = {&init, cfg, opts->init_from_key, dir, m, &tp, ds, B, in, tg, 0, 0, 0, stop};
    /* A resume with a checkpoint continues from it, which holds everything: the
     * source, only read at step 0, may have moved since, and is not opened. Should
     * the run start at step 0 after all (the checkpoint vanished), it is read then. */
    char ckpath[sizeof dir + 16];
    snprintf(ckpath, sizeof ckpath, "%s/ckpt.h5", dir);
    if (opts->init && !(opts->resume && access(ckpath, F_OK) == 0) && (rc = load_init(&ictx, opts->init, cfg)))
        goto done;
    rc = qat_mkdirs(dir);
    /* the data's fingerprint goes into every checkpoint; a resume must find the same */
    uint32_t data_crc = qat_dataset_fingerprint(ds);
    int64_t data_tokens = data_crc ? qat_dataset_train_tokens(ds) + qat_dataset_val_tokens(ds) : 0;
    /* the data is checked against a resumed checkpoint's once the configs agree
     * (train/runio.h); the hook always, since a --resume without --init may start
     * from the source an unfinished run.h5 records */
    /* the run records its source absolute (run.h5's config, every checkpoint), so
     * that a --resume from another directory finds, or compares with, the same
     * file: `src.h5` read from elsewhere would be another one, or none */
    const qat_config *run_cfg = cfg;
    if (cfg->train.init[0] && cfg->train.init[0] != '/') {
        recorded = qat_xmalloc(sizeof *recorded);
        *recorded = *cfg;
        if (!qat_runio_absolute_init(cfg->train.init, recorded->train.init, sizeof recorded->train.init))
            run_cfg = recorded;
    }
    if (!rc) rc = qat_runio_open(&io, dir, run_cfg, m, &opt, opts->resume, plan.tokens, data_crc, data_tokens, &start,
                                 &wall_before, init_at_start, &ictx);
    if (rc) goto done;
    /* What opening decided about what was on disk is said even with --quiet:
     * a run started afresh or a log recreated is not something to find out later. */
    if (io.note[0]) fprintf(stderr, "qat: note: %s\n", io.note);
    if (opts->init && !ictx.applied && !ictx.stopped)
        fprintf(stderr, "qat: note: %s %s not applied: %s %s (it sets the weights of a run at step 0 only)\n",
                opts->init_from_key ? "train.init" : "--init", opts->init, dir,
                io.completed ? "is a completed run" : "resumes from its checkpoint");
    if (io.completed) {
        if (opts->progress >= 0)
            printf("qat train %s: already completed (validation loss %.4f); nothing to resume in %s\n", cfg->name,
                   io.completed_val_loss, dir);
        goto done;
    }

    double flops_step = 3.0 * qat_model_flops_per_token(&shape) * (double)B * T;
    int show = opts->progress;
    if (show >= 0) {
        printf("qat train %s: N = %lld non-embedding (%lld total), %.3g FLOP/token, %lld steps × %d×%lld tokens = %.4g tokens, %d threads\n",
               cfg->name, (long long)m->n_params, (long long)m->n_total, qat_model_flops_per_token(&shape) * 3,
               (long long)plan.steps, B, (long long)T, plan.tokens, nthreads);
        printf("  data: %s\n", qat_dataset_describe(ds));
        if (qat_gradq_on(&m->gq)) { /* the quantized backward (compress.gradients) */
            char gdesc[96];
            qat_gradq_describe(&m->gq, gdesc, sizeof gdesc);
            printf("  backward: %s\n", gdesc);
        }
        char cdesc[640];
        printf("  compress: %s\n", describe_compress(cfg, m, cdesc, sizeof cdesc));
        if (start > 0) printf("  resumed from %s/ckpt.h5 at step %lld\n", dir, (long long)start);
        if (ictx.applied) {
            printf("  init: %s (%s; %.23s...), PTQ loss %.4f on held-out through %s/%s (source %.4f through %s)\n",
                   init.path, init.source, init.hash, init.ptq_loss, qat_model_weight_format(m),
                   qat_model_act_format(m), init.source_loss, init.source_formats);
            char sdesc[1024];
            qat_init_describe_state(&init, "\n  init: ", sdesc, sizeof sdesc);
            printf("  init: %s\n", sdesc);
            if (init.n_searched)
                printf("  init: LSQ weight steps by per-row MSE search (%d tensors): squared error %.3gx the default "
                       "step's\n", init.n_searched, init.mse_default > 0 ? init.mse_best / init.mse_default : 1.0);
            if (init.n_fitted)
                printf("  init: aq codebooks by k-means (%d tensors): squared error %.3g of the weights'\n",
                       init.n_fitted, init.fit_norm > 0 ? init.fit_err / init.fit_norm : 0.0);
        }
        printf("  log: %s/run.h5\n", dir);
        fflush(stdout);
    }

    qat_progress prog;
    qat_progress_init(&prog, show, plan.steps, start);
    double t0 = qat_now_s(), last_loss = NAN, last_eval = NAN;
    const qat_train_cfg *tc = &cfg->train;
    int64_t step = start;
    if (*stop) { /* during the setup: nothing trained, nothing to checkpoint */
        if (show >= 0) printf("qat train %s: stopped before step %lld of %lld; continue with --resume\n", cfg->name,
                              (long long)(start + 1), (long long)plan.steps);
        if (ictx.stopped) /* run.h5 records the source: --resume alone starts from it */
            rc = qat_fail(QAT_ERUNTIME, "interrupted before step 1 (while setting up: evaluating the --init start); "
                          "nothing trained, %s/run.h5 records train.init %s: continue with --resume (which starts "
                          "from it again, --init or not)", dir, io.cfg->train.init);
        else
            rc = qat_fail(QAT_ERUNTIME, "interrupted before step %lld (while setting up); nothing trained since %s, "
                          "continue with --resume", (long long)(start + 1), start ? "the checkpoint" : "the start");
        goto done;
    }
    /* A resume whose checkpoint came after a step that was due an evaluation the
     * log does not have (a signal cut it short, or the run was killed between
     * the checkpoint and it): made first, so that the run's evaluations and its
     * final loss are those of a run never stopped. Above all the final one: a
     * run with every step trained is not complete until it is evaluated. */
    if (start > 0 && eval_due(tc, start - 1, plan.steps)) {
        double at = -1;
        if (!qat_runlog_last(io.log, 1, "step", &at) || at != (double)(start - 1)) {
            if (!qat_train_evaluate_until(m, &tp, ds, B, tc->eval_tokens, in, tg, start - 1, stop,
                                          &last_eval)) {
                if (show >= 0) printf("qat train %s: stopped in the evaluation after step %lld; continue with --resume\n",
                                      cfg->name, (long long)start);
                rc = qat_fail(QAT_ERUNTIME, "interrupted in the evaluation after step %lld; the checkpoint is kept, "
                              "continue with --resume", (long long)start);
                goto done;
            }
            qat_runio_eval(&io, start - 1, (double)start * B * T, last_eval);
            if ((rc = qat_runio_flush(&io))) goto io_failed;
        }
    }
    for (; step < plan.steps; step++) {
        double lr = qat_lr_at(tc, step, plan.steps);
        qat_dataset_train_batch(ds, step, B, in, tg);
        qat_tape_reset(&tp);
        qat_model_zero_grad(m, tp.epoch);
        qat_tensor *loss = qat_model_forward(m, &tp, in, tg, B, step);
        double lv = loss->data[0];
        qat_tape_backward(&tp, loss);
        double gnorm = qat_clip_grad_norm(m->views, m->n_views, tc->grad_clip);
        if (!isfinite(lv) || !isfinite(gnorm)) {
            qat_runio_train(&io, step, (double)(step + 1) * B * T, lv, lr, gnorm, wall_before + qat_now_s() - t0);
            qat_runio_finish(&io, "diverged", NAN, lv, (double)step * B * T, step, wall_before + qat_now_s() - t0);
            qat_progress_end(&prog);
            char kept[QAT_PATH_MAX * 2 + 64];
            if (access(io.ckpt, F_OK) == 0) snprintf(kept, sizeof kept, "the last good checkpoint is kept in %s", io.ckpt);
            else snprintf(kept, sizeof kept, "no checkpoint had been written yet");
            /* Advise by the likely cause: decoupled decay multiplies the weights by
             * 1 − lr·weight_decay each step, so a huge decay (1e6) diverges at any lr,
             * and "lower train.lr" was the wrong advice for it. */
            char advice[320];
            int wd_bad = tc->weight_decay > 1 && tc->lr * tc->weight_decay > 0.1, lr_bad = tc->lr > 0.1;
            if (wd_bad)
                snprintf(advice, sizeof advice, "train.weight_decay = %g is the likely cause%s: each step scales the "
                         "weights by 1 - lr*weight_decay = %.3g at the peak lr; use a weight_decay well below "
                         "1/train.lr (typically 0.1)", tc->weight_decay, lr_bad ? " (and train.lr is high too)" : "",
                         1.0 - tc->lr * tc->weight_decay);
            else if (lr_bad)
                snprintf(advice, sizeof advice, "train.lr = %g is the likely cause (AdamW usually wants 1e-4 to "
                         "1e-2); try a lower train.lr", tc->lr);
            else
                snprintf(advice, sizeof advice, "likely causes: train.lr too high (now %g), %s, or a format too coarse "
                         "for the model", tc->lr, tc->grad_clip > 0 ? "train.grad_clip too loose" :
                         "no gradient clipping (train.grad_clip: 0)");
            rc = qat_fail(QAT_ERUNTIME, "%s: %s at step %lld (lr %.3g): run diverged; %s; %s",
                          cfg->name, isfinite(lv) ? "the gradient norm became non-finite" : "the loss became non-finite",
                          (long long)step, lr, kept, advice);
            goto done;
        }
        qat_adamw_step(&opt, lr);
        qat_model_after_step(m, step);
        last_loss = lv;
        double tokens_done = (double)(step + 1) * B * T;
        double elapsed = qat_now_s() - t0;
        qat_runio_train(&io, step, tokens_done, lv, lr, gnorm, wall_before + elapsed);

        int last = step + 1 == plan.steps;
        int do_eval = eval_due(tc, step, plan.steps), eval_cut = 0;
        if (do_eval) {
            /* cut short by a signal: not recorded; the checkpoint below is, and a
             * resume makes this evaluation first */
            eval_cut = !qat_train_evaluate_until(m, &tp, ds, B, tc->eval_tokens, in, tg, step, stop, &last_eval);
            if (eval_cut) do_eval = 0, last_eval = NAN;
            else qat_runio_eval(&io, step, tokens_done, last_eval);
        }
        int stop_now = *stop || (opts->stop_after > 0 && step + 1 - start >= opts->stop_after);
        if (last || stop_now || (tc->log_every > 0 && (step + 1) % tc->log_every == 0)) {
            qat_progress_update(&prog, step + 1, lv, lr, elapsed, (double)B * T, flops_step, do_eval ? last_eval : NAN);
            if ((rc = qat_runio_flush(&io))) goto io_failed;
        } else if (do_eval) {
            qat_progress_update(&prog, step + 1, lv, lr, elapsed, (double)B * T, flops_step, last_eval);
        }
        if (last || stop_now || (tc->checkpoint_every > 0 && (step + 1) % tc->checkpoint_every == 0)) {
            if ((rc = qat_runio_checkpoint(&io, step + 1, tokens_done, wall_before + qat_now_s() - t0))) goto io_failed;
        }
        if (stop_now && (!last || eval_cut)) {
            qat_progress_end(&prog);
            if (show >= 0) printf("qat train %s: stopped at step %lld of %lld%s; continue with --resume\n",
                                  cfg->name, (long long)(step + 1), (long long)plan.steps,
                                  eval_cut ? " (in its evaluation)" : "");
            rc = *stop ? QAT_ERUNTIME : QAT_OK;
            if (*stop) qat_fail(QAT_ERUNTIME, "interrupted at step %lld%s; checkpoint written, continue with --resume",
                                        (long long)(step + 1), eval_cut ? " in its evaluation" : "");
            goto done;
        }
    }
    qat_progress_end(&prog);
    /* a resume with every step trained before: the last losses are the log's */
    double v;
    if (!isfinite(last_loss) && qat_runlog_last(io.log, 0, "loss", &v)) last_loss = v;
    if (!isfinite(last_eval) && qat_runlog_last(io.log, 1, "loss", &v)) last_eval = v;
    {
        double wall = wall_before + qat_now_s() - t0;
        rc = qat_runio_finish(&io, "completed", last_eval, last_loss, plan.tokens, plan.steps, wall);
        if (rc) goto io_failed;
        if (show >= 0) {
            double ent = qat_dataset_entropy_rate(ds);
            printf("qat train %s: done in %.1f s; final train loss %.4f, validation loss %.4f nats/token",
                   cfg->name, wall, last_loss, last_eval);
            if (isfinite(ent)) printf(" (corpus entropy rate %.4f, unigram %.4f)", ent, qat_dataset_unigram_entropy(ds));
            printf("\n  log: %s/run.h5  checkpoint: %s/ckpt.h5\n", dir, dir);
        }
    }
    goto done;
io_failed:
    /* A runtime error with the log open (a flush, a checkpoint or the end could
     * not be written): say so in run.h5. An interrupted run (SIGINT/SIGTERM,
     * checkpoint written) does not come here and keeps `running`, which is what
     * tells `qat sweep` and --resume to continue it. */
    qat_progress_end(&prog);
    qat_runio_fail(&io);
done:
    free(recorded);
    qat_init_free(&init);
    qat_runio_close(&io);
    free(in);
    free(tg);
    qat_tape_free(&tp);
    qat_adamw_free(&opt);
    qat_model_free(m);
    qat_dataset_free(ds);
    return rc;
}
