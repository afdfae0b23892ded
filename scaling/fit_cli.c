/*
 * scaling/fit_cli.c — the command lines of `qat fit` and `qat plot`.
 *
 * Only argument handling and the order of steps live here: read inputs →
 * drop/exclude → resolve formats → --fix → identifiability (refuse, or hold
 * capacity constants the data cannot tell) → fit (→ decoupled companion for a unified
 * fit, whose free effs the capacity plot shows against the tanh curve) →
 * table or JSON → CSV and FIT.h5. Every failure returns a code with a message
 * naming the option or the file (and line); nothing here calls exit(). The
 * outputs are checked against the inputs first and written atomically
 * (core/fsutil.h): an I/O failure is exit 1 and leaves no partial file.
 */
#include "scaling/fit_cli.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/num.h"
#if QAT_HAVE_COMPRESS
#include "compress/format.h"
#endif
#include "scaling/fit.h"
#include "scaling/fit_h5.h"
#include "scaling/inputs.h"
#include "scaling/plot.h"
#include "scaling/report.h"

static const char fit_usage[] =
    "usage: qat fit RUNS... [options]\n"
    "\n"
    "Fit L(N, D) = A*(N*rho)^-alpha + B*D^-beta + E (or the quartet law below) to training\n"
    "runs (docs/scaling-laws.md):\n"
    "Huber loss (delta 1e-3) on ln L, L-BFGS from Epoch AI's grid of starts, best kept.\n"
    "\n"
    "RUNS are run logs (run.h5 files, or directories searched for run.h5; only\n"
    "completed runs trained from scratch count, others, and runs started from a\n"
    "checkpoint with --init, are skipped with a warning) or CSV files with\n"
    "columns N,D,loss[,format[,act_format[,grad_format]]] (header optional; a header\n"
    "may instead name 'Model Size', 'Training FLOP' (D = FLOP/(6N)) and 'loss').\n"
    "A run's backward scheme is its compress.gradients.* (run logs) or grad_format\n"
    "(CSV): exactly fp32, or FORMAT[@sr][@hBLOCK] as qat train takes them (FORMAT\n"
    "int1..int8, ternary, fp4, mxfp4, mxfp6, mxfp8 or nvfp4; BLOCK a power of two\n"
    "from 2 to 1024), e.g. mxfp4@sr@h128. Values are range-checked: 0 < loss < 1000 nats,\n"
    "1 <= N, D < 1e20 (docs/files.md).\n"
    "\n"
    "options:\n"
    "  --law chinchilla|decoupled|unified|quartet|chen\n"
    "                      chinchilla: rho = 1; decoupled: one free eff per W/A format\n"
    "                      pair (fp32/fp32 = 1); unified: rho from the formats' GMSE with\n"
    "                      one (L, F, C) per compression type; quartet:\n"
    "                      L = (A*(N*effN)^-alpha + B*(D*effD)^-beta)^gamma + E, effN per\n"
    "                      W/A pair, effD per backward scheme (fp32 = 1). Default:\n"
    "                      quartet when the runs have more than one backward scheme (the\n"
    "                      other laws refuse such runs), else chinchilla when every run\n"
    "                      is fp32/fp32, else unified (decoupled when qat has no format\n"
    "                      library). chen: the QAT penalty of each W/A pair over its\n"
    "                      fp32/fp32 twin, k*D^gammaD*(log2 G)^gammaG/N^gammaN (Chen et al.\n"
    "                      2025); --fix gammaD|gammaN|gammaG, --bootstrap, --csv, --svg\n"
    "  --svg FIG.svg       chen: the penalty against D with the fitted law\n"
    "  --bootstrap N       N resamples over runs for 95% percentile intervals (default 0;\n"
    "                      at least 20; resamples that cannot tell an eff are dropped,\n"
    "                      and with fewer than 20 left no interval is given)\n"
    "  --seed S            bootstrap seed (default 0)\n"
    "  --fix NAME=VALUE    hold a parameter: A alpha B beta E, quant_L ... vq_C, L/F/C\n"
    "                      (all types), or a decoupled eff by its pair, e.g. int4/int4=0.7;\n"
    "                      quartet: gamma, effN:W/A, effD:G, e.g. effD:mxfp4@sr=0.9\n"
    "                      (G a backward scheme: @sr and @hB in either order)\n"
    "                      A fit the runs cannot identify is refused (exit 2) naming the\n"
    "                      axis: N or D with too few distinct values, or effs with no\n"
    "                      fp32/fp32 run; quartet: effN whose W/A has one N, effD whose\n"
    "                      backward scheme has one D. Unified (L, F, C) of a type with\n"
    "                      fewer than 3 distinct GMSE values are held at the published\n"
    "                      values and reported as such (docs/scaling-laws.md).\n"
    "  --exclude GLOB      drop runs GLOB matches, by its shape: one ending in .csv or .h5\n"
    "                      matches a run's file (its path as given, '*' crossing '/', e.g.\n"
    "                      '*old.csv'); any other the formats part by part ('*' not crossing\n"
    "                      '/'): one part the weight format, two the W/A pair, three the\n"
    "                      W/A/G key (G the backward scheme, e.g. '*/*/mxfp4*')\n"
    "  --where KEY=VALUE   keep only run logs whose stored config has this value for any\n"
    "                      config key (docs/config.md), e.g. --where data.source=synthetic\n"
    "                      --where model.seq_len=64; repeatable (all must hold);\n"
    "                      format keys compare formats (nvfp4@sr@46 = nvfp4@46@sr), the\n"
    "                      one in effect: mxfp4 is unrotated, mxfp4@h32 rotated\n"
    "  --mixed-data        fit runs trained on different data (source, corpus, vocab,\n"
    "                      seq_len) together; without it such a fit is refused (exit 2)\n"
    "  --drop-highest K    drop the K runs with the highest loss (Epoch drops 5)\n"
    "  --no-loo            skip the leave-one-out error\n"
    "  --json              print the JSON of docs/cli.md instead of the table\n"
    "  --json-out FILE     also write that JSON to FILE, stdout keeping the table (or the\n"
    "                      JSON with --json): one fit for both, one bootstrap\n"
    "  --out FIT.h5        write parameters, intervals, per-run predictions (for qat plot)\n"
    "  --csv FILE          write per-run N, D, loss, formats (grad_format too), rho,\n"
    "                      eff_d, prediction, residual ln(pred) - ln(loss) (a file, not -)\n"
    "  --help              this text\n";

