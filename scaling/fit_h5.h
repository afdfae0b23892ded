/*
 * scaling/fit_h5.h — FIT.h5, the file a fit leaves for plots and for
 * `qat capacity --fit`.
 *
 * Layout (all datasets 1-D, chunked with fletcher32 or compact when empty;
 * strings fixed-length UTF-8, each string column with a `crc32` attribute and
 * `law`, `qat_version` with `law_crc32`, `qat_version_crc32`; files of an
 * earlier qat, with variable-length strings, are still read):
 *   root attributes  law, n_runs, rmse_log, loo_rmse_log, huber_delta, bootstrap
 *                    (resamples drawn), bootstrap_used (of those, the ones the
 *                    intervals rest on), seed, A, alpha, B, beta, E, gamma (quartet law only), and
 *                    cap_<type>_{L,F,C} for each capacity type fitted (quant, sparse, vq)
 *   /params          name, value, ci_lo, ci_hi, fixed, fixed_reason (every parameter;
 *                    fixed: 0 fitted, 1 --fix, 2 held because the runs cannot tell
 *                    it, fixed_reason then says why, else "")
 *   /runs            N, D, loss, pred, resid (ln L̂ − ln L), rho, weight_format,
 *                    act_format, grad_format (backward scheme key), origin
 *   /pairs           name ("W/A"), value (eff or ρ), ci_lo, ci_hi, cap_type,
 *                    cap_gmse, cap_power (the pair's point on the ρ(GMSE) plane:
 *                    k equal terms of one type → (gmse, value^(1/k)); type −1 none)
 *   /decoupled       for a unified fit: the decoupled law fitted to the same runs,
 *                    same datasets as /pairs plus attributes A … E and rmse_log —
 *                    its free effs are the points of the capacity plot
 *   /quartet         quartet law only, one row per W/A/G format key: key, eff_n,
 *                    eff_n_lo, eff_n_hi, eff_d, eff_d_lo, eff_d_hi (fp32 baselines 1)
 *   /formats         name, bits, rho (weight-only capacity under this fit), gmse,
 *                    in_data — the prices behind the frontier plot
 */
#ifndef QAT_SCALING_FIT_H5_H
#define QAT_SCALING_FIT_H5_H

#include "scaling/fit.h"
#include "scaling/report.h"

/* Write FIT.h5 through core/fsutil's qat_out: refused (QAT_EINPUT) when `path`
 * is one of inputs[0..n_inputs) or not a regular file; an I/O failure is
 * QAT_ERUNTIME naming the path and the reason, and leaves no partial file. */
int qat_fit_h5_write(const char *path, const qat_fit_report *rep, const char *const *inputs, int n_inputs);

/* A table of pairs as read back. */
typedef struct {
    int n;
    char (*name)[2 * QAT_FIT_FMT_LEN + 2];
    double *value, *lo, *hi, *gmse;
    int *type, *power;
} qat_fit_h5_pairs;

/* What the plots read back. */
typedef struct {
    char law[16];
    int n_runs;
    double A, alpha, B, beta, E;
    double gamma;                  /* quartet law's power; 1 for the other laws (0 = unset = 1) */
    double rmse_log;
    int has_cap[QAT_CAP_NTYPES];
    double cap[QAT_CAP_NTYPES][3]; /* L, F, C */
    double *N, *D, *loss, *pred, *rho;
    char (*wfmt)[QAT_FIT_FMT_LEN], (*afmt)[QAT_FIT_FMT_LEN];
    qat_fit_h5_pairs pairs, dec; /* dec.n == 0 without a decoupled companion */
    int n_fmt;
    char (*fmt)[QAT_FIT_FMT_LEN];
    double *fmt_bits, *fmt_rho;
    int *fmt_in_data;
    /* /params, for what the plots must say is held rather than fitted; a file
     * without /params (or without its fixed / fixed_reason columns, written
     * before rule 5) reads as n_params = 0 (or every fixed 0 / reason ""). */
    int n_params;
    char (*param)[2 * QAT_FIT_FMT_LEN + 8]; /* parameter names, as in the table */
    double *param_value;                   /* natural-scale values */
    int *param_fixed;                      /* QAT_FIT_FREE, QAT_FIT_BY_USER or QAT_FIT_BY_RULE */
    char (*param_why)[QAT_FIT_WHY_LEN];    /* the rule's reason, "" otherwise */
    char (*gfmt)[QAT_FIT_FMT_LEN];         /* per run: backward scheme key ("fp32" in older files) */
    double *effd;                          /* per run: effD of its W/A/G key (quartet), else 1 */
} qat_fit_h5;

/* QAT_OK; QAT_ERUNTIME naming the file and the part when it is damaged (a part
 * that is named in the file but cannot be read is damage, never absent);
 * QAT_EINPUT when it is no fit qat wrote. */
int qat_fit_h5_read(const char *path, qat_fit_h5 *f);

/* Only the capacity constants, for `qat capacity --fit`: (L, F, C) per type from
 * the root attributes cap_<type>_L/F/C (type = quant, sparse, vq); a type whose
 * attributes are absent keeps the value already in params (the published
 * constants by default). QAT_EINPUT when the file is not a fit (no `law`), a
 * triple is partial, a constant is outside what a fit can determine, or no
 * type has constants at all (a law without capacities: nothing to take). */
int qat_fit_h5_read_capacity(const char *path, qat_cap_params params[QAT_CAP_NTYPES]);
void qat_fit_h5_free(qat_fit_h5 *f);

/* L̂ of the file's law at (N, D) for a run of capacity multiplier rho (quartet:
 * rho = effN, with the fp32 backward, effD = 1). */
double qat_fit_h5_predict(const qat_fit_h5 *f, double N, double D, double rho);
/* The same with the quartet law's effD (1 for the other laws). */
double qat_fit_h5_predict_nd(const qat_fit_h5 *f, double N, double D, double effn, double effd);

#endif
