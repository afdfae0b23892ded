/*
 * train/grads.c — `qat grads`: the gradients of one fixed batch, to a file.
 *
 * For cross-checking qat against another implementation (same weights, same
 * batch → same gradients) and for QuEST's gradient-alignment analysis:
 * `--compare FORMAT` recomputes the gradients with FORMAT on weights and
 * activations at the same latent weights and reports, per tensor, the cosine
 * between the two gradients (1 = the compressed backward points the same way).
 * `--compare-backward FORMAT` keeps the forward and swaps only the backward scheme
 * (compress.gradients.format; fp32 = the unquantized backward), which shows how far
 * a quantized backward turns the gradient (docs/formats.md "The backward pass").
 *
 * Output (docs/cli.md): /grads/NAME float32 (names of docs/files.md), /batch/inputs and
 * /batch/targets int32 [B, T], /loss; root attributes weight_format,
 * act_format, estimator, grad_format, grad_rounding, grad_hadamard; with --compare
 * also /compare/loss, /compare/cosine/NAME and the attribute compare_format (with
 * --compare-backward: compare_backward instead). Written like every qat output (core/fsutil.h):
 * never over an input or a non-regular file, through a temporary renamed into
 * place, every dataset checksummed (runlog/h5util.h).
 */
#include <glob.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/tape.h"
#include "compress/format.h"
#include "compress/quantizer.h"
#include "train_cli.h"
#include "core/config.h"
#include "core/error.h"
#include "core/num.h"
#include "core/fsutil.h"
#include "core/threads.h"
#include "data/dataset.h"
#include "model/llama.h"
#include "init.h"
#include "runio.h"
#include "runlog/h5util.h"

static const char GRADS_HELP[] =
    "usage: qat grads CONFIG.yaml|--checkpoint CKPT.h5 --out GRADS.h5 [--compare FORMAT | --compare-backward FORMAT]\n"
    "                 [--set key=value]...\n"
    "\n"
    "Gradients of one fixed batch (the first training batch of the run's data and seed).\n"
    "  --checkpoint CKPT.h5  take weights and config from a checkpoint (else CONFIG's run at step 0: a fresh\n"
    "                        init, or the weights of its train.init checkpoint, as qat train starts)\n"
    "  --out GRADS.h5        output file: /grads/NAME, /batch/inputs, /batch/targets, /loss\n"
    "  --compare FORMAT      also compute gradients with FORMAT on weights and activations at the same\n"
    "                        weights, and report the per-tensor cosine alignment\n"
    "  --compare-backward FORMAT  the same with only compress.gradients.format replaced (fp32 = the\n"
    "                        unquantized backward): the cosine between the two backward schemes\n";

/* Loss and gradients of one batch; grads land in m->grads. */
static double batch_grads(qat_model *m, const int32_t *in, const int32_t *tg, int B) {
    qat_tape tp;
    qat_tape_init(&tp, 0);
    qat_tape_reset(&tp);
    qat_model_zero_grad(m, tp.epoch);
    qat_tensor *loss = qat_model_forward(m, &tp, in, tg, B, 0);
    double l = loss->data[0];
    qat_tape_backward(&tp, loss);
    qat_tape_free(&tp);
    return l;
}

/* A 1-D or 2-D dataset at `name` (intermediate groups created) of file type ft
 * from memory of type mt. */
static int write_array(hid_t f, const char *file, const char *name, int ndim, int64_t d0, int64_t d1,
                       hid_t ft, hid_t mt, const void *data) {
    hsize_t dims[2] = {(hsize_t)d0, (hsize_t)d1};
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = qat_h5_dcpl(ndim, dims, H5Tget_size(ft));
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(f, name, ft, sp, lcpl, dcpl, H5P_DEFAULT);
    int rc = QAT_OK;
    if (d < 0 || H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) rc = qat_h5_fail_write(file, "cannot write %s", name);
    if (d >= 0 && H5Dclose(d) < 0 && !rc) rc = qat_h5_fail_write(file, "cannot write %s", name);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    return rc;
}