static const char plot_usage[] =
    "usage: qat plot FIT.h5 --kind law|capacity|frontier -o FIG.svg\n"
    "\n"
    "  law       loss against N per format pair, with the fitted curves (log axes)\n"
    "  capacity  rho against GMSE: the fitted tanh curve per compression type and the\n"
    "            decoupled effs as points\n"
    "  frontier  capacity per bit against bits per parameter, naming the best format\n"
    "            under each bit budget\n"
    "A quartet fit has law plots only (one curve per W/A/G key at its effN and effD).\n"
    "options: --kind KIND, -o/--out FIG.svg (each once), --help\n";

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
    long long x;
    if (!qat_parse_ll(v, lo, hi, &x))
        return qat_fail(QAT_EINPUT, "%s %s: expected an integer in [%ld, %ld]", opt, v, lo, hi);
    *out = (long)x;
    return QAT_OK;
}

typedef struct {
    char **inputs;
    int n_inputs;
    const char *law, *out, *csv, *svg; /* svg: --law chen's figure */
    const char *json_out;               /* --json-out: the JSON document to a file, next to the table */
    const char **fix, **exclude, **where;
    int n_fix, n_exclude, n_where;
    int mixed_data; /* --mixed-data: runs on different data may be fitted together */
    long bootstrap, drop;
    uint64_t seed;
    int json, loo, help;
} fit_args;

/* fit's output options: the field option `o` fills and, in *what, what it expects (for
 * the error naming an empty one); NULL when `o` is none of them */
static const char **fit_out_opt(fit_args *a, const char *o, const char **what) {
    if (!strcmp(o, "--out")) return *what = "a file name to write the fit to (FIT.h5)", &a->out;
    if (!strcmp(o, "--csv")) return *what = "a file name to write the CSV to", &a->csv;
    if (!strcmp(o, "--json-out")) return *what = "a file name to write the JSON to", &a->json_out;
    if (!strcmp(o, "--svg")) return *what = "a file name to write the SVG figure to", &a->svg;
    return NULL;
}

