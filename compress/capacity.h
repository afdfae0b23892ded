/*
 * compress/capacity.h — what a parameter stored in a format is worth.
 *
 * GMSE(R) = min over scales of E|ξ − R(ξ)|² per coordinate, ξ ~ N(0, I)
 * (exact for scalar grids and unstructured sparsity, Monte Carlo otherwise), and
 * the unified law's capacity ρ = L·tanh(F·log_{1/4} GMSE)^C with one (L, F, C)
 * per compression type. A composite format (sp50+int4) and a weights×activations
 * pair multiply the ρ of their parts, so a format decomposes into capacity terms.
 */
#ifndef QAT_COMPRESS_CAPACITY_H
#define QAT_COMPRESS_CAPACITY_H

#include <stdint.h>

typedef enum {
    QAT_CAP_QUANT = 0,  /* scalar quantization: int, ternary, fp4, and the block formats (mx*, nvfp4, intB@gG) */
    QAT_CAP_SPARSE = 1, /* unstructured and N:M sparsity */
    QAT_CAP_VQ = 2,     /* vector quantization */
    /* noise(F) has F's terms and so F's types: noise(int4) is quant, noise(sp50)
     * sparse, noise(sp50+int4) both (it stands in for F in the capacity law). */
    QAT_CAP_NTYPES = 3
} qat_cap_type;

typedef struct {
    qat_cap_type type; /* which (L, F, C) applies */
    double gmse;       /* Gaussian MSE of this component on its own */
} qat_cap_term;

typedef struct {
    double L, F, C; /* ρ = L·tanh(F·log_{1/4} gmse)^C */
} qat_cap_params;

/* Published Llama/C4 constants (docs/reference-numbers.md): L = 1.0, F = 0.41, C = 1.39. */
extern const qat_cap_params QAT_CAP_PUBLISHED;

/* Name of a type: "quant", "sparse", "vq" (keys of the fit JSON). */
const char *qat_cap_type_name(qat_cap_type t);

/* Split a format string into its capacity terms: "fp32" → 0 terms (ρ = 1);
 * "int4" → {quant, 0.011543}; "sp50+int4" → {sparse, 0.071326}, {quant, 0.011543};
 * "noise(int4)" → {quant, 0.011543}. Monte-Carlo terms use the default samples
 * and seed, as qat_fmt_gmse(fmt, 0, 0) does, and are cached (computed once per
 * process). QAT_EINPUT for an unknown format. */
int qat_fmt_capacity_terms(const char *fmt, qat_cap_term *terms, int max_terms, int *n_terms);

/* GMSE of a whole format (composite formats measured as a whole) and its
 * Monte-Carlo standard error (0 when exact). `samples` and `seed` control the
 * Monte Carlo (0 = defaults). */
int qat_fmt_gmse(const char *fmt, int64_t samples, uint64_t seed, double *gmse, double *stderr_out);

/* One estimate of a format: its GMSE, the capacity terms of the same Monte
 * Carlo and the ρ they give (what `qat capacity` prints per row). */
typedef struct {
    double gmse, gmse_err; /* the whole format (composites measured as a whole); err 0 when exact */
    qat_cap_term term[2];  /* its stages' terms: a single stage's is gmse itself */
    int n_terms;
    double rho;            /* the product of the terms' ρ */
} qat_fmt_est;

/* The estimate of fmt under the Monte Carlo (samples, seed) (0 = defaults) and
 * the constants `params` per type. With the defaults its terms are
 * qat_fmt_capacity_terms'. QAT_EINPUT for an unknown format. */
int qat_fmt_estimate(const char *fmt, int64_t samples, uint64_t seed, const qat_cap_params params[QAT_CAP_NTYPES],
                     qat_fmt_est *e);

/* Bits per parameter of a format (int4 → 4, sp50 → 16·0.5 + 1 mask bit, mxfp4 →
 * 4.25 with its E8M0 scales, ...; the convention is documented in capacity.c). */
int qat_fmt_bits(const char *fmt, double *bits);

/* ρ for one GMSE with given constants; ρ(≤0) = L, ρ(≥1) = 0. */
double qat_cap_rho(qat_cap_params p, double gmse);

/* ρ of n terms: the product of each term's ρ under its type's constants. */
double qat_cap_rho_terms(const qat_cap_params params[QAT_CAP_NTYPES], const qat_cap_term *t, int n);

/* ρ of a format as the product over its terms (the default Monte Carlo), with one
 * parameter set per type. */
int qat_fmt_rho(const char *fmt, const qat_cap_params params[QAT_CAP_NTYPES], double *rho);

#endif
