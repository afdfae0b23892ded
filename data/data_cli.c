/*
 * data/data_cli.c — `qat data`: make the synthetic corpus, pack text into shards,
 * describe shards.
 *
 * Argument parsing is hand-written (no getopt) so that the function is re-entrant
 * for in-process tests, and every complaint goes through qat_fail/qat_report so it
 * reads "qat: <file or option>: what was wrong, expected what" with exit status 2.
 */
#include "data/data_cli.h"

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
#include "data/dataset.h"
#include "data/shard.h"
#include "data/synth.h"
#include "data/text.h"

static const char *usage_main =
    "usage: qat data <command> [options]\n"
    "\n"
    "commands:\n"
    "  synth    generate the synthetic corpus (docs/data.md) as llm.c shards, report its entropy rate\n"
    "  pack     pack plain-text files into an llm.c shard of byte tokens (vocab 256)\n"
    "  inspect  describe llm.c shards: header, token count, min/max token, unigram entropy\n"
    "\n"
    "`qat data <command> --help` for the options of each.\n";

static const char *usage_synth =
    "usage: qat data synth --tokens N [--seed S] [--vocab V] [--topics K] [--val N] -o OUT.bin\n"
    "\n"
    "Writes N training tokens (documents 0, 1, ...) to OUT.bin and the validation split\n"
    "(documents from index 2^40, default 524288 tokens, as used by `data: {source: synthetic}`)\n"
    "to OUT_val.bin (OUT_val for an OUT without .bin), then prints the validation split's unigram\n"
    "entropy and exact entropy rate (nats/token, the loss of a perfect model).\n"
    "\n"
    "  --tokens N   training tokens (e.g. 2e6)\n"
    "  --seed S     corpus seed (data.synth_seed), default that key's default (1234), so the\n"
    "               shards are the corpus `data: {source: synthetic}` trains on\n"
    "  --vocab V    vocabulary size (data.synth_vocab), default 256; at most 65536, at least\n"
    "               50 + K (BOS, COPY, a token per topic, 16 copy specs, 32 content tokens)\n"
    "  --topics K   document topics (data.synth_topics) in [1, 64], default 16\n"
    "  --val N      validation tokens (0, or at least 2), default 524288; 0 writes no validation shard\n"
    "  -o OUT.bin   output shard\n";

static const char *usage_pack =
    "usage: qat data pack FILE... -o OUT.bin\n"
    "\n"
    "Concatenates the bytes of the files (byte tokens, vocab 256) into one llm.c shard.\n"
    "gzip and dictzip files (told by their first bytes, not their names) are decompressed.\n";

static const char *usage_inspect =
    "usage: qat data inspect SHARD...\n"
    "\n"
    "For each llm.c shard: magic, version, token count, file size, min/max token, distinct\n"
    "tokens and unigram entropy (nats/token). Exit status 2 if any shard is invalid or\n"
    "empty (0 tokens: a run refuses it, docs/data.md).\n";

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* Value of option `name` at argv[*i] ("--name V" or "--name=V"); NULL when argv[*i] is not it,
 * or (*missing) when it has no value word: qat_opt_value then words why (core/num.h). */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing) {
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n)) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n]) return NULL;
    if (!qat_opt_has_value(argc, argv, *i)) { *missing = 1; return NULL; }
    return argv[++*i];
}

/* The output shard's option, -o or --out, as opt_value reads it; *name is the spelling the
 * user gave, for an error naming it. */
static const char *out_value(int argc, char **argv, int *i, int *missing, const char **name) {
    const char *v;
    if ((v = opt_value(argc, argv, i, "-o", missing))) *name = "-o";
    else if ((v = opt_value(argc, argv, i, "--out", missing))) *name = "--out";
    return v;
}

static int parse_count(const char *cmd, const char *opt, const char *s, double lo, double hi, int64_t *out) {
    long long v;
    if (!qat_parse_count(s, lo, hi, &v))
        return qat_fail(QAT_EINPUT, "data %s: %s '%s': expected a whole number in [%.0f, %.0f]", cmd, opt, s,
                        lo, hi);
    *out = (int64_t)v;
    return QAT_OK;
}

