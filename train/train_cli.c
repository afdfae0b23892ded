/*
 * train/train_cli.c — `qat train`: options in, trainer out (`qat eval` is eval_cli.c).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train_cli.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/num.h"
#include "core/stop.h"
#include "trainer.h"


static const char TRAIN_HELP[] =
    "usage: qat train CONFIG.yaml [--set key=value]... [--out DIR] [--init CKPT.h5] [--resume] [--print-config]\n"
    "                 [--quiet] [--stop-after N]\n"
    "\n"
    "Train one model. The run directory is DIR/NAME (DIR defaults to runs/, NAME is the config's\n"
    "`name`): run.h5 is the log (readable while the run is alive), ckpt.h5 the latest checkpoint.\n"
    "\n"
    "  --set key=value   override one dotted key, e.g. --set train.lr=1e-3 (repeatable)\n"
    "  --out DIR         parent directory of the run directory (default: runs)\n"
    "  --init CKPT.h5    start from that checkpoint's weights (same model shape) under this config,\n"
    "                    with a fresh optimizer and schedule; prints and records the loss of the\n"
    "                    starting point through this config's formats (PTQ loss) before step 0;\n"
    "                    the same as the key train.init, which it overrides and is recorded in\n"
    "  --resume          continue from DIR/NAME/ckpt.h5, bit-for-bit as if never stopped; needs no\n"
    "                    --init (the checkpoint, or before the first one run.h5, records the\n"
    "                    run's source); an --init naming that source, however spelled, only\n"
    "                    gets a note, another file is exit 2\n"
    "  --print-config    parse and validate the config (no model is built, no file opened), print it\n"
    "                    with every key (automatic values as given) and exit\n"
    "  --quiet           no progress output\n"
    "  --stop-after N    stop after N (>= 1) more steps with a checkpoint, as an interrupted run\n"
    "                    would, but exit 0: the stop was asked for (testing resume)\n";

/* A config that loads but cannot be trained (model.heads = 3 does not divide a
 * preset's dim) is only found once the model module resolves the preset, and
 * its message then names the config file. When the file alone is fine and an
 * override makes it fail, that override is the culprit: find the first --set
 * whose addition turns a trainable config into one that is not, and name it
 * instead of the file. */
static int blame_override(const char *path, const char *const *sets, int n_set, int rc) {
    if (rc != QAT_EINPUT || n_set == 0) return rc;
    char msg[4096];
    snprintf(msg, sizeof msg, "%s", qat_errmsg());
    size_t plen = strlen(path);
    /* Only a message that blames the file itself is re-attributed: "FILE: what" or, when
     * the check named the line of a key, "FILE:LINE:COL: what". */
    if (strncmp(msg, path, plen)) return rc;
    const char *body = msg + plen;
    int line, col, used = 0;
    if (!strncmp(body, ": ", 2)) body += 2;
    else if (sscanf(body, ":%d:%d: %n", &line, &col, &used) == 2 && used > 0) body += used;
    else return rc;
    qat_config *c = qat_xmalloc(sizeof *c);
    int culprit = -1, k;
    for (k = 0; k <= n_set; k++)
        if (qat_config_load(path, sets, k, c) || qat_train_validate(c)) break;
    free(c);
    culprit = k - 1;
    /* the file alone fails (k = 0), or nothing failed (not reproduced): keep the original */
    if (culprit < 0 || k > n_set) return qat_fail(rc, "%s", msg);
    return qat_fail(rc, "--set %s: %s", sets[culprit], body);
}

