/*
 * scaling/capacity_cli.c — the `qat capacity` command (docs/cli.md).
 *
 * A front end that combines the two floors: formats priced by compress/
 * (GMSE, ρ, bits) under capacity constants a fit stored (FIT.h5, read by
 * fit_h5.c next to its writer). It lives in scaling/ because compress/ must
 * not reach up to fits.
 *
 * One row per format: the whole format's GMSE (± Monte-Carlo standard error, 0
 * when exact), ρ as the product of its capacity terms taken from that same
 * estimate (--samples and --seed apply to both), and bits per parameter
 * (conventions in capacity.c). --json prints the docs/cli.md array instead.
 *
 * On a terminal, a live line on stderr names the format being estimated: some
 * take seconds (vq builds its codebook, aq fits its books: aq4x8g32 ~20 s) and
 * the table showed nothing meanwhile. It is erased before the row prints, and
 * never written elsewhere, so a pipe or file gets the table alone (train and
 * sweep keep their live lines to terminals the same way).
 *
 * --fit FIT.h5: the per-type capacity constants of a fit (qat_fit_h5_read_capacity).
 * Types missing from the file fall back to the published Llama/C4 constants
 * (L = 1, F = 0.41, C = 1.39); a fit with none at all is refused (it would
 * change nothing, and look as if it had).
 */
#include "scaling/capacity_cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/format.h"
#include "compress/format_table.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/num.h"
#include "scaling/fit_h5.h"

#define QAT_CAPACITY_MIN_SAMPLES 65536LL      /* two Monte-Carlo tensors of 256 × 128 */
#define QAT_CAPACITY_MAX_SAMPLES (1LL << 34) /* hours of Monte Carlo already */

static void usage(FILE *f) {
    fprintf(f,
            "usage: qat capacity FORMAT... [--samples N] [--seed S] [--fit FIT.h5] [--json]\n"
            "\n"
            "Gaussian MSE (exact, or Monte Carlo with its standard error), capacity\n"
            "rho = L*tanh(F*log_{1/4} GMSE)^C (product over a composite's parts) from that\n"
            "same estimate, and bits per parameter of each format.\n"
            "\n"
            "  --samples N   Monte-Carlo samples, 65536..17179869184, drawn in whole tensors\n"
            "                of 32768 values (nvfp4: of 2^22, so its tensor scale is typical)\n"
            "                (default 2097152); for the GMSE and the rho from it\n"
            "  --seed S      Monte-Carlo seed, 0..18446744073709551615 (1e3 as well)\n"
            "  --fit FIT.h5  take L, F, C per type from a fit (attributes cap_TYPE_L/F/C)\n"
            "  --json        one JSON array on stdout instead of the table\n"
            "\nBits count every per-block scale (mxfp4 4.25, nvfp4 4.5, int4@g128 4.125);\n"
            "'tensor bits' are stored once per tensor (nvfp4's fp32 scale: 32).\n"
            "\nformat grammar (docs/formats.md):\n%s",
            qat_fmt_grammar());
}

