/*
 * train/sample_cli.c — `qat sample`: read what a checkpoint writes (docs/cli.md).
 *
 * Options, prompt tokens and printing live here; generation is sample.c. The
 * model is rebuilt from the checkpoint's own config, formats included, exactly
 * as `qat eval` does, so an fp32 and a W2A2 checkpoint of one size can be read
 * side by side.
 *
 * Byte models (vocab 256, as trained on text) take the prompt as text and print
 * text: bytes as they are, except control characters other than newline and
 * tab, which are written as \xHH so that a model's output cannot drive the
 * terminal. Other vocabularies have no tokenizer in qat: prompts and output are
 * token ids.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/num.h"
#include "core/threads.h"
#include "data/text.h"
#include "model/llama.h"
#include "runio.h"
#include "sample.h"
#include "train_cli.h"

static const char SAMPLE_HELP[] =
    "usage: qat sample --checkpoint CKPT.h5 [--prompt TEXT | --prompt-ids I,J,...] [--tokens N]\n"
    "                  [--temperature T] [--top-k K] [--seed S] [--ids]\n"
    "\n"
    "Text a checkpoint generates, through the forward it was trained and evaluated with\n"
    "(weights and activations in the run's formats). Each token recomputes the forward over\n"
    "the last model.seq_len tokens of prompt + output.\n"
    "  --checkpoint CKPT.h5  a run's ckpt.h5 (its config says the model and formats)\n"
    "  --prompt TEXT         prompt bytes, at least one (byte models, vocab 256, only); default:\n"
    "                        start after a newline, which is not printed\n"
    "  --prompt-ids I,J,...  prompt as token ids, each below the vocabulary (any model); default for\n"
    "                        models that are not byte models: the single token 0, not printed\n"
    "  --tokens N            tokens to generate, N >= 1 (default 200)\n"
    "  --temperature T       sample from softmax(logits / T), T >= 0; 0 = greedy, the highest logit\n"
    "                        with ties to the lowest id (default 0.8)\n"
    "  --top-k K             sample among the K highest logits only; 0 = all (default 40)\n"
    "  --seed S              seed of the sampler: same seed, same output (default 0)\n"
    "  --ids                 print token ids, even for a byte model\n"
    "\n"
    "Output (stdout): the prompt, then the continuation as it is generated. Byte models print\n"
    "text: bytes as-is except control characters other than newline and tab, written as \\xHH\n"
    "(a backslash in the text is printed as-is), and a final newline if the text does not end\n"
    "with one. Otherwise, and with --ids: the token ids separated by spaces on one line.\n"
    "A line on stderr names the checkpoint's formats and sizes.\n";

#define SAMPLE_MAX_TOKENS 10000000 /* a generous bound that keeps buffers sane */

/* How output is written: text (escaped bytes) or ids. */
typedef struct {
    int ids;        /* 1: "id id id", 0: escaped bytes */
    int n_printed;  /* tokens printed so far (for separators) */
    int last_byte;  /* last byte written in text mode (-1 before any) */
    int err;        /* errno of the first failed write (0: none): generation stops there */
} printer;

static int print_token(int32_t tok, void *ctx) {
    printer *p = ctx;
    if (p->ids) printf(p->n_printed ? " %" PRId32 : "%" PRId32, tok);
    else {
        unsigned char b = (unsigned char)tok;
        if ((b < 0x20 && b != '\n' && b != '\t') || b == 0x7f) printf("\\x%02X", b);
        else putchar(b);
        p->last_byte = b;
    }
    p->n_printed++;
    /* a reader watches the text appear; one that went away (`| head -c 100`:
     * EPIPE, SIGPIPE being ignored, cli/qat.c) or a full disk ends the sampling
     * rather than computing tokens nobody can read */
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (!p->err) p->err = errno ? errno : EIO;
        return 1;
    }
    return 0;
}

static int parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out) {
    if (!qat_parse_ll(s, lo, hi, out))
        return qat_fail(QAT_EINPUT, "sample: %s '%s': expected a whole number in [%lld, %lld]", opt, s, lo, hi);
    return QAT_OK;
}