int qat_train_main(int argc, char **argv) {
    const char *path = NULL, *sets[QAT_MAX_SETS];
    int n_set = 0, print_config = 0, quiet = 0;
    qat_train_opts opts = {.out_dir = "runs", .resume = 0, .progress = isatty(2) ? 1 : 0, .stop_after = 0,
                           .init = NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(TRAIN_HELP, stdout); return 0; }
        else if ((!strcmp(a, "--set") && qat_opt_has_value(argc, argv, i)) || !strncmp(a, "--set=", 6)) {
            /* Both spellings fill the same fixed array, so both are bounded. */
            if (n_set == QAT_MAX_SETS) return qat_report(qat_fail(QAT_EINPUT, "too many --set options (at most %d)", QAT_MAX_SETS));
            sets[n_set++] = a[5] == '=' ? a + 6 : argv[++i];
        } else if (!strcmp(a, "--out") && qat_opt_has_value(argc, argv, i)) opts.out_dir = argv[++i];
        else if (!strcmp(a, "--init") && qat_opt_has_value(argc, argv, i)) {
            opts.init = argv[++i];
            /* "" would be read as a file name only to fail as one */
            if (!opts.init[0]) return qat_report(qat_in_check("train: --init", opts.init, "a checkpoint file (ckpt.h5)"));
        }
        else if (!strcmp(a, "--resume")) opts.resume = 1;
        else if (!strcmp(a, "--print-config")) print_config = 1;
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--stop-after") && qat_opt_has_value(argc, argv, i)) {
            /* strtoll alone would read "x" as 0 and "-1" as "never": both silently off. */
            const char *v = argv[++i];
            char *end;
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (!*v || isspace((unsigned char)*v) || *end || errno || n < 1)
                return qat_report(qat_fail(QAT_EINPUT, "--stop-after %s: expected a whole number of steps >= 1", v));
            opts.stop_after = n;
        }
        else if (a[0] == '-') {
            fprintf(stderr, "qat train: unknown or incomplete option '%s'\n\n%s", a, TRAIN_HELP);
            return 2;
        } else if (!path) path = a;
        else {
            fprintf(stderr, "qat train: one config file expected, got '%s' and '%s'\n", path, a);
            return 2;
        }
    }
    if (!path) { fprintf(stderr, "qat train: missing CONFIG.yaml\n\n%s", TRAIN_HELP); return 2; }
    int rc = qat_in_check("train: CONFIG", path, "a YAML config file");
    /* "" would put the run at /NAME, the file-system root */
    if (!rc) rc = qat_in_check("train: --out", opts.out_dir, "a directory (--out . for this one)");
    if (rc) return qat_report(rc);
    if (quiet) opts.progress = -1;
    /* A run stops cleanly on SIGINT/SIGTERM/SIGPIPE from here, before the config is
     * read (the trainer installed the handlers only after it, and a signal in
     * between killed the command): core/stop.h. Not --print-config, which runs
     * nothing and dies of them like any other command. */
    if (!print_config) qat_stop_catch(QAT_STOP_PIPE);
    qat_config cfg;
    rc = qat_config_load(path, sets, n_set, &cfg);
    if (rc) return qat_report(rc);
    /* --init is train.init given on the command line: it overrides the key and is
     * written into it, so the config every checkpoint and run.h5 store says how
     * the run began (and a resume compares the two spellings as one) */
    if (opts.init) {
        if (strlen(opts.init) >= sizeof cfg.train.init)
            return qat_report(qat_fail(QAT_EINPUT, "--init %.80s...: the path is longer than %zu bytes, expected a "
                                       "shorter one", opts.init, sizeof cfg.train.init - 1));
        snprintf(cfg.train.init, sizeof cfg.train.init, "%s", opts.init);
    }
    /* A --resume that finds its checkpoint continues a run already made: checks added
     * since refuse new runs only (core/config.h, stored), or the run could never go on */
    if (opts.resume && !print_config) {
        char ck[QAT_PATH_MAX * 2 + 16];
        snprintf(ck, sizeof ck, "%s/%s/ckpt.h5", opts.out_dir ? opts.out_dir : "runs", cfg.name);
        if (access(ck, F_OK) == 0) qat_config_mark_stored(&cfg);
    }
    if ((rc = qat_train_validate(&cfg))) return qat_report(blame_override(path, sets, n_set, rc));
    if (print_config) {
        char *y = qat_config_to_yaml(&cfg);
        fputs(y, stdout);
        free(y);
        return 0;
    }
    if (!opts.init && cfg.train.init[0]) opts.init = cfg.train.init, opts.init_from_key = 1;
    return qat_report(qat_train_run(&cfg, &opts));
}