/* Copy every weight and quantizer state array (codes, codebooks, PV buffers:
 * what a checkpoint holds) of `from` into `to`, built with the same forward
 * formats. --compare-backward must run the very model the first pass ran, and
 * a fresh model only shares its params: a learned aq codebook or a PV buffer
 * left at its initial value gave another loss (cosines down to -0.19). */
static int copy_model_state(const qat_model *from, qat_model *to) {
    int ns = qat_model_compress_state_count(from);
    if (to->n_total != from->n_total || to->n_views != from->n_views || qat_model_compress_state_count(to) != ns)
        return qat_fail(QAT_ERUNTIME, "--compare-backward: the compared model's layout differs from the first one");
    memcpy(to->params, from->params, (size_t)from->n_total * sizeof(float));
    for (int i = 0; i < from->n_views; i++) {
        if (to->views[i].n != from->views[i].n)
            return qat_fail(QAT_ERUNTIME, "--compare-backward: %s differs in size", from->views[i].name);
        memcpy(to->views[i].data, from->views[i].data, (size_t)from->views[i].n * sizeof(float));
    }
    for (int i = 0; i < ns; i++) {
        char a[96], b[96];
        float *x, *y;
        int64_t nx, ny;
        qat_model_compress_state((qat_model *)from, i, a, &x, &nx);
        qat_model_compress_state(to, i, b, &y, &ny);
        if (strcmp(a, b) || nx != ny)
            return qat_fail(QAT_ERUNTIME, "--compare-backward: quantizer state %s differs from %s", a, b);
        memcpy(y, x, (size_t)nx * sizeof(float));
    }
    return QAT_OK;
}

static double cosine(const float *a, const float *b, int64_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : NAN;
}

/* Every file the command reads: the config or checkpoint, and the data files
 * (text files, the shard and validation-shard globs expanded into *gl). *ins
 * (malloc'd) points into cfg, gl and the arguments. */
static int data_inputs(const qat_data_cfg *d, const char *config, const char *ckpt, glob_t *gl, const char ***ins,
                       int *n) {
    if (!strcmp(d->source, "shards")) {
        if (d->shards[0]) glob(d->shards, 0, NULL, gl);
        if (d->val_shards[0]) glob(d->val_shards, gl->gl_pathc ? GLOB_APPEND : 0, NULL, gl);
    }
    size_t max = 2 + (size_t)d->n_text + gl->gl_pathc;
    const char **v = qat_xmalloc(max * sizeof *v);
    int k = 0;
    if (config) v[k++] = config;
    if (ckpt) v[k++] = ckpt;
    if (!strcmp(d->source, "text"))
        for (int i = 0; i < d->n_text; i++) v[k++] = d->text[i];
    for (size_t i = 0; i < gl->gl_pathc; i++) v[k++] = gl->gl_pathv[i];
    *ins = v;
    *n = k;
    return QAT_OK;
}