static int parse_fit_args(int argc, char **argv, fit_args *a) {
    a->loo = 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = NULL, **dst, *what;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) a->help = 1;
        else if (!strcmp(o, "--json")) a->json = 1;
        else if (!strcmp(o, "--no-loo")) a->loo = 0;
        else if (!strcmp(o, "--law")) { QAT_TRY(qat_opt_value("fit", argc, argv, &i, &a->law)); }
        else if ((dst = fit_out_opt(a, o, &what))) {
            QAT_TRY(qat_opt_value("fit", argc, argv, &i, dst));
            char where[32];
            snprintf(where, sizeof where, "fit: %s", o);
            QAT_TRY(qat_in_check(where, *dst, what));
        }
        else if (!strcmp(o, "--bootstrap")) {
            QAT_TRY(qat_opt_value("fit", argc, argv, &i, &v));
            QAT_TRY(parse_int(o, v, 0, 1000000, &a->bootstrap));
        } else if (!strcmp(o, "--seed")) {
            QAT_TRY(qat_opt_value("fit", argc, argv, &i, &v));
            /* the config's rule for seeds (core/num.h), as every --seed */
            if (!qat_parse_u64(v, &a->seed)) return qat_fail(QAT_EINPUT, "%s %s: expected %s", o, v, QAT_U64_RULE);
        } else if (!strcmp(o, "--drop-highest")) {
            QAT_TRY(qat_opt_value("fit", argc, argv, &i, &v));
            QAT_TRY(parse_int(o, v, 0, 1000000000, &a->drop));
        } else if (!strcmp(o, "--fix")) {
            QAT_TRY(qat_opt_value("fit", argc, argv, &i, &v));
            a->fix[a->n_fix++] = v;
        } else if (!strcmp(o, "--exclude")) {
            QAT_TRY(qat_opt_value("fit", argc, argv, &i, &v));
            a->exclude[a->n_exclude++] = v;
        } else if (!strcmp(o, "--where")) {
            QAT_TRY(qat_opt_value("fit", argc, argv, &i, &v));
            a->where[a->n_where++] = v;
        } else if (!strcmp(o, "--mixed-data")) a->mixed_data = 1;
        else if (o[0] == '-' && o[1])
            return qat_fail(QAT_EINPUT, "unknown option '%s' (see qat fit --help)", o);
        else {
            QAT_TRY(qat_in_check("fit: an input", argv[i], "a run directory, a run.h5 or a CSV file"));
            a->inputs[a->n_inputs++] = argv[i];
        }
    }
    return QAT_OK;
}

/* A --fix name that holds a pair's eff (decoupled `W/A`, quartet `effN:W/A`) with
 * W and A in the canonical spelling the runs' keys use (compress/format.h:
 * `nvfp4@sr@46` is `nvfp4@46@sr`); any other name as it is. Before, W and A were
 * matched by their letters, so an equal format spelt another way was "no
 * parameter of that name". A side that is no format is exit 2 naming it. */
static int canonical_pair_name(const char *where, const char *name, char *out, size_t n) {
    const char *slash = strchr(name, '/');
    snprintf(out, n, "%s", name);
    if (!slash) return QAT_OK;
#if QAT_HAVE_COMPRESS
    const char *w0 = strncmp(name, "effN:", 5) ? name : name + 5;
    char side[2][QAT_FMT_MAX], canon[2][QAT_FMT_MAX];
    snprintf(side[0], sizeof side[0], "%.*s", (int)(slash - w0), w0);
    snprintf(side[1], sizeof side[1], "%s", slash + 1);
    for (int s = 0; s < 2; s++) {
        qat_fmt f;
        if (qat_fmt_parse(side[s], &f)) {
            char why[512];
            snprintf(why, sizeof why, "%s", qat_errmsg());
            char *nl = strchr(why, '\n');
            if (nl) *nl = 0;
            return qat_fail(QAT_EINPUT, "%s: the %s format '%s' of pair %s is not a format string of "
                            "docs/formats.md: %s", where, s ? "activation" : "weight", side[s], w0, why);
        }
        qat_fmt_print(&f, canon[s], sizeof canon[s]);
    }
    snprintf(out, n, "%.*s%s/%s", (int)(w0 - name), name, canon[0], canon[1]);
#else
    (void)where;
#endif
    return QAT_OK;
}

/* The VALUE of `--fix NAME=VALUE` (text): decimal or scientific notation, as a
 * CSV cell. A value whose text is not zero but which a double cannot hold as a
 * normal number (1e-400 reads as 0, 1e-310 as a subnormal that has lost its
 * digits) is refused with the text given: it was echoed back as `--fix
 * alpha=0`, a value nobody wrote. Not finite (inf, nan, 1e999) is left to the
 * caller, which names it as not finite. */
static int parse_fix_value(const char *fix, const char *text, double *v) {
    if (!qat_fit_parse_number(text, v))
        return qat_fail(QAT_EINPUT, "--fix %s: '%s' is not a number (decimal or scientific notation, as in a CSV)",
                        fix, text);
    const char *e = strpbrk(text, "eE");
    size_t mant = e ? (size_t)(e - text) : strlen(text);
    int nonzero = strcspn(text, "123456789") < mant;
    if (nonzero && isfinite(*v) && fabs(*v) < DBL_MIN)
        return qat_fail(QAT_EINPUT, "--fix %s: %s is too small for a double (it would be read as %g; the smallest "
                        "normal magnitude is %.3g); give a value of a size a fit can use", fix, text, *v, DBL_MIN);
    return QAT_OK;
}