/* "1,2,3" -> ids (caller frees); every id checked against the vocabulary later. */
static int parse_ids(const char *s, int32_t **ids, int64_t *n) {
    size_t cap = 1;
    for (const char *c = s; *c; c++) cap += *c == ',';
    int32_t *v = qat_xmalloc(sizeof(int32_t) * cap);
    int64_t k = 0;
    const char *c = s;
    for (;;) {
        char *end;
        errno = 0;
        long long x = (*c >= '0' && *c <= '9') ? strtoll(c, &end, 10) : -1;
        if (x < 0 || errno || x > INT32_MAX || (*end && *end != ',')) {
            free(v);
            return qat_fail(QAT_EINPUT, "sample: --prompt-ids '%s': expected comma-separated token ids like 1,2,3", s);
        }
        v[k++] = (int32_t)x;
        if (!*end) break;
        c = end + 1;
    }
    *ids = v;
    *n = k;
    return QAT_OK;
}

/* Options, or QAT_EINPUT naming the one that is wrong. */
typedef struct {
    const char *ckpt, *prompt, *prompt_ids; /* as given */
    int ids;                                /* --ids */
    qat_sample_opts o;                      /* generation options */
} sample_args;

static int parse_args(int argc, char **argv, sample_args *a) {
    memset(a, 0, sizeof *a);
    a->o = (qat_sample_opts){.tokens = 200, .temperature = 0.8, .top_k = 40, .seed = 0};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        long long v = 0;
        if (!strcmp(o, "--ids")) { a->ids = 1; continue; }
        if (strncmp(o, "--", 2) || (strcmp(o, "--checkpoint") && strcmp(o, "--prompt") && strcmp(o, "--prompt-ids") &&
                                    strcmp(o, "--tokens") && strcmp(o, "--temperature") && strcmp(o, "--top-k") &&
                                    strcmp(o, "--seed")))
            return qat_fail(QAT_EINPUT, "sample: unknown argument '%s' (see qat sample --help)", o);
        const char *s = NULL;
        QAT_TRY(qat_opt_value("sample", argc, argv, &i, &s));
        if (!strcmp(o, "--checkpoint")) a->ckpt = s;
        else if (!strcmp(o, "--prompt")) a->prompt = s;
        else if (!strcmp(o, "--prompt-ids")) a->prompt_ids = s;
        else if (!strcmp(o, "--tokens")) { /* a count, as eval's and data's: 1e3 as well as 1000 */
            if (!qat_parse_count(s, 1, SAMPLE_MAX_TOKENS, &v))
                return qat_fail(QAT_EINPUT, "--tokens %s: expected a whole number in [1, %d] (e.g. 200 or 1e3)", s,
                                SAMPLE_MAX_TOKENS);
            a->o.tokens = v;
        } else if (!strcmp(o, "--top-k")) {
            QAT_TRY(parse_int(o, s, 0, INT32_MAX, &v));
            a->o.top_k = (int)v;
        } else if (!strcmp(o, "--seed")) {
            uint64_t u; /* the config's rule for seeds, as every command's --seed (core/num.h) */
            if (!qat_parse_u64(s, &u)) return qat_fail(QAT_EINPUT, "sample: --seed '%s': expected " QAT_U64_RULE, s);
            a->o.seed = u;
        } else { /* --temperature */
            char *end;
            errno = 0;
            double t = strtod(s, &end);
            if (errno || end == s || *end || !isfinite(t) || t < 0)
                return qat_fail(QAT_EINPUT, "sample: --temperature '%s': expected a finite number >= 0", s);
            a->o.temperature = t;
        }
    }
    if (!a->ckpt) return qat_fail(QAT_EINPUT, "sample: --checkpoint CKPT.h5 is required (see qat sample --help)");
    QAT_TRY(qat_in_check("sample: --checkpoint", a->ckpt, "a checkpoint file (ckpt.h5)"));
    if (a->prompt && a->prompt_ids)
        return qat_fail(QAT_EINPUT, "sample: give --prompt or --prompt-ids, not both");
    /* An empty prompt once started after the default newline, as if --prompt had not
     * been given. It cannot mean "from nothing": the model predicts each token from
     * those before it, and a byte model has no start token to stand for none. */
    if (a->prompt && !a->prompt[0])
        return qat_fail(QAT_EINPUT, "sample: --prompt '': expected at least one byte: the model predicts each token "
                        "from the ones before it and has no start token; omit --prompt to start after a newline "
                        "(not printed)");
    return QAT_OK;
}