int qat_grads_main(int argc, char **argv) {
    const char *config = NULL, *ckpt = NULL, *out = NULL, *compare = NULL, *compare_bwd = NULL, *sets[QAT_MAX_SETS];
    int n_set = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(GRADS_HELP, stdout); return 0; }
        else if (!strcmp(argv[i], "--checkpoint") && qat_opt_has_value(argc, argv, i)) ckpt = argv[++i];
        else if (!strcmp(argv[i], "--out") && qat_opt_has_value(argc, argv, i)) out = argv[++i];
        else if (!strcmp(argv[i], "--compare") && qat_opt_has_value(argc, argv, i)) compare = argv[++i];
        else if (!strcmp(argv[i], "--compare-backward") && qat_opt_has_value(argc, argv, i)) compare_bwd = argv[++i];
        else if (!strcmp(argv[i], "--set") && qat_opt_has_value(argc, argv, i)) {
            if (n_set == QAT_MAX_SETS)
                return qat_report(qat_fail(QAT_EINPUT, "too many --set options (at most %d)", QAT_MAX_SETS));
            sets[n_set++] = argv[++i];
        }
        else if (argv[i][0] != '-' && !config) config = argv[i];
        else { fprintf(stderr, "qat grads: unknown or incomplete option '%s'\n\n%s", argv[i], GRADS_HELP); return 2; }
    }
    if (!out || (!config == !ckpt)) {
        fprintf(stderr, "qat grads: give CONFIG.yaml or --checkpoint CKPT.h5 (one of them), and --out GRADS.h5\n\n%s", GRADS_HELP);
        return 2;
    }
    if (compare && compare_bwd) {
        fprintf(stderr, "qat grads: give --compare or --compare-backward, not both\n\n%s", GRADS_HELP);
        return 2;
    }
    /* Refused before any work: an empty path, named; the output may be neither input nor a
     * non-regular file. */
    int rc = config ? qat_in_check("grads: CONFIG", config, "a YAML config file")
                    : qat_in_check("grads: --checkpoint", ckpt, "a checkpoint file (ckpt.h5)");
    if (!rc) rc = qat_in_check("grads: --out", out, "a file name to write the gradients to (GRADS.h5)");
    const char *inputs[2] = {config, ckpt};
    if (!rc) rc = qat_out_check_as(out, QAT_OUT_GRADS, inputs, 2);
    if (rc) return qat_report(rc);
    qat_config cfg;
    qat_model *m = NULL;
    qat_init init;
    memset(&init, 0, sizeof init);
    int inited = 0;
    /* grads runs a backward, so compress.gradients.* acts; it takes no optimizer step,
     * so the training loop's keys do not (qat_check_set_effect) */
    qat_ckpt_use use = {.command = "grads", .backward = 1, .checkpoint = ckpt != NULL, .tokens = NULL,
                        .data = NULL};
    if (ckpt) rc = qat_load_checkpoint_model(ckpt, &use, sets, n_set, 0, &cfg, &m);
    else {
        rc = qat_check_set_effect(&use, sets, n_set);
        if (!rc) rc = qat_config_load(config, sets, n_set, &cfg);
        qat_model_shape s;
        if (!rc) rc = qat_model_shape_from_config(&cfg, &s);
        if (!rc) rc = qat_model_create(&cfg, &s, cfg.train.batch_tokens / s.seq_len, &m);
        /* train.init starts the run from a checkpoint's weights: the gradients of
         * the run CONFIG describes are taken there, as `qat train` would start it
         * (quantizer state carried or derived by the same rules, train/init.c) */
        if (!rc && cfg.train.init[0]) {
            rc = qat_init_load(&init, cfg.train.init, &cfg, m);
            if (rc) {
                char msg[4096], pos[QAT_PATH_MAX + 96];
                snprintf(msg, sizeof msg, "%s", qat_errmsg());
                const char *body = strncmp(msg, "--init ", 7) ? msg : msg + 7;
                rc = qat_fail(rc, "%s: train.init: %s", qat_config_where(&cfg, "train.init", pos, sizeof pos), body);
            } else
                inited = 1;
        }
    }
    /* the data files the batch is read from are inputs too: --out must not name one */
    glob_t gl = {0};
    int n_in = 0;
    const char **ins = NULL;
    if (!rc) {
        rc = data_inputs(&cfg.data, config, ckpt ? ckpt : inited ? cfg.train.init : NULL, &gl, &ins, &n_in);
        if (!rc) rc = qat_out_check_as(out, QAT_OUT_GRADS, ins, n_in);
        if (rc) {
            free(ins);
            globfree(&gl);
        }
    }
    if (rc) {
        qat_model_free(m);
        qat_init_free(&init);
        return qat_report(rc);
    }
    qat_threads_init(cfg.threads);
    int B = m->max_batch;
    int64_t T = m->s.seq_len;
    qat_dataset *ds;
    if ((rc = qat_dataset_open(&cfg.data, m->s.vocab, (int)T, (double)B * T, cfg.seed, &ds))) {
        if (ckpt) rc = qat_ckpt_data_context(rc, ckpt, &cfg, "--set data.KEY=VALUE points elsewhere");
        free(ins);
        globfree(&gl);
        qat_model_free(m);
        qat_init_free(&init);
        return qat_report(rc);
    }
    int32_t *in = qat_xmalloc((size_t)B * T * 4), *tg = qat_xmalloc((size_t)B * T * 4);
    qat_dataset_train_batch(ds, 0, B, in, tg);

    qat_model *m2 = NULL;
    double loss2 = NAN;
    qat_fmt cmp_fmt; /* --compare FORMAT parsed: its canonical name is what is printed and recorded */
    if (compare || compare_bwd) {
        qat_config c2 = cfg;
        if (compare) {
            /* errors from the compared model name --compare, not CONFIG (which
             * never said nvfp4@2d); the format is recorded by its canonical name */
            rc = qat_fmt_parse(compare, &cmp_fmt);
            if (rc) rc = qat_fail_context(rc, "--compare %s", compare);
            else compare = cmp_fmt.name;
            /* the compared config is this option, not where cfg's keys were given: a
             * position in CONFIG or a --set would be printed with the compared values */
            qat_config_forget_origin(&c2);
            snprintf(c2.source_path, sizeof c2.source_path, "--compare %s", compare);
            snprintf(c2.weights.format, sizeof c2.weights.format, "%s", compare);
            snprintf(c2.activations.format, sizeof c2.activations.format, "%s", compare);
            c2.weights.estimator[0] = c2.activations.estimator[0] = 0; /* the format's default backward */
        } else {
            qat_config_forget_origin(&c2); /* as for --compare: the errors name this option */
            snprintf(c2.source_path, sizeof c2.source_path, "--compare-backward %s", compare_bwd);
            snprintf(c2.gradients.format, sizeof c2.gradients.format, "%s", compare_bwd);
            if (!strcmp(compare_bwd, "fp32")) { /* the unquantized backward has no rounding or rotation */
                snprintf(c2.gradients.rounding, sizeof c2.gradients.rounding, "rtn");
                c2.gradients.hadamard = 0;
            }
        }
        /* --compare starts the compared model from the master weights; a quantizer
         * whose forward is its own learned codes (PV with pv_lr > 0, read from the
         * checkpoint or carried by train.init) never reads them after its first
         * step, so the two passes would not be at the same weights: the cosines
         * would compare two models (a second review read 3.870 against 3.905 with
         * the run's own format on both sides). --compare-backward keeps the forward
         * and its state, so it stays open. */
        if (!rc && compare && (ckpt || (inited && init.carried)))
            for (int i = 0; i < 8 && !rc; i++) {
                qat_quantizer *q = i < 4 ? m->blocks[0].qw[i] : m->blocks[0].qa[i - 4];
                if (qat_quantizer_state_count(q) > 0 && !qat_quantizer_follows_weights(q))
                    rc = qat_fail(QAT_EINPUT, "--compare %s: %s's %s compute their forward from learned codes "
                                  "(format %s, estimator %s), not from the master weights the compared model would "
                                  "start from, so the two gradients would not be at the same weights; expected "
                                  "--compare-backward FORMAT (same forward, another backward), or a checkpoint whose "
                                  "quantizers follow their weights (e.g. pv_lr: 0, or another estimator)",
                                  compare, ckpt ? ckpt : cfg.train.init, i < 4 ? "weights" : "activations",
                                  qat_quantizer_format(q), qat_quantizer_estimator(q));
            }
        if (!rc) rc = qat_model_create(&c2, &m->s, B, &m2);
        /* --compare-backward keeps the forward, so the second model gets the
         * first one's quantizer state too, taken before the first pass can
         * move it; --compare's other formats start from their own state */
        if (!rc && compare_bwd) rc = copy_model_state(m, m2);
        else if (!rc) memcpy(m2->params, m->params, (size_t)m->n_total * sizeof(float));
    }
    double loss = batch_grads(m, in, tg, B);
    if (!rc && m2) loss2 = batch_grads(m2, in, tg, B);
    qat_h5_out h = {.file = -1};
    if (!rc) rc = qat_h5_out_create(&h, out, QAT_OUT_GRADS, ins, n_in);
    hid_t f = h.file;
    if (!rc) {
        rc = qat_h5_attr_write_str(f, out, "weight_format", qat_model_weight_format(m));
        if (!rc) rc = qat_h5_attr_write_str(f, out, "act_format", qat_model_act_format(m));
        if (!rc) rc = qat_h5_attr_write_str(f, out, "estimator", qat_model_estimator(m));
        if (!rc) rc = qat_h5_attr_write_str(f, out, "grad_format", cfg.gradients.format);
        if (!rc) rc = qat_h5_attr_write_str(f, out, "grad_rounding", cfg.gradients.rounding);
        int64_t gh = cfg.gradients.hadamard;
        if (!rc) rc = qat_h5_attr_write(f, out, "grad_hadamard", H5T_STD_I64LE, H5T_NATIVE_INT64, &gh);
        if (!rc) rc = qat_h5_scalar_write(f, out, "loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &loss);
        if (!rc) rc = write_array(f, out, "batch/inputs", 2, B, T, H5T_STD_I32LE, H5T_NATIVE_INT32, in);
        if (!rc) rc = write_array(f, out, "batch/targets", 2, B, T, H5T_STD_I32LE, H5T_NATIVE_INT32, tg);
        if (!rc && m2) {
            hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
            H5Pset_create_intermediate_group(lcpl, 1);
            hid_t g = H5Gcreate2(f, "compare/cosine", lcpl, H5P_DEFAULT, H5P_DEFAULT);
            H5Pclose(lcpl);
            if (g < 0) rc = qat_h5_fail_write(out, "cannot create /compare/cosine");
            else H5Gclose(g);
            if (!rc) rc = compare ? qat_h5_attr_write_str(f, out, "compare_format", compare)
                                  : qat_h5_attr_write_str(f, out, "compare_backward", compare_bwd);
            if (!rc) rc = qat_h5_scalar_write(f, out, "compare/loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &loss2);
            printf("%-48s %10s\n", "tensor", "cosine");
        }
        for (int i = 0; !rc && i < m->n_views; i++) {
            qat_param_view *v = &m->views[i];
            if (v->kind == QAT_PARAM_COMPRESS) continue;
            char name[160];
            snprintf(name, sizeof name, "grads/%s", v->name);
            rc = write_array(f, out, name, v->ndim, v->shape[0], v->shape[1], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, v->grad);
            if (!rc && m2) {
                double c = cosine(v->grad, m2->grads + (v->grad - m->grads), v->n);
                snprintf(name, sizeof name, "compare/cosine/%s", v->name);
                rc = qat_h5_scalar_write(f, out, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &c);
                printf("%-48s %10.4f\n", v->name, c);
            }
        }
        rc = qat_h5_out_finish(&h, rc);
        char g1[96], g2[96] = "";
        qat_gradq_describe(&m->gq, g1, sizeof g1);
        if (m2) qat_gradq_describe(&m2->gq, g2, sizeof g2);
        if (!rc) printf("loss %.6f (%s/%s, backward %s); gradients of %d×%lld tokens written to %s\n", loss,
                        qat_model_weight_format(m), qat_model_act_format(m), g1, B, (long long)T, out);
        if (!rc && inited) {
            char sdesc[1024];
            qat_init_describe_state(&init, "; ", sdesc, sizeof sdesc);
            printf("init: %s (%s; %s)\n", init.path, init.source, sdesc);
        }
        if (!rc && m2 && compare) printf("compare loss %.6f (%s/%s)\n", loss2, qat_model_weight_format(m2),
                                             qat_model_act_format(m2));
        if (!rc && m2 && compare_bwd) printf("compare loss %.6f (%s/%s, backward %s)\n", loss2,
                                             qat_model_weight_format(m2), qat_model_act_format(m2), g2);
    }
    free(in);
    free(tg);
    free(ins);
    globfree(&gl);
    qat_dataset_free(ds);
    qat_model_free(m2);
    qat_model_free(m);
    qat_init_free(&init);
    return qat_report(rc);
}