static int apply_fixes(qat_fit_problem *p, const fit_args *a) {
    char (*names)[160] = qat_xcalloc((size_t)a->n_fix + 1, sizeof *names);
    /* which --fix holds each parameter: L, F, C alone hold that constant of
     * every type, so `--fix F=0.41 --fix quant_F=0.5` gives quant_F two values
     * (the later one used to win silently, as for one name given twice) */
    int *owner = qat_xmalloc((size_t)(p->np ? p->np : 1) * sizeof *owner);
    for (int k = 0; k < p->np; k++) owner[k] = -1;
    int rc = QAT_OK;
    for (int k = 0; k < a->n_fix && !rc; k++) {
        const char *eq = strrchr(a->fix[k], '=');
        if (!eq || eq == a->fix[k]) {
            rc = qat_fail(QAT_EINPUT, "--fix %s: expected NAME=VALUE", a->fix[k]);
            break;
        }
        snprintf(names[k], sizeof names[k], "%.*s", (int)(eq - a->fix[k]), a->fix[k]);
        /* the quartet law's effD:G by its scheme, whatever the order of its modifiers,
         * and a pair W/A (decoupled eff, quartet effN:W/A) by its formats' spelling */
        {
            char where[200], canon[sizeof names[k]];
            snprintf(where, sizeof where, "--fix %s", a->fix[k]);
            if (p->law == QAT_LAW_QUARTET && (rc = qat_fit_quartet_fix_name(where, names[k], canon, sizeof canon)))
                break;
            if (p->law != QAT_LAW_QUARTET) snprintf(canon, sizeof canon, "%s", names[k]);
            if ((rc = canonical_pair_name(where, canon, names[k], sizeof names[k]))) break;
        }
        /* Two values for one parameter: one of them was not meant (the last
         * used to win silently). Compared as the parameter they name. */
        for (int j = 0; j < k && !rc; j++)
            if (!strcmp(names[j], names[k]))
                rc = qat_fail(QAT_EINPUT, "--fix %s: %s is already held by --fix %s; give each parameter once",
                              a->fix[k], names[k], a->fix[j]);
        if (rc) break;
        double v;
        if ((rc = parse_fix_value(a->fix[k], eq + 1, &v))) break;
        int idx[QAT_CAP_NTYPES];
        int hits = qat_fit_fix_targets(p, names[k], idx);
        for (int j = 0; j < hits && !rc; j++) {
            int o = owner[idx[j]];
            if (o < 0) continue;
            const char *all = strlen(names[o]) == 1 ? names[o] : names[k]; /* the all-types form */
            rc = qat_fail(QAT_EINPUT, "--fix %s and --fix %s both hold %s (--fix %s holds the %s of every compression "
                          "type present); give each parameter once: --fix %s alone, or --fix %s with the other "
                          "types' %s given by name", a->fix[o], a->fix[k], p->name[idx[j]], all, all, all,
                          all == names[o] ? a->fix[k] : a->fix[o], all);
        }
        if (rc) break;
        for (int j = 0; j < hits; j++) owner[idx[j]] = k;
        rc = qat_fit_problem_fix(p, names[k], v);
    }
    free(names);
    free(owner);
    return rc;
}

/* The directory an output goes in must exist, and be writable for us, before
 * any work is done: it is the user's argument (exit 2), and a fit (a long
 * bootstrap, perhaps) is not run, nor its other outputs written, only to find
 * that out at the end. Writable, not just the file: the writers make NAME.tmp
 * beside it and rename (core/fsutil.h). access() answers for the real user,
 * which is ours (qat is never set-uid). */
static int qat_fit_out_dir_check(const char *opt, const char *path) {
    struct stat pst; /* an existing non-file (a directory, /dev/null) is named by qat_out_check, which follows */
    if (stat(path, &pst) == 0 && !S_ISREG(pst.st_mode)) return QAT_OK;
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, "."); /* the current directory */
    else snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    struct stat st;
    if (stat(dir, &st) != 0) {
        int e = errno;
        if (e == ENOENT)
            return qat_fail(QAT_EINPUT, "%s %s: the directory %s does not exist (create it first)", opt, path, dir);
        return qat_fail(QAT_EINPUT, "%s %s: cannot reach the directory %s: %s", opt, path, dir, strerror(e));
    }
    if (!S_ISDIR(st.st_mode)) return qat_fail(QAT_EINPUT, "%s %s: %s is not a directory", opt, path, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return qat_fail(QAT_EINPUT, "%s %s: cannot write in the directory %s: %s (choose a writable directory)",
                        opt, path, dir, strerror(errno));
    return QAT_OK;
}

/* --out and --csv may be neither an input (any run.h5 a directory holds
 * included), nor each other, nor a non-regular file; refused before the fit
 * so that a long bootstrap is not lost to a typo. */
