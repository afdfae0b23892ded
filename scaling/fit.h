/*
 * scaling/fit.h — scaling-law fits over a set of training runs (docs/scaling-laws.md).
 *
 * Three laws share one shape, L = A·(N·ρ)^-α + B·D^-β + E, and differ only in
 * where the capacity multiplier ρ of a run comes from:
 *   chinchilla  ρ = 1 for every run;
 *   decoupled   ρ = eff of the run's weight/act format pair, one free eff per
 *               pair, fp32/fp32 held at 1 (Frantar et al. 2025, QuEST);
 *   unified     ρ = Π over the capacity terms of both formats of
 *               L_t·tanh(F_t·log_{1/4} gmse)^C_t, one (L, F, C) per type t.
 * The fourth, quartet (Castro et al. 2025), prices the backward pass too:
 *   L = (A·(N·effN)^-α + B·(D·effD)^-β)^γ + E, effN per forward pair (ρ, as
 *   decoupled), effD per backward scheme, fp32/fp32 and fp32 held at 1
 *   (scaling/law_quartet.c).
 *
 * The fit works in an internal parameter vector θ in which every positive
 * quantity is a logarithm (a = ln A, b = ln B, e = ln E, ln eff, ln L, ln F,
 * ln C), so the optimiser never leaves the valid region and the prediction is a
 * log-sum-exp of three linear-ish terms — the form Hoffmann et al. and Epoch AI
 * fit, which keeps the Huber residual on log L well conditioned.
 *
 * Runs carry their capacity terms explicitly (filled from the format strings
 * by a resolver), so the law code never parses formats and tests can pass
 * GMSE values directly.
 */
#ifndef QAT_SCALING_FIT_H
#define QAT_SCALING_FIT_H

#include <stdint.h>
#include <stdio.h>

#include "compress/capacity.h"

#define QAT_FIT_FMT_LEN 64      /* longest format string kept per run */
#define QAT_FIT_MAX_TERMS 8     /* capacity terms of weight + act format together */
#define QAT_FIT_HUBER_DELTA 1e-3 /* docs/scaling-laws.md */
#define QAT_FIT_SCREENED_STARTS 48 /* default starts of laws with capacity parameters */
#define QAT_FIT_MIN_BOOTSTRAP 20 /* fewest --bootstrap resamples for a 95% interval (docs/cli.md) */
#define QAT_FIT_WHY_LEN 512     /* longest reason kept for a parameter held by rule */

typedef enum { QAT_LAW_CHINCHILLA = 0, QAT_LAW_DECOUPLED = 1, QAT_LAW_UNIFIED = 2, QAT_LAW_QUARTET = 3 } qat_fit_law;
#define QAT_FIT_NLAWS 4
#define QAT_FIT_KEY_LEN (3 * QAT_FIT_FMT_LEN + 3) /* "W/A/G" */

/* One training run as the fit sees it. */
typedef struct {
    double N;                          /* non-embedding parameters */
    double D;                          /* training tokens */
    double loss;                       /* final validation loss (nats/token) */
    char wfmt[QAT_FIT_FMT_LEN];        /* weight format ("fp32" when dense) */
    char afmt[QAT_FIT_FMT_LEN];        /* activation format */
    int n_terms;                       /* capacity terms of wfmt then afmt; -1 = unresolved */
    qat_cap_term terms[QAT_FIT_MAX_TERMS];
    char origin[256];                  /* file or file:line, named in messages */
    char gfmt[QAT_FIT_FMT_LEN];        /* backward scheme key (qat_fit_bwd_key; "" = fp32) */
    unsigned char from_csv;            /* a CSV row (no stored config: --where cannot select it) */
} qat_fit_run;

/* The backward scheme key of compress.gradients.{format, rounding, hadamard}
 * (docs/scaling-laws.md): "fp32" when format is fp32, else the format, then
 * "@sr" for stochastic rounding, then "@h<block>" for a Hadamard block, e.g.
 * "mxfp4", "mxfp4@sr", "mxfp4@sr@h128". */