int qat_capacity_main(int argc, char **argv) {
    long long samples = 0;
    uint64_t seed = 0;
    int json = 0;
    const char *fit = NULL;
    const char **fmts = calloc((size_t)argc + 1, sizeof *fmts);
    int nf = 0, rc = QAT_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            free(fmts);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--samples") || !strcmp(a, "--seed") || !strcmp(a, "--fit")) {
            const char *v = NULL;
            if ((rc = qat_opt_value("capacity", argc, argv, &i, &v))) break;
            if (!strcmp(a, "--samples")) {
                /* The Monte Carlo draws whole tensors of 256 rows × 128 values and
                 * needs two for a standard error; fewer samples cannot be honoured.
                 * A count, as every count option and key is: 2e6 as well as 2000000. */
                if (!qat_parse_count(v, (double)QAT_CAPACITY_MIN_SAMPLES, (double)QAT_CAPACITY_MAX_SAMPLES, &samples))
                    rc = qat_fail(QAT_EINPUT, "capacity: --samples %s: expected a whole number in [%lld, %lld] (e.g. "
                                  "2097152 or 2e6; the Monte Carlo draws whole tensors of 32768 values, at least two)",
                                  v, (long long)QAT_CAPACITY_MIN_SAMPLES, (long long)QAT_CAPACITY_MAX_SAMPLES);
            } else if (!strcmp(a, "--seed")) {
                /* the config's rule for seeds (core/num.h): 2^64 − 1 and 1e3 as `seed:` takes them */
                if (!qat_parse_u64(v, &seed))
                    rc = qat_fail(QAT_EINPUT, "capacity: --seed %s: expected %s", v, QAT_U64_RULE);
            } else {
                fit = v;
            }
        } else if (a[0] == '-' && a[1] == '-') {
            rc = qat_fail(QAT_EINPUT, "capacity: unknown option '%s', expected --samples, --seed, --fit, --json or --help", a);
        } else {
            fmts[nf++] = a;
        }
    }
    if (!rc && fit) rc = qat_in_check("capacity: --fit", fit, "a fit file (FIT.h5, written by qat fit --out)");
    if (!rc && nf == 0) rc = qat_fail(QAT_EINPUT, "capacity: no format given; valid formats: %s", qat_fmt_valid_list());
    /* validate every format before any (possibly slow) computation; the table
     * names each by its canonical spelling (modifiers in the grammar's order),
     * its first column as wide as the longest name */
    char(*names)[QAT_FMT_MAX] = qat_xcalloc((size_t)(nf ? nf : 1), sizeof *names);
    int width = 14; /* the old fixed width, kept for names that fit */
    for (int i = 0; i < nf && !rc; i++) {
        qat_fmt f;
        rc = qat_fmt_parse(fmts[i], &f);
        if (!rc) {
            snprintf(names[i], sizeof names[i], "%s", f.name);
            if ((int)strlen(f.name) > width) width = (int)strlen(f.name);
        }
    }
    qat_cap_params params[QAT_CAP_NTYPES] = {QAT_CAP_PUBLISHED, QAT_CAP_PUBLISHED, QAT_CAP_PUBLISHED};
    if (!rc && fit) rc = qat_fit_h5_read_capacity(fit, params);
    if (rc) {
        free(fmts);
        free(names);
        return qat_report(rc);
    }
    if (json) printf("[");
    else printf("%-*s %12s %10s %8s %8s %12s\n", width, "format", "gmse", "± mc", "rho", "bits", "tensor bits");
    int live = isatty(2);
    fflush(stdout); /* the header before the live line, when both are the terminal */
    for (int i = 0; i < nf; i++) {
        qat_fmt_est est;
        double bits;
        if (live) {
            fprintf(stderr, "\r\033[Kqat capacity: format %d of %d, %s: estimating its Gaussian MSE...", i + 1, nf,
                    names[i]);
            fflush(stderr);
        }
        /* ρ from the terms of this very estimate, so it follows from the GMSE shown */
        rc = qat_fmt_estimate(fmts[i], samples, seed, params, &est);
        if (live) fputs("\r\033[K", stderr);
        if (rc || (rc = qat_fmt_bits(fmts[i], &bits))) {
            free(fmts);
            free(names);
            return qat_report(rc);
        }
        qat_fmt f;
        double tensor_bits = 0;
        if (!qat_fmt_parse(fmts[i], &f)) qat_fmt_bits_parsed(&f, &tensor_bits);
        if (json)
            printf("%s{\"format\": \"%s\", \"gmse\": %.6g, \"gmse_err\": %.3g, \"rho\": %.4f, \"bits\": %.4g, "
                   "\"tensor_bits\": %g}", i ? ", " : "", names[i], est.gmse, est.gmse_err, est.rho, bits, tensor_bits);
        else
            printf("%-*s %12.6g %10.2g %8.4f %8.4g %12g\n", width, names[i], est.gmse, est.gmse_err, est.rho, bits,
                   tensor_bits);
        fflush(stdout); /* each row as it is known, not all at the end through a pipe's buffer */
    }
    if (json) printf("]\n");
    free(fmts);
    free(names);
    return 0;
}