/* OUT.bin -> OUT_val.bin (or OUT -> OUT_val): beside the training shard, matched by "OUT*.bin". */
static char *val_path(const char *out) {
    size_t n = strlen(out);
    char *p = qat_xmalloc(n + 8);
    if (n >= 4 && !strcmp(out + n - 4, ".bin")) {
        memcpy(p, out, n - 4);
        strcpy(p + n - 4, "_val.bin");
    } else {
        memcpy(p, out, n);
        strcpy(p + n, "_val");
    }
    return p;
}

static int cmd_synth(int argc, char **argv) {
    int64_t tokens = -1, vocab = 256, topics = QAT_DATASET_SYNTH_TOPICS, nval = QAT_DATASET_SYNTH_VAL_TOKENS;
    /* The default is data.synth_seed's, read from the config's own table, so that
     * the shards written without --seed are the default corpus (docs/data.md). */
    qat_config *defaults = qat_xmalloc(sizeof *defaults);
    qat_config_defaults(defaults);
    uint64_t seed = defaults->data.synth_seed;
    free(defaults);
    const char *out = NULL, *oname = NULL;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (is_help(argv[i])) { fputs(usage_synth, stdout); return 0; }
        if ((v = opt_value(argc, argv, &i, "--tokens", &missing))) {
            QAT_TRY(parse_count("synth", "--tokens", v, 1, (double)QAT_SHARD_MAX_TOKENS, &tokens));
        } else if ((v = opt_value(argc, argv, &i, "--vocab", &missing))) {
            QAT_TRY(parse_count("synth", "--vocab", v, 2, QAT_SYNTH_MAX_VOCAB, &vocab));
        } else if ((v = opt_value(argc, argv, &i, "--topics", &missing))) {
            QAT_TRY(parse_count("synth", "--topics", v, 1, QAT_SYNTH_MAX_TOPICS, &topics));
        } else if ((v = opt_value(argc, argv, &i, "--val", &missing))) {
            QAT_TRY(parse_count("synth", "--val", v, 0, (double)QAT_SHARD_MAX_TOKENS, &nval));
            /* one token has nothing before it to predict it from: no entropy rate, and no
             * model could be scored on it */
            if (nval == 1)
                return qat_fail(QAT_EINPUT, "data synth: --val 1: a validation split needs at least 2 tokens (the "
                                "first is never predicted); 0 writes none");
        } else if ((v = opt_value(argc, argv, &i, "--seed", &missing))) {
            /* data.synth_seed's own rule (core/num.h), so any seed that key takes is
             * taken here (it read 010 as octal 8 and 0x10 as 16, and refused 1e3) */
            if (!qat_parse_u64(v, &seed)) return qat_fail(QAT_EINPUT, "data synth: --seed %s: expected %s", v, QAT_U64_RULE);
        } else if ((v = out_value(argc, argv, &i, &missing, &oname))) {
            out = v;
            QAT_TRY(qat_in_check(strcmp(oname, "-o") ? "data synth: --out" : "data synth: -o", out,
                                 "a file name to write the token shard to (OUT.bin)"));
        } else if (missing) {
            return qat_opt_value("data synth", argc, argv, &i, &v); /* says why it has none */
        } else {
            return qat_fail(QAT_EINPUT, "data synth: unknown argument '%s', expected --tokens, --seed, --vocab, "
                                        "--topics, --val or -o (see --help)", argv[i]);
        }
    }
    if (tokens < 0) return qat_fail(QAT_EINPUT, "data synth: missing --tokens N (see --help)");
    if (vocab < QAT_SYNTH_MIN_VOCAB(topics))
        return qat_fail(QAT_EINPUT, "data synth: --vocab %" PRId64 " is too small for %" PRId64 " topics, expected "
                        "--vocab >= %" PRId64 " (BOS, COPY, a token per topic, 16 copy specs, 32 content tokens)",
                        vocab, topics, (int64_t)QAT_SYNTH_MIN_VOCAB(topics));
    if (!out) return qat_fail(QAT_EINPUT, "data synth: missing -o OUT.bin (see --help)");
    /* both outputs are checked before the (long) generation, not one after the other */
    QAT_TRY(qat_out_check_as(out, QAT_OUT_SHARD, NULL, 0));
    if (nval > 0) {
        char *vp = val_path(out);
        int rc = qat_out_check_as(vp, QAT_OUT_SHARD, NULL, 0);
        free(vp);
        QAT_TRY(rc);
    }
    qat_synth_params p;
    qat_synth_params_default(&p, seed, (int)vocab, (int)topics);
    qat_synth *s;
    QAT_TRY(qat_synth_create(&p, &s));
    uint16_t *t = qat_xmalloc((size_t)tokens * sizeof *t);
    qat_synth_generate(s, 0, tokens, t, NULL);
    int rc = qat_shard_write(out, t, tokens);
    double htrain = rc ? 0 : qat_data_unigram_entropy(t, tokens, (int)vocab);
    free(t);
    if (!rc) printf("%s: %" PRId64 " training tokens (seed %" PRIu64 ", vocab %d, %d topics), unigram %.4f nats/token\n",
                    out, tokens, seed, (int)vocab, p.topics, htrain);
    if (!rc && nval > 0) {
        char *vp = val_path(out);
        uint16_t *v = qat_xmalloc((size_t)nval * sizeof *v);
        float *ent = qat_xmalloc((size_t)nval * sizeof *ent);
        qat_synth_generate(s, QAT_SYNTH_VAL_DOC0, nval, v, ent);
        rc = qat_shard_write(vp, v, nval);
        if (!rc)
            printf("%s: %" PRId64 " validation tokens, unigram %.4f nats/token, entropy rate %.4f nats/token "
                   "(exact: the loss of a perfect model)\n",
                   vp, nval, qat_data_unigram_entropy(v, nval, (int)vocab), qat_synth_mean_entropy(ent, nval));
        free(v);
        free(ent);
        free(vp);
    }
    qat_synth_free(s);
    return rc;
}