void qat_fit_bwd_key(char out[QAT_FIT_FMT_LEN], const char *format, const char *rounding, int hadamard);
/* Check and normalize a backward scheme key written by a user (a CSV's
 * grad_format) or composed from a run log's config: exactly "fp32" (or ""),
 * or FORMAT with at most one "@sr" and one "@hBLOCK" in either order, taken
 * apart into compress.gradients.{format, rounding, hadamard} and checked by
 * the trainer's own qat_gradq_init (compress/gradq.h), so a scheme qat train
 * refuses is refused here. Case is not folded. QAT_EINPUT naming `where`
 * (file:line:column), the value and what was wrong; the key into out in
 * qat_fit_bwd_key's spelling (mxfp4@h16@sr becomes mxfp4@sr@h16). */
int qat_fit_bwd_check(const char *where, const char *s, char out[QAT_FIT_FMT_LEN]);
/* A run's backward scheme key ("fp32" for ""). */
const char *qat_fit_run_bwd(const qat_fit_run *r);

/* The values a fit accepts (docs/files.md, "CSV inputs"): a loss in nats per
 * token in (0, QAT_FIT_MAX_LOSS) — the uniform guess over any real vocabulary
 * costs ln V < 30 nats, so 1000 is only a typo or a unit (bits, perplexity,
 * a sum over tokens) — and N, D in [1, QAT_FIT_MAX_COUNT): one parameter or
 * token at least, and 1e20 is far beyond any training run while keeping
 * N·eff, D^-β and the plots' padded log axes finite. */
#define QAT_FIT_MAX_LOSS 1e3
#define QAT_FIT_MAX_COUNT 1e20
/* QAT_EINPUT "WHERE: WHAT V is out of range ..." unless v is in the range of
 * a loss (is_loss) or of N/D. */
int qat_fit_check_range(const char *where, const char *what, int is_loss, double v);

typedef struct {
    qat_fit_run *run; /* growable array */
    int n, cap;
} qat_fit_runs;

void qat_fit_runs_push(qat_fit_runs *rs, const qat_fit_run *r);
void qat_fit_runs_free(qat_fit_runs *rs);
/* The runs hold more than one backward scheme: *a and *b receive two of them. */
int qat_fit_runs_mixed_bwd(const qat_fit_runs *rs, const char **a, const char **b);

/* Turns a format string into capacity terms and bits per parameter. The default
 * one is backed by compress/ (qat_fmt_capacity_terms, qat_fmt_bits) when qat is
 * built with it; tests may pass their own. NULL members mean "unknown". */
typedef struct {
    int (*terms)(const char *fmt, qat_cap_term *terms, int max_terms, int *n_terms);
    int (*bits)(const char *fmt, double *bits);
} qat_fit_resolver;

const qat_fit_resolver *qat_fit_default_resolver(void);

/* Fill run->terms from the formats; QAT_EINPUT naming the run for an unknown format. */
int qat_fit_resolve_terms(qat_fit_runs *rs, const qat_fit_resolver *res);

/* The problem: runs reduced to what the law needs, plus the parameter layout. */
typedef struct {
    qat_fit_law law;
    int n;                 /* runs */
    double *logN, *logD, *logL;
    int *pair_of;          /* run → index into pair[] */
    int n_pairs;
    char (*pair)[2 * QAT_FIT_FMT_LEN + 2]; /* "W/A", sorted */
    int *pair_run;         /* a representative run of each pair (for its terms) */
    int *eff_of_pair;      /* decoupled: θ index of ln eff, -1 for fp32/fp32 */
    int type_off[QAT_CAP_NTYPES]; /* unified: θ index of (ln L, ln F, ln C), -1 absent */
    int *nt;               /* unified: terms per run */
    int *tt;               /* (n, QAT_FIT_MAX_TERMS) term types */
    double *tx;            /* (n, QAT_FIT_MAX_TERMS) log_{1/4} gmse (inf when exact) */
    int np;                /* length of θ */
    char (*name)[2 * QAT_FIT_FMT_LEN + 8]; /* natural-scale parameter names */
    unsigned char *is_log; /* θ_k = ln(value_k) */
    unsigned char *fixed;  /* QAT_FIT_FREE, or held at fixval: QAT_FIT_BY_USER (--fix) or
                              QAT_FIT_BY_RULE (qat_fit_identify: the data cannot tell it) */
    double *fixval;        /* internal (θ-scale) value of fixed parameters */
    char (*why)[QAT_FIT_WHY_LEN]; /* for QAT_FIT_BY_RULE: the reason, printed and stored */
    /* quartet only (eff_of_pair above holds the θ index of ln effN): */
    int n_bwd;             /* backward schemes */
    char (*bwd)[QAT_FIT_FMT_LEN]; /* their keys, sorted */
    int *bwd_of;           /* run → index into bwd[] */
    int *effd_of_bwd;      /* θ index of ln effD, -1 for fp32 */
    int n_keys;            /* distinct W/A/G format keys of the runs */
    char (*key)[QAT_FIT_KEY_LEN]; /* "W/A/G", sorted */
    int *key_pair, *key_bwd; /* per key: its pair and backward scheme */
} qat_fit_problem;