/* out = the resolved directory of p plus its file name, so that x.csv, ./x.csv
 * and an absolute spelling compare equal before the file exists; 0 when p's
 * directory does not resolve (it is reported by qat_fit_out_dir_check). */
static int resolve_output(const char *p, char out[PATH_MAX]) {
    const char *slash = strrchr(p, '/'), *base = slash ? slash + 1 : p;
    char dir[PATH_MAX], rd[PATH_MAX];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == p ? 1 : (int)(slash - p), p);
    if (!realpath(dir, rd)) return 0;
    return snprintf(out, PATH_MAX, "%s/%s", rd, base) < PATH_MAX;
}

/* Two outputs of one command that would overwrite each other: 1 for the same
 * file however spelled, 2 when one is the other's write temporary (x and x.tmp:
 * the second writer would take the first's finished file for a stale
 * temporary), 0 otherwise. */
static int outputs_clash(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    if (!resolve_output(a, ra) || !resolve_output(b, rb)) return !strcmp(a, b);
    size_t la = strlen(ra), lb = strlen(rb);
    if (!strcmp(ra, rb)) return 1;
    if (la + 4 == lb && !strncmp(ra, rb, la) && !strcmp(rb + la, ".tmp")) return 2;
    return lb + 4 == la && !strncmp(ra, rb, lb) && !strcmp(ra + lb, ".tmp") ? 2 : 0;
}

