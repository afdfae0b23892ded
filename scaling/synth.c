/*
 * scaling/synth.c — runs drawn from a unified law with known constants.
 *
 * The GMSE values are docs/reference-numbers.md's reference numbers (QuEST int grid, exact
 * unstructured sparsity), so the fixture does not depend on compress/ being
 * built and the test checks the fitter alone.
 */
#include "scaling/synth.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/rng.h"

#define Q(g) {QAT_CAP_QUANT, g}
#define S(g) {QAT_CAP_SPARSE, g}

const qat_fit_synth_pair qat_fit_synth_pairs[] = {
    {"fp32", "fp32", 0, {{0}}},
    {"int8", "fp32", 1, {Q(8.78e-5)}},
    {"int4", "fp32", 1, {Q(0.011543)}},
    {"int3", "fp32", 1, {Q(0.037440)}},
    {"int2", "fp32", 1, {Q(0.118846)}},
    {"int1", "fp32", 1, {Q(0.363380)}},
    {"int4", "int4", 2, {Q(0.011543), Q(0.011543)}},
    {"int2", "int2", 2, {Q(0.118846), Q(0.118846)}},
    {"sp25", "fp32", 1, {S(0.008347)}},
    {"sp50", "fp32", 1, {S(0.071326)}},
    {"sp75", "fp32", 1, {S(0.27639)}},
    {"sp90", "fp32", 1, {S(0.56071)}},
};
const int qat_fit_synth_npairs = (int)(sizeof qat_fit_synth_pairs / sizeof qat_fit_synth_pairs[0]);

void qat_fit_synth(qat_fit_runs *rs, const qat_fit_synth_law *law, const double *N, int nN, const double *ratio,
                   int nratio, const qat_fit_synth_pair *pairs, int npairs) {
    for (int i = 0; i < nN; i++)
        for (int j = 0; j < nratio; j++)
            for (int k = 0; k < npairs; k++) {
                const qat_fit_synth_pair *p = &pairs[k];
                qat_fit_run r;
                memset(&r, 0, sizeof r);
                r.N = N[i];
                r.D = ratio[j] * N[i];
                snprintf(r.wfmt, sizeof r.wfmt, "%s", p->w);
                snprintf(r.afmt, sizeof r.afmt, "%s", p->a);
                r.n_terms = p->n_terms;
                double rho = 1.0;
                for (int t = 0; t < p->n_terms; t++) {
                    r.terms[t] = p->terms[t];
                    const qat_cap_params *c = &law->cap[p->terms[t].type];
                    rho *= c->L * pow(tanh(c->F * log(p->terms[t].gmse) / log(0.25)), c->C);
                }
                double L = law->A * pow(r.N * rho, -law->alpha) + law->B * pow(r.D, -law->beta) + law->E;
                r.loss = L * exp(law->noise * qat_normal_at(law->seed, (uint64_t)rs->n));
                snprintf(r.origin, sizeof r.origin, "synthetic:%d", rs->n + 1);
                qat_fit_runs_push(rs, &r);
            }
}