/* Why a parameter does not move (qat_fit_problem.fixed). */
enum { QAT_FIT_FREE = 0, QAT_FIT_BY_USER = 1, QAT_FIT_BY_RULE = 2 };

/* Indices of the five law parameters in θ. */
enum { QAT_FIT_A = 0, QAT_FIT_ALPHA = 1, QAT_FIT_B = 2, QAT_FIT_BETA = 3, QAT_FIT_E = 4 };
/* The quartet law's sixth shared parameter (natural scale, like α and β). */
enum { QAT_FIT_GAMMA = 5 };

/* Build the problem; for the unified law every run needs resolved terms. */
int qat_fit_problem_init(qat_fit_problem *p, qat_fit_law law, const qat_fit_runs *rs);
void qat_fit_problem_free(qat_fit_problem *p);

/* "--fix name=value" in natural units; names: A alpha B beta E, quant_L … vq_C,
 * L/F/C (every type present), "W/A" effs of the decoupled law, and gamma,
 * effN:W/A and effD:G of the quartet law. */
int qat_fit_problem_fix(qat_fit_problem *p, const char *name, double value);
/* The θ indices a --fix name holds (into idx, room for QAT_CAP_NTYPES): one
 * parameter, or for L, F or C alone that constant of every type present (so
 * `--fix F=…` and `--fix quant_F=…` overlap); 0 when the name is none. */
int qat_fit_fix_targets(const qat_fit_problem *p, const char *name, int *idx);

/* Can the runs tell every free parameter apart (identify.c, docs/scaling-laws.md)?
 * Call after the user's --fix. An axis that does not vary enough (N or D with
 * too few distinct values) or effs with no fp32/fp32 anchor is QAT_EINPUT naming
 * the axis and the --fix that would cure it. For the unified law, a type whose
 * formats show too few distinct GMSE values for its (L, F, C), or whose L trades
 * off against A or another type's L, gets those constants held at the published
 * Llama/C4 values (fixed = QAT_FIT_BY_RULE, reason in why[]), announced on
 * `note` (may be NULL). Finally more free parameters than distinct
 * (N, D, format pair) points is QAT_EINPUT. */
int qat_fit_identify(qat_fit_problem *p, FILE *note);

/* Law: predicted ln L of run i; adds scale·∂/∂θ to grad when grad != NULL. */
double qat_fit_predict(const qat_fit_problem *p, const double *theta, int i, double *grad,
                       double scale);
/* The same from a known ln ρ of the run (every run of a format pair shares it);
 * w (may be NULL) receives the softmax weights of the three terms. */
double qat_fit_predict_given_rho(const qat_fit_problem *p, const double *theta, int i, double lr, double w[3]);
/* Adds scale·∂ln ρ_i/∂θ to grad. */
void qat_fit_log_rho_grad(const qat_fit_problem *p, const double *theta, int i, double *grad, double scale);
/* ln ρ of run i (0 for chinchilla). */
double qat_fit_log_rho(const qat_fit_problem *p, const double *theta, int i);
/* ρ for one capacity term of type t under θ (unified law only). */
double qat_fit_cap_rho(const qat_fit_problem *p, const double *theta, int type, double gmse);

/* Σ_i w_i·Huber_δ(ln L̂_i − ln L_i); gradient into g (may be NULL); w NULL = all 1.
 * Fixed parameters get zero gradient, so the optimiser never moves them. */
double qat_fit_objective(const qat_fit_problem *p, const double *theta, const double *w, double *g);
double qat_fit_huber(double r, double delta, double *dr);