/* Both exist and are one file (a hard or symbolic link to the other). */
static int same_existing(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int check_outputs(const fit_args *a) {
    char **files;
    int nf;
    QAT_TRY(qat_fit_input_files(a->inputs, a->n_inputs, &files, &nf));
    int rc = QAT_OK;
    if (a->out) rc = qat_fit_out_dir_check("--out", a->out);
    if (!rc && a->csv) rc = qat_fit_out_dir_check("--csv", a->csv);
    if (!rc && a->json_out) rc = qat_fit_out_dir_check("--json-out", a->json_out);
    if (!rc && a->json_out) rc = qat_out_check(a->json_out, (const char *const *)files, nf);
    /* two of the outputs on one file (however spelled, or through a link to an
     * existing one): the later write would replace the earlier (--svg too:
     * chen wrote its CSV, then refused the SVG over it, after the fit) */
    const char *outs[4] = {a->out, a->csv, a->json_out, a->svg}, *flag[4] = {"--out", "--csv", "--json-out", "--svg"};
    for (int i = 0; i < 4 && !rc; i++)
        for (int j = i + 1; j < 4 && !rc; j++) {
            if (!outs[i] || !outs[j]) continue;
            int k = outputs_clash(outs[i], outs[j]);
            if (k == 2)
                rc = qat_fail(QAT_EINPUT, "%s %s and %s %s: one is the other's temporary (NAME.tmp, written then "
                              "renamed); choose another name", flag[i], outs[i], flag[j], outs[j]);
            else if (k || same_existing(outs[i], outs[j]))
                rc = qat_fail(QAT_EINPUT, "%s and %s are the same file (%s, %s)", flag[i], flag[j], outs[i], outs[j]);
        }
    if (!rc && a->out) rc = qat_out_check_as(a->out, QAT_OUT_FIT, (const char *const *)files, nf);
    if (!rc && a->csv) rc = qat_out_check(a->csv, (const char *const *)files, nf);
    if (!rc && a->out && a->csv) {
        const char *o[1] = {a->out};
        if (!strcmp(a->out, a->csv)) rc = qat_fail(QAT_EINPUT, "--out and --csv are the same file (%s)", a->out);
        else if (qat_out_check(a->csv, o, 1)) rc = qat_fail(QAT_EINPUT, "--out %s and --csv %s are the same file", a->out, a->csv);
    }
    for (int i = 0; i < nf; i++) free(files[i]);
    free(files);
    return rc;
}

/* Append ", " (unless first) and the formatted text to buf, cut at cap. */
__attribute__((format(printf, 3, 4))) static void add_reason(char *buf, size_t cap, const char *fmt, ...) {
    size_t n = strlen(buf);
    if (n && n + 2 < cap) strcpy(buf + n, ", "), n += 2;
    va_list ap;
    va_start(ap, fmt);
    if (n < cap) vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

/* --law chen (law_chen.c): its own table, CSV and figure; no FIT.h5 or JSON. */
static int chen_body(const fit_args *a, const qat_fit_runs *rs) {
    if (a->out || a->json || a->json_out)
        return qat_fail(QAT_EINPUT, "%s: --law chen writes no FIT.h5 or JSON; use --csv FILE and --svg FIG.svg",
                        a->out ? "--out" : a->json ? "--json" : "--json-out");
    if (a->svg) {
        char **files;
        int nf;
        QAT_TRY(qat_fit_input_files(a->inputs, a->n_inputs, &files, &nf));
        int rc = qat_fit_out_dir_check("--svg", a->svg);
        if (!rc) rc = qat_out_check_as(a->svg, QAT_OUT_SVG, (const char *const *)files, nf);
        for (int i = 0; i < nf; i++) free(files[i]);
        free(files);
        QAT_TRY(rc);
    }
    const char **names = qat_xcalloc((size_t)a->n_fix + 1, sizeof *names);
    double *vals = qat_xcalloc((size_t)a->n_fix + 1, sizeof *vals);
    char (*buf)[64] = qat_xcalloc((size_t)a->n_fix + 1, sizeof *buf);
    int rc = QAT_OK;
    for (int k = 0; k < a->n_fix && !rc; k++) {
        const char *eq = strrchr(a->fix[k], '=');
        if (!eq || eq == a->fix[k] || !qat_fit_parse_number(eq + 1, &vals[k]))
            rc = qat_fail(QAT_EINPUT, "--fix %s: expected NAME=VALUE with a number (decimal or scientific notation, "
                          "as in a CSV)", a->fix[k]);
        else if (!(rc = parse_fix_value(a->fix[k], eq + 1, &vals[k])))
            snprintf(buf[k], sizeof buf[k], "%.*s", (int)(eq - a->fix[k]), a->fix[k]), names[k] = buf[k];
        /* as apply_fixes does for the other laws, in the user's own words */
        for (int j = 0; j < k && !rc; j++)
            if (!strcmp(names[j], names[k]))
                rc = qat_fail(QAT_EINPUT, "--fix %s: %s is already held by --fix %s; give each parameter once",
                              a->fix[k], names[k], a->fix[j]);
        if (!rc && !isfinite(vals[k]))
            rc = qat_fail(QAT_EINPUT, "--fix %s: value is not a finite number", names[k]);
    }
    qat_fit_chen_opts o = {.bootstrap = (int)a->bootstrap, .seed = (uint64_t)a->seed, .n_fix = a->n_fix,
                           .fix_name = names, .fix_value = vals, .csv = a->csv, .svg = a->svg,
                           .inputs = (const char *const *)a->inputs, .n_inputs = a->n_inputs};
    if (!rc) rc = qat_fit_chen(rs, &o, NULL, stdout, stderr);
    free(names); free(vals); free(buf);
    return rc;
}

static int fit_body(fit_args *a) {
    if (a->n_inputs == 0) return qat_fail(QAT_EINPUT, "no RUNS given (see qat fit --help)");
    /* '-' is not stdout here: the table or JSON goes there already */
    if (a->csv && !strcmp(a->csv, "-"))
        return qat_fail(QAT_EINPUT, "--csv -: the CSV is written to a file only (stdout has the table or --json); "
                        "give a file name");
    if (a->out && !strcmp(a->out, "-"))
        return qat_fail(QAT_EINPUT, "--out -: FIT.h5 is written to a file only; give a file name");
    if (a->json_out && !strcmp(a->json_out, "-"))
        return qat_fail(QAT_EINPUT, "--json-out -: for the JSON on stdout use --json; --json-out takes a file name");
    /* fewer resamples than this give 2.5/97.5 percentiles that are a few
     * extreme resamples, not an interval */
    if (a->bootstrap > 0 && a->bootstrap < QAT_FIT_MIN_BOOTSTRAP)
        return qat_fail(QAT_EINPUT, "--bootstrap %ld: at least %d resamples are needed for a 95%% percentile "
                        "interval (or 0 for none)", a->bootstrap, QAT_FIT_MIN_BOOTSTRAP);
    QAT_TRY(check_outputs(a));
    const qat_fit_resolver *res = qat_fit_default_resolver();
    qat_fit_runs rs = {0};
    int skipped = 0, rc;
    qat_fit_problem p = {0}, dp = {0};
    qat_fit_result r = {0}, dr = {0};
    qat_fit_report rep = {0};
    qat_fit_select *sel = NULL;
    int unselected = 0;
    if ((rc = qat_fit_select_new(a->where, a->n_where, &sel))) goto out;
    qat_fit_law named;
    if (a->law && strcmp(a->law, "chen") && (rc = qat_fit_law_parse(a->law, &named))) goto out; /* before any input */
    if ((rc = qat_fit_read_inputs_sel(a->inputs, a->n_inputs, &rs, &skipped, &unselected, stderr, sel))) goto out;
    int kept = rs.n; /* by --where, said with the result (a fit that fails prints none) */
    qat_fit_drop_highest(&rs, (int)a->drop);
    /* what took the runs away, for the message when too few are left */
    char gone[2048] = "";
    if (skipped) add_reason(gone, sizeof gone, "%d input%s skipped (see the warnings)", skipped, skipped == 1 ? "" : "s");
    if (unselected) add_reason(gone, sizeof gone, "%d not selected by --where", unselected);
    if (kept > rs.n) add_reason(gone, sizeof gone, "%d dropped by --drop-highest %ld", kept - rs.n, a->drop);
    for (int k = 0; k < a->n_exclude; k++) {
        int n = qat_fit_exclude(&rs, a->exclude[k]);
        if (n) add_reason(gone, sizeof gone, "%d dropped by --exclude '%s'", n, a->exclude[k]);
        else
            fprintf(stderr, "qat: warning: --exclude %s matched no run (a GLOB ending in .csv or .h5 matches a run's "
                    "file; any other its formats: one part the weight format, two the W/A pair, three the W/A/G "
                    "key)\n", a->exclude[k]);
    }
    if (rs.n < 3) {
        rc = qat_fail(QAT_EINPUT, "%d usable run%s after skipping, selecting and excluding%s%s%s; a fit needs at least 3",
                      rs.n, rs.n == 1 ? "" : "s", gone[0] ? " (" : "", gone, gone[0] ? ")" : "");
        goto out;
    }
    if ((rc = qat_fit_check_data(&rs, sel, a->mixed_data, stderr))) goto out;
    if (a->law && !strcmp(a->law, "chen")) { rc = chen_body(a, &rs); goto out; }
    if (a->svg) { rc = qat_fail(QAT_EINPUT, "--svg: only --law chen draws its figure here (see qat plot)"); goto out; }
    int all_dense = 1;
    for (int i = 0; i < rs.n; i++)
        all_dense &= !strcmp(rs.run[i].wfmt, "fp32") && !strcmp(rs.run[i].afmt, "fp32");
    const char *ga, *gb;
    int mixed_bwd = qat_fit_runs_mixed_bwd(&rs, &ga, &gb);
    qat_fit_law law = mixed_bwd   ? QAT_LAW_QUARTET
                      : all_dense ? QAT_LAW_CHINCHILLA
                      : res->terms ? QAT_LAW_UNIFIED : QAT_LAW_DECOUPLED;
    if (a->law && (rc = qat_fit_law_parse(a->law, &law))) goto out;
    if ((rc = qat_fit_check_bwd(&rs, law))) goto out;
    if (law == QAT_LAW_UNIFIED) {
        if ((rc = qat_fit_resolve_terms(&rs, res))) goto out;
    } else if (res->terms) {
        /* Only for the plots (a pair's point on the ρ plane); unknown formats are fine here. */
        qat_fit_runs probe = rs;
        for (int i = 0; i < rs.n; i++) {
            probe.run = &rs.run[i];
            probe.n = 1;
            if (qat_fit_resolve_terms(&probe, res)) { rs.run[i].n_terms = -1; qat_clear_error(); }
        }
    }
    if ((rc = qat_fit_problem_init(&p, law, &rs))) goto out;
    if ((rc = apply_fixes(&p, a))) goto out;
    if ((rc = qat_fit_identify(&p, stderr))) goto out;
    qat_fit_opts o = {.bootstrap = (int)a->bootstrap, .seed = (uint64_t)a->seed, .loo = a->loo};
    if ((rc = qat_fit_run_checked(&p, &o, &r, stderr))) goto out;

    rep = (qat_fit_report){.runs = &rs, .p = &p, .r = &r, .bootstrap = (int)a->bootstrap,
                           .seed = (unsigned long long)a->seed, .skipped = skipped};
    if (law == QAT_LAW_UNIFIED) {
        /* The decoupled law on the same runs, warm-started from the unified optimum
         * (its effs start at the unified ρ): the capacity plot's points. */
        if ((rc = qat_fit_problem_init(&dp, QAT_LAW_DECOUPLED, &rs))) goto out;
        double *warm = qat_xcalloc((size_t)dp.np, sizeof(double));
        memcpy(warm, r.theta, 5 * sizeof(double));
        for (int k = 0; k < dp.n_pairs; k++)
            if (dp.eff_of_pair[k] >= 0) warm[dp.eff_of_pair[k]] = log(r.pair_rho[k]);
        qat_fit_opts d = {.max_starts = 64, .warm = warm};
        rc = qat_fit_run_fit(&dp, &d, &dr);
        free(warm);
        if (rc) goto out;
        rep.dp = &dp;
        rep.dr = &dr;
    }
    qat_fit_report_prepare(&rep, res);
    /* the files first: a run whose output failed prints no result (no JSON
     * a script would take for success) */
    if (a->csv && (rc = qat_fit_write_csv(a->csv, &rep, (const char *const *)a->inputs, a->n_inputs))) goto out;
    if (a->out && (rc = qat_fit_h5_write(a->out, &rep, (const char *const *)a->inputs, a->n_inputs))) goto out;
    if (a->json_out) {
        qat_out jo;
        if ((rc = qat_out_begin(&jo, a->json_out, 0, (const char *const *)a->inputs, a->n_inputs))) goto out;
        qat_fit_print_json(qat_out_stream(&jo), &rep);
        if ((rc = qat_out_commit(&jo))) goto out;
    }
    if (a->n_where && !a->json)
        printf("--where kept %d run%s (%d other completed run%s not selected)\n", kept, kept == 1 ? "" : "s",
               unselected, unselected == 1 ? "" : "s");
    if (a->json) qat_fit_print_json(stdout, &rep);
    else qat_fit_print_table(stdout, &rep);
    fflush(stdout);
out:
    qat_fit_select_free(sel);
    qat_fit_report_free(&rep);
    qat_fit_result_free(&r);
    qat_fit_result_free(&dr);
    qat_fit_problem_free(&p);
    qat_fit_problem_free(&dp);
    qat_fit_runs_free(&rs);
    return rc;
}

int qat_fit_main(int argc, char **argv) {
    fit_args a = {0};
    a.inputs = qat_xcalloc((size_t)argc, sizeof *a.inputs);
    a.fix = qat_xcalloc((size_t)argc, sizeof *a.fix);
    a.exclude = qat_xcalloc((size_t)argc, sizeof *a.exclude);
    a.where = qat_xcalloc((size_t)argc, sizeof *a.where);
    qat_clear_error();
    /* --help wins over anything else on the line, as in every other command */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(fit_usage, stdout);
            free(a.inputs); free(a.fix); free(a.exclude); free(a.where);
            return 0;
        }
    int rc = parse_fit_args(argc, argv, &a);
    if (!rc && a.help) fputs(fit_usage, stdout);
    else if (!rc) rc = fit_body(&a);
    free(a.inputs); free(a.fix); free(a.exclude); free(a.where);
    return qat_report(rc);
}

int qat_plot_main(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *kind = NULL, *out_opt = "-o"; /* as spelled: -o or --out */
    int rc = QAT_OK;
    qat_clear_error();
    for (int i = 1; i < argc && !rc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) { fputs(plot_usage, stdout); return 0; }
        else if ((!strcmp(o, "--kind") && kind) || ((!strcmp(o, "-o") || !strcmp(o, "--out")) && out))
            rc = qat_fail(QAT_EINPUT, "%s given twice (one figure per qat plot)", o);
        else if (!strcmp(o, "--kind")) rc = qat_opt_value("plot", argc, argv, &i, &kind);
        else if (!strcmp(o, "-o") || !strcmp(o, "--out")) {
            out_opt = o;
            rc = qat_opt_value("plot", argc, argv, &i, &out);
        }
        else if (o[0] == '-' && o[1]) rc = qat_fail(QAT_EINPUT, "unknown option '%s' (see qat plot --help)", o);
        else if (in) rc = qat_fail(QAT_EINPUT, "one FIT.h5 only (got '%s' and '%s')", in, o);
        else in = o;
    }
    if (!rc && !in) rc = qat_fail(QAT_EINPUT, "no FIT.h5 given (see qat plot --help)");
    if (!rc) rc = qat_in_check("plot: FIT.h5", in, "a fit file (written by qat fit --out)");
    if (!rc && !out) rc = qat_fail(QAT_EINPUT, "no output given (-o FIG.svg)");
    if (!rc) rc = qat_in_check(!strcmp(out_opt, "-o") ? "plot: -o" : "plot: --out", out,
                               "a file name to write the SVG figure to (e.g. -o law.svg)");
    if (!rc && !kind) rc = qat_fail(QAT_EINPUT, "no --kind given (law, capacity or frontier)");
    qat_plot_kind k = QAT_PLOT_LAW;
    if (!rc) rc = qat_plot_kind_parse(kind, &k);
    if (rc) return qat_report(rc);
    /* '-' is not stdout here: --kind frontier prints its table there */
    if (!strcmp(out, "-"))
        return qat_report(qat_fail(QAT_EINPUT, "-o -: the figure is written to a file only; give a file name (e.g. "
                                   "-o %s.svg)", kind));
    const char *inputs[1] = {in};
    if ((rc = qat_fit_out_dir_check("-o", out)) || (rc = qat_out_check_as(out, QAT_OUT_SVG, inputs, 1))) return qat_report(rc);
    qat_fit_h5 f;
    if ((rc = qat_fit_h5_read(in, &f))) return qat_report(rc);
    rc = qat_fit_plot(&f, in, k, out, stdout);
    qat_fit_h5_free(&f);
    return qat_report(rc);
}
