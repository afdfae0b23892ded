/*
 * train/eval_cli.c — `qat eval`: the validation loss of a checkpoint.
 *
 * The checkpoint carries its resolved config, so the model (formats included)
 * is rebuilt exactly as trained; --data swaps the evaluation data for one of the
 * built-in corpora (english, synthetic), a shard glob or a text file, and --set
 * overrides keys of the stored config, above all the formats: the same weights
 * read through another forward (a noise-trained model through the real
 * quantizer, a quantization-trained one in fp32) separate what a format costs
 * at evaluation from what it cost in training.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/tape.h"
#include "train_cli.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/num.h"
#include "core/threads.h"
#include "data/dataset.h"
#include "model/llama.h"
#include "runlog/checkpoint.h"
#include "runio.h"
#include "trainer.h"

static const char EVAL_HELP[] =
    "usage: qat eval --checkpoint CKPT.h5 [--set key=value]... [--data SOURCE] [--tokens N] [--json]\n"
    "\n"
    "Mean validation cross-entropy (nats/token) of a checkpoint, with its formats.\n"
    "  --set key=value override a key of the checkpoint's stored config (docs/config.md), at most 256;\n"
    "                 e.g. --set compress.weights.format=int2 --set compress.activations.format=int2\n"
    "                 evaluates the trained weights through int2 whatever they were trained with; the model's\n"
    "                 sizes (all but model.seq_len) stay the checkpoint's; an estimator with learned state\n"
    "                 (lsq, pv, aq) needs a checkpoint trained with it, and learned state is read only by the\n"
    "                 quantizer it was learned for (same format, rotation, estimator and scale; or, but for\n"
    "                 PV, an estimator without state on the master weights); a key without effect in eval is\n"
    "                 refused: compress.gradients.* and the estimators' backward parameters (eval has no\n"
    "                 backward pass), the optimizer's and the training loop's keys (docs/cli.md, \"qat eval\")\n"
    "  --data SOURCE  'english' (docs/data.md), 'synthetic', a glob of llm.c shards (*.bin) or a text\n"
    "                 file (default: the run's data)\n"
    "  --tokens N     held-out tokens to evaluate (default: the run's train.eval_tokens)\n"
    "  --json         print {\"loss\": ..., \"tokens\": ...}\n";

int qat_eval_main(int argc, char **argv) {
    const char *ckpt = NULL, *data = NULL, *sets[QAT_MAX_SETS];
    long long tokens = 0;
    const char *tokens_opt = NULL; /* --tokens as given: train.eval_tokens has no effect with it */
    int json = 0, n_set = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(EVAL_HELP, stdout); return 0; }
        else if (!strcmp(argv[i], "--checkpoint") && qat_opt_has_value(argc, argv, i)) ckpt = argv[++i];
        else if (!strcmp(argv[i], "--data") && qat_opt_has_value(argc, argv, i)) data = argv[++i];
        else if (!strcmp(argv[i], "--set") && qat_opt_has_value(argc, argv, i)) {
            if (n_set == QAT_MAX_SETS)
                return qat_report(qat_fail(QAT_EINPUT, "too many --set options (at most %d)", QAT_MAX_SETS));
            sets[n_set++] = argv[++i];
        }
        else if (!strcmp(argv[i], "--tokens") && qat_opt_has_value(argc, argv, i)) {
            /* 0, -1 and "x" once all meant "the default" without a word. */
            const char *v = argv[++i];
            tokens_opt = v;
            if (!qat_parse_count(v, 1, 1e15, &tokens))
                return qat_report(qat_fail(QAT_EINPUT, "--tokens %s: expected a whole number of tokens in "
                                           "[1, 1e15] (e.g. 65536 or 1e6; omit it for the run's train.eval_tokens)", v));
        }
        else if (!strcmp(argv[i], "--json")) json = 1;
        else { fprintf(stderr, "qat eval: unknown or incomplete option '%s'\n\n%s", argv[i], EVAL_HELP); return 2; }
    }
    if (!ckpt) { fprintf(stderr, "qat eval: --checkpoint CKPT.h5 is required\n\n%s", EVAL_HELP); return 2; }
    if (qat_in_check("eval: --checkpoint", ckpt, "a checkpoint file (ckpt.h5)") ||
        (data && qat_in_check("eval: --data", data, "english, synthetic, a glob of llm.c shards or a text file")))
        return qat_report(QAT_EINPUT);
    qat_config cfg;
    qat_model *m = NULL;
    char tokens_text[64] = "";
    if (tokens_opt) snprintf(tokens_text, sizeof tokens_text, "--tokens %.50s", tokens_opt);
    char data_text[QAT_PATH_MAX + 16] = "";
    if (data) snprintf(data_text, sizeof data_text, "--data %s", data);
    qat_ckpt_use use = {.command = "eval", .backward = 0, .checkpoint = 1, .tokens = tokens_text,
                        .data = data ? data_text : NULL};
    int rc = qat_load_checkpoint_model(ckpt, &use, sets, n_set, 0, &cfg, &m);
    if (rc) return qat_report(rc);
    /* Formats with random draws (noise(F), @sr) key them by step: evaluate with the
     * draws of the checkpoint's last step, as the run's own evaluation did, so that
     * the two agree (docs/cli.md). A checkpoint of step 0 (none done) uses 0; one
     * whose /state is damaged is an error, not a silently other key. */
    int64_t key = 0;
    qat_ckpt_file *cf;
    if ((rc = qat_ckpt_open(ckpt, &cf)) == QAT_OK) {
        qat_ckpt_state st;
        rc = qat_ckpt_read_state(cf, &st);
        if (!rc && st.step > 0) key = st.step - 1;
        qat_ckpt_close(cf);
    }
    if (rc == QAT_ERUNTIME) {
        qat_model_free(m);
        return qat_report(rc);
    }
    qat_clear_error();
    qat_threads_init(cfg.threads);
    if (data) {
        memset(cfg.data.shards, 0, sizeof cfg.data.shards);
        memset(cfg.data.val_shards, 0, sizeof cfg.data.val_shards);
        memset(cfg.data.shards_at, 0, sizeof cfg.data.shards_at);
        memset(cfg.data.val_shards_at, 0, sizeof cfg.data.val_shards_at);
        memset(cfg.data.text_at, 0, sizeof cfg.data.text_at);
        cfg.data.n_text = 0;
        /* the data's errors name --data, not data.shards: the user wrote the option */
        snprintf(cfg.data.option, sizeof cfg.data.option, "--data");
        size_t n = strlen(data);
        /* The built-in corpora are words, not file names: a checkpoint trained on
         * one corpus can be scored on the other by name. */
        if (!strcmp(data, "synthetic") || !strcmp(data, "english"))
            snprintf(cfg.data.source, sizeof cfg.data.source, "%s", data);
        else if (strchr(data, '*') || (n > 4 && !strcmp(data + n - 4, ".bin"))) {
            snprintf(cfg.data.source, sizeof cfg.data.source, "shards");
            snprintf(cfg.data.shards, sizeof cfg.data.shards, "%s", data);
        } else {
            snprintf(cfg.data.source, sizeof cfg.data.source, "text");
            snprintf(cfg.data.text[0], sizeof cfg.data.text[0], "%s", data);
            cfg.data.n_text = 1;
        }
    }
    int B = m->max_batch;
    qat_dataset *ds;
    rc = qat_dataset_open(&cfg.data, m->s.vocab, m->s.seq_len, (double)B * m->s.seq_len, cfg.seed, &ds);
    if (rc) { qat_model_free(m); return qat_report(qat_ckpt_data_context(rc, ckpt, &cfg, "--data SOURCE evaluates other data")); }
    if (tokens <= 0) tokens = cfg.train.eval_tokens;
    int64_t T = m->s.seq_len, nb = tokens / (B * T), avail = qat_dataset_val_batches(ds, B);
    if (nb < 1) nb = 1;
    if (nb > avail) nb = avail;
    int32_t *in = qat_xmalloc((size_t)B * T * 4), *tg = qat_xmalloc((size_t)B * T * 4);
    qat_tape tp;
    qat_tape_init(&tp, 0);
    double loss = qat_train_evaluate(m, &tp, ds, B, nb * B * T, in, tg, key);
    /* A split of fewer windows than one batch has rows repeats of each other: the
     * tokens scored are the distinct ones, and the repetition is said */
    int64_t W = qat_dataset_val_windows(ds), distinct = (nb * B < W ? nb * B : W) * T;
    if (W < nb * B) {
        long long lo = nb * B / W, hi = (nb * B + W - 1) / W;
        char times[96];
        if (lo == hi) snprintf(times, sizeof times, "%lld times", lo);
        else snprintf(times, sizeof times, "%lld or %lld times (the loss weights the windows so)", lo, hi);
        fprintf(stderr, "qat: note: the validation split holds %lld window%s of %lld tokens, fewer than one batch of "
                "%d rows: each is scored %s (%lld distinct tokens)\n", (long long)W, W == 1 ? "" : "s",
                (long long)T, B, times, (long long)distinct);
    }
    if (json) printf("{\"loss\": %.6f, \"tokens\": %lld}\n", loss, (long long)distinct);
    else printf("%s: validation loss %.4f nats/token over %lld tokens (%s; weights %s, activations %s)\n", ckpt, loss,
                (long long)distinct, qat_dataset_describe(ds), qat_model_weight_format(m), qat_model_act_format(m));
    free(in);
    free(tg);
    qat_tape_free(&tp);
    qat_dataset_free(ds);
    qat_model_free(m);
    return 0;
}