/* Natural-scale value of parameter k. */
double qat_fit_value(const qat_fit_problem *p, const double *theta, int k);

/* Options and result of a fit. */
typedef struct {
    int bootstrap;        /* resamples (0 = none) */
    uint64_t seed;        /* bootstrap seed: resample b uses qat_rng_make(seed, b) */
    int loo;              /* compute the leave-one-out error */
    int boot_starts;      /* extra starts per resample besides the warm start (default 3) */
    int max_starts;       /* grid starts run to convergence, best by starting objective:
                             0 = default (all for chinchilla, QAT_FIT_SCREENED_STARTS otherwise), −1 = all */
    const double *warm;   /* optional extra start θ (e.g. from a related fit), tried after the grid */
} qat_fit_opts;

typedef struct {
    int np;
    double *theta;        /* best θ on all runs */
    double objective;     /* its Huber sum */
    double rmse_log;      /* √mean (ln L̂ − ln L)² */
    double loo_rmse_log;  /* leave-one-out version (NaN when not computed) */
    int n_boot;           /* resamples used: converged, and drew runs that tell every free eff */
    int n_boot_dropped;   /* resamples left out because they could not tell an eff (bootstrap.c) */
    double *boot;         /* (n_boot, np) natural-scale values */
    double *lo, *hi;      /* 2.5 / 97.5 percentiles (NaN without bootstrap) */
    double *pred;         /* per run: L̂ */
    double *resid;        /* per run: ln L̂ − ln L */
    double *rho;          /* per run: capacity multiplier (eff or ρ; 1 for chinchilla) */
    double *pair_rho;     /* per pair: its fitted eff / ρ */
    double *pair_lo, *pair_hi; /* per pair: percentile interval of eff / ρ */
    double seconds;       /* wall time of the whole fit */
} qat_fit_result;

/* Multistart L-BFGS from the docs/scaling-laws.md grid (best start kept), then bootstrap
 * and leave-one-out as asked. */
int qat_fit_run_fit(const qat_fit_problem *p, const qat_fit_opts *o, qat_fit_result *r);
void qat_fit_result_free(qat_fit_result *r);

/* The full-data fit, checked (identify.c, docs/scaling-laws.md rule 5): after the
 * fit, every free parameter is profiled — held a factor 1000 (α, β: a factor
 * 1000 toward 0 or up) away from its fitted value toward each of its bounds with
 * the others refitted. If the fit stays as good within the runs' noise, the
 * parameter only ran toward a bound and is not identified: a unified (L, F, C)
 * constant is then held at the published value (QAT_FIT_BY_RULE, announced on
 * `note`) and the fit redone; any other parameter (A, alpha, B, beta, E, an
 * eff), or a fitted exponent ≤ 0, is QAT_EINPUT naming it and the --fix that
 * would cure it. Bootstrap and leave-one-out run on the checked fit, as o asks. */
int qat_fit_run_checked(qat_fit_problem *p, const qat_fit_opts *o, qat_fit_result *r, FILE *note);

/* One local fit from θ (in place) with run weights w (NULL = all 1). Returns the objective. */
double qat_fit_local(const qat_fit_problem *p, double *theta, const double *w);

/* Grid starts of docs/scaling-laws.md for this problem: fills θ for start s (0 ≤ s < count). */
int qat_fit_grid_count(const qat_fit_problem *p);
void qat_fit_grid_start(const qat_fit_problem *p, int s, double *theta);
/* The range [lo, hi] of θ_k over the documented grid (without the shift of an
 * exponent's starts under a held A or B): a fitted value outside it is one the
 * optimiser carried away from the grid (rule 5 says toward which bound). */
void qat_fit_start_range(const qat_fit_problem *p, int k, double *lo, double *hi);

/* Bootstrap and leave-one-out, given the full-data fit in r->theta (bootstrap.c).
 * `starts` holds n_starts further θ (distinct local optima of the full fit)
 * tried in every resample besides r->theta. */
int qat_fit_bootstrap(const qat_fit_problem *p, const qat_fit_opts *o, const double *starts,
                      int n_starts, qat_fit_result *r);
double qat_fit_loo(const qat_fit_problem *p, const double *theta);

/* The quartet law (law_quartet.c): layout, prediction and objective, the
 * identifiability rules of its effs (called by qat_fit_identify), and the
 * refusal of another law over runs with several backward schemes. */
