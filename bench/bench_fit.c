/*
 * bench/bench_fit.c — speed of a unified fit: 216 synthetic runs (6 sizes × 3
 * tokens-per-parameter ratios × 12 format pairs) with 1,000 bootstrap
 * resamples and the leave-one-out error (issue 4 asks for < 30 s on 2 cores).
 * Usage: bench_fit [resamples] ; OMP_NUM_THREADS sets the cores.
 */
#include <stdio.h>
#include <stdlib.h>

#include <omp.h>

#include "core/error.h"
#include "scaling/fit.h"
#include "scaling/synth.h"

int main(int argc, char **argv) {
    int nb = argc > 1 ? atoi(argv[1]) : 1000;
    const qat_fit_synth_law law = {250, 0.32, 900, 0.30, 1.7, {{1.0, 0.41, 1.39}, {1.0, 0.5, 1.2}, {1, 1, 1}}, 0.004, 3};
    const double N[] = {1e6, 3e6, 1e7, 3e7, 1e8, 3e8}, ratio[] = {10, 40, 160};
    qat_fit_runs rs = {0};
    qat_fit_synth(&rs, &law, N, 6, ratio, 3, qat_fit_synth_pairs, qat_fit_synth_npairs);
    qat_fit_problem p;
    if (qat_fit_problem_init(&p, QAT_LAW_UNIFIED, &rs)) return qat_report(2);
    qat_fit_opts o = {.bootstrap = nb, .seed = 0, .loo = 1};
    qat_fit_result r;
    double t0 = omp_get_wtime();
    if (qat_fit_run_fit(&p, &o, &r)) return qat_report(1);
    double t = omp_get_wtime() - t0;
    printf("bench_fit: unified law, %d runs, %d parameters, %d bootstrap resamples + leave-one-out, "
           "%d threads: %.2f s (alpha %.4f [%.4f, %.4f], rmse %.5f, loo %.5f)\n",
           p.n, p.np, nb, omp_get_max_threads(), t, r.theta[QAT_FIT_ALPHA], r.lo[QAT_FIT_ALPHA],
           r.hi[QAT_FIT_ALPHA], r.rmse_log, r.loo_rmse_log);
    qat_fit_result_free(&r);
    qat_fit_problem_free(&p);
    qat_fit_runs_free(&rs);
    return 0;
}