static int cmd_pack(int argc, char **argv) {
    const char *out = NULL, *oname = NULL;
    const char **files = qat_xmalloc((size_t)argc * sizeof *files);
    int nf = 0, rc = QAT_OK;
    for (int i = 1; i < argc && !rc; i++) {
        int missing = 0;
        const char *v;
        if (is_help(argv[i])) { fputs(usage_pack, stdout); free(files); return 0; }
        if ((v = out_value(argc, argv, &i, &missing, &oname)))
            rc = qat_in_check(strcmp(oname, "-o") ? "data pack: --out" : "data pack: -o", out = v,
                              "a file name to write the token shard to (OUT.bin)");
        else if (missing) rc = qat_opt_value("data pack", argc, argv, &i, &v); /* says why it has none */
        else if (argv[i][0] == '-' && argv[i][1])
            rc = qat_fail(QAT_EINPUT, "data pack: unknown option '%s', expected FILE... -o OUT.bin", argv[i]);
        else if (!(rc = qat_in_check("data pack: a FILE", argv[i], "a text file"))) files[nf++] = argv[i];
    }
    if (!rc && !nf) rc = qat_fail(QAT_EINPUT, "data pack: no input files, expected FILE... -o OUT.bin");
    if (!rc && !out) rc = qat_fail(QAT_EINPUT, "data pack: missing -o OUT.bin (see --help)");
    int a, b;
    if (!rc && qat_data_same_file(files, nf, &a, &b))
        rc = qat_fail(QAT_EINPUT, "data pack: files %d and %d (%s and %s) are the same file: its bytes would be "
                      "packed twice, and a split of the shard would hold out text it also trains on; expected each "
                      "file once", a + 1, b + 1, files[a], files[b]);
    /* -o may not be one of the text files it is packed from */
    if (!rc) rc = qat_out_check_as(out, QAT_OUT_SHARD, files, nf); /* and replaces only a shard */
    uint16_t *t = NULL;
    int64_t n = 0;
    if (!rc) rc = qat_text_read_files(files, nf, 0, &t, &n, NULL);
    if (!rc && n > QAT_SHARD_MAX_TOKENS)
        rc = qat_fail(QAT_EINPUT, "%s: %lld bytes exceed one llm.c shard (%lld tokens); pack fewer files", files[0],
                      (long long)n, QAT_SHARD_MAX_TOKENS);
    if (!rc) rc = qat_shard_write(out, t, n);
    if (!rc)
        printf("%s: %" PRId64 " byte tokens from %d file%s, unigram %.4f nats/token\n", out, n, nf, nf == 1 ? "" : "s",
               qat_data_unigram_entropy(t, n, QAT_TEXT_VOCAB));
    free(t);
    free(files);
    return rc;
}