/* Backward schemes, W/A/G keys and the θ indices of ln effD (from np on);
 * returns the new length of θ. */
int qat_fit_quartet_init(qat_fit_problem *p, const qat_fit_runs *rs, int np);
double qat_fit_quartet_predict(const qat_fit_problem *p, const double *theta, int i, double *grad, double scale);
double qat_fit_quartet_objective(const qat_fit_problem *p, const double *theta, const double *w, double *g);
int qat_fit_quartet_identify(const qat_fit_problem *p);
/* ln effD of backward scheme j under θ (0 for fp32). */
double qat_fit_quartet_log_effd(const qat_fit_problem *p, const double *theta, int j);
/* A parameter name as `--fix` gives it, in the spelling of the problem's names:
 * effD:G with G through qat_fit_bwd_check (effD:mxfp4@h16@sr is effD:mxfp4@sr@h16,
 * the key the runs' schemes are spelt in), any other name as it is; into out (n
 * bytes). QAT_EINPUT naming `where` (the option) and the accepted spellings when
 * G is no backward scheme. */
int qat_fit_quartet_fix_name(const char *where, const char *name, char *out, size_t n);
/* QAT_EINPUT when a law without a backward term (chinchilla, decoupled,
 * unified) is asked for runs of more than one backward scheme: their losses
 * differ by what the law cannot price. The message names every scheme with
 * its run count and the cures that work as given: --law quartet, or the
 * --exclude of every other scheme (and, when no run is from a CSV, the
 * --where set) that keeps exactly one, fp32 when present. */
int qat_fit_check_bwd(const qat_fit_runs *rs, qat_fit_law law);

const char *qat_fit_law_name(qat_fit_law law);
int qat_fit_law_parse(const char *s, qat_fit_law *law);
const char *qat_fit_type_name(int type);

/* The QAT penalty law of Chen et al. 2025 (law_chen.c, docs/scaling-laws.md):
 * L = L_fp32(N, D) + k·D^γD·(log₂ G)^γG/N^γN per W/A pair, each quantized run
 * paired with its fp32/fp32 twin(s) at the same N and D. Its own entry point:
 * the penalty is not a capacity multiplier, so it shares the runs, the Huber
 * loss and L-BFGS with the other laws but not their θ layout. */
typedef struct {
    int bootstrap;                 /* resamples per pair (0 = none) */
    uint64_t seed;                 /* resample b of pair j uses qat_rng_make(seed, j·1000003 + b) */
    int n_fix;                     /* --fix gammaD|gammaN|gammaG=V, held for every pair */
    const char *const *fix_name;
    const double *fix_value;
    const char *csv, *svg;         /* per-run table and δ-against-D figure (NULL = none) */
    const char *const *inputs;     /* the command's inputs, which no output may replace */
    int n_inputs;
} qat_fit_chen_opts;
typedef struct {
    char key[2 * QAT_FIT_FMT_LEN + 2]; /* "W/A" */
    int n, n_boot;                     /* runs, bootstrap resamples used */
    double value[4], lo[4], hi[4];     /* k, γD, γN, γG; 95% percentile interval (NaN without bootstrap) */
    unsigned char held[4];             /* QAT_FIT_BY_USER / QAT_FIT_BY_RULE, else QAT_FIT_FREE */
    double rmse_log;                   /* √mean (ln L̂ − ln L)² */
} qat_fit_chen_pair;
typedef struct {
    int n_pairs;
    qat_fit_chen_pair *pair;           /* sorted by key */
} qat_fit_chen_result;
/* Fit, print the table on `out` (may be NULL) and notes on `note`; res may be NULL.
 * QAT_EINPUT naming the axis when a pair's runs cannot identify an exponent,
 * or naming a quantized run without an fp32/fp32 twin. */
int qat_fit_chen(const qat_fit_runs *rs, const qat_fit_chen_opts *o, qat_fit_chen_result *res, FILE *out, FILE *note);
void qat_fit_chen_result_free(qat_fit_chen_result *r);
/* Chen's G of a run: the weights' scale group (@gG, compress.weights.group), or
 * the row length d for a per-row scale; 0 when unknown (CSV rows without @gG). */
double qat_fit_chen_group(const qat_fit_run *r);

#endif