/* The prompt as tokens for model vocabulary V; *shown says whether to print it. */
static int prompt_tokens(const sample_args *a, const char *ckpt, int V, int32_t **out, int64_t *n, int *shown) {
    const int bytes = V == QAT_TEXT_VOCAB;
    *shown = 1;
    if (a->prompt_ids) {
        QAT_TRY(parse_ids(a->prompt_ids, out, n));
        for (int64_t i = 0; i < *n; i++)
            if ((*out)[i] >= V) {
                int rc = qat_fail(QAT_EINPUT, "sample: --prompt-ids: id %" PRId32 " (position %" PRId64
                                  ") is not below the vocabulary of %s (%d)", (*out)[i], i + 1, ckpt, V);
                free(*out);
                return rc;
            }
        return QAT_OK;
    }
    if (a->prompt && !bytes)
        return qat_fail(QAT_EINPUT, "sample: --prompt TEXT needs a byte model (vocab %d), but %s has vocab %d "
                        "and qat has no tokenizer for it: give token ids with --prompt-ids", QAT_TEXT_VOCAB, ckpt, V);
    size_t len = a->prompt ? strlen(a->prompt) : 0; /* never 0 when given (parse_args) */
    if (len == 0) { /* no prompt: start after a newline (a line boundary) or token 0, unprinted */
        *out = qat_xmalloc(sizeof(int32_t));
        (*out)[0] = bytes ? '\n' : 0;
        *n = 1;
        *shown = 0;
        return QAT_OK;
    }
    *out = qat_xmalloc(sizeof(int32_t) * len);
    for (size_t i = 0; i < len; i++) (*out)[i] = (unsigned char)a->prompt[i];
    *n = (int64_t)len;
    return QAT_OK;
}

int qat_sample_main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(SAMPLE_HELP, stdout); return 0; }
    sample_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return qat_report(rc);
    qat_config cfg;
    qat_model *m = NULL;
    qat_ckpt_use use = {.command = "sample", .backward = 0, .checkpoint = 1, .tokens = NULL, .data = NULL};
    rc = qat_load_checkpoint_model(a.ckpt, &use, NULL, 0, 1, &cfg, &m); /* one sequence at a time */
    if (rc) return qat_report(rc);
    int32_t *prompt = NULL;
    int64_t n_prompt = 0;
    int shown;
    rc = prompt_tokens(&a, a.ckpt, m->s.vocab, &prompt, &n_prompt, &shown);
    if (rc) { qat_model_free(m); return qat_report(rc); }
    qat_threads_init(cfg.threads);
    printer p = {.ids = a.ids || m->s.vocab != QAT_TEXT_VOCAB, .n_printed = 0, .last_byte = -1};
    fprintf(stderr, "qat sample: %s: weights %s, activations %s, %" PRId64 " parameters, context %d, vocab %d\n",
            a.ckpt, qat_model_weight_format(m), qat_model_act_format(m), m->n_params, m->s.seq_len, m->s.vocab);
    if (shown)
        for (int64_t i = 0; i < n_prompt && !p.err; i++) print_token(prompt[i], &p);
    int32_t *out = qat_xmalloc(sizeof(int32_t) * (size_t)a.o.tokens);
    if (!p.err) qat_sample_generate(m, prompt, n_prompt, &a.o, out, print_token, &p);
    if (!p.err && (p.ids || p.last_byte != '\n')) putchar('\n');
    free(out);
    free(prompt);
    qat_model_free(m);
    /* the last newline is checked by cli/qat.c, as every command's output is */
    if (p.err) return qat_report(qat_fail(QAT_ERUNTIME, "cannot write the output: %s", strerror(p.err)));
    return 0;
}