static int inspect_one(const char *path) {
    uint16_t *t;
    int64_t n;
    QAT_TRY(qat_shard_read(path, 0, &t, &n));
    unsigned lo = 65535, hi = 0;
    int64_t distinct = 0;
    uint8_t *seen = qat_xcalloc(65536, 1);
    for (int64_t i = 0; i < n; i++) {
        if (t[i] < lo) lo = t[i];
        if (t[i] > hi) hi = t[i];
        if (!seen[t[i]]) { seen[t[i]] = 1; distinct++; }
    }
    free(seen);
    if (n > 0)
        printf("%s: magic %d version %d, %" PRId64 " tokens (%" PRId64 " bytes), tokens %u..%u, %" PRId64
               " distinct, unigram %.4f nats/token\n",
               path, QAT_SHARD_MAGIC, QAT_SHARD_VERSION, n, (int64_t)QAT_SHARD_HEADER_BYTES + 2 * n, lo, hi, distinct,
               qat_data_unigram_entropy(t, n, 0));
    free(t);
    if (n == 0) /* a valid header, but a run would refuse the file: say so here too */
        return qat_fail(QAT_EINPUT, "%s: empty shard (its header says 0 tokens), expected at least one token; "
                                    "a run refuses it (docs/data.md)", path);
    return QAT_OK;
}

static int cmd_inspect(int argc, char **argv) {
    int n = 0, worst = QAT_OK;
    for (int i = 1; i < argc; i++)
        if (is_help(argv[i])) { fputs(usage_inspect, stdout); return 0; }
    /* an empty path is a usage error, as an unknown option: refused alone, before any shard is read */
    for (int i = 1; i < argc; i++) QAT_TRY(qat_in_check("data inspect: a SHARD", argv[i], "a token shard file"));
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1])
            return qat_fail(QAT_EINPUT, "data inspect: unknown option '%s', expected SHARD...", argv[i]);
        n++;
        int rc = inspect_one(argv[i]);
        if (rc) { /* report and go on: one bad shard should not hide the others */
            qat_report(rc);
            worst = rc > worst ? rc : worst;
        }
    }
    if (!n) return qat_fail(QAT_EINPUT, "data inspect: no shards given, expected SHARD...");
    if (worst) qat_fail(worst, "data inspect: some shards are invalid (see above)");
    return worst;
}

int qat_data_main(int argc, char **argv) {
    qat_clear_error();
    if (argc < 2 || is_help(argv[1])) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? QAT_EINPUT : 0;
    }
    const char *cmd = argv[1];
    int rc;
    if (!strcmp(cmd, "synth")) rc = cmd_synth(argc - 1, argv + 1);
    else if (!strcmp(cmd, "pack")) rc = cmd_pack(argc - 1, argv + 1);
    else if (!strcmp(cmd, "inspect")) rc = cmd_inspect(argc - 1, argv + 1);
    else rc = qat_fail(QAT_EINPUT, "data: unknown command '%s', expected synth, pack or inspect", cmd);
    return rc ? qat_report(rc) : 0;
}
