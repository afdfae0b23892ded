/*
 * train/progress.c — the progress line.
 */
#include "progress.h"

#include <math.h>
#include <stdio.h>

void qat_format_duration(double s, char *buf, int n) {
    if (!isfinite(s) || s < 0) { snprintf(buf, (size_t)n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, (size_t)n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, (size_t)n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, (size_t)n, "%lds", t);
}

void qat_progress_init(qat_progress *p, int mode, int64_t total, int64_t start) {
    p->mode = mode;
    p->total = total;
    p->start = start;
    p->live_open = 0;
}

void qat_progress_update(qat_progress *p, int64_t done, double loss, double lr, double elapsed,
                         double tokens_step, double flops_step, double eval_loss) {
    if (p->mode < 0) return;
    int64_t steps = done - p->start;
    double per_step = steps > 0 ? elapsed / (double)steps : NAN;
    double eta = per_step * (double)(p->total - done);
    double tok_s = 0, gflops = 0;
    if (steps > 0 && elapsed > 0) {
        tok_s = tokens_step * (double)steps / elapsed;
        gflops = flops_step * (double)steps / elapsed / 1e9;
    }
    char eta_s[32];
    qat_format_duration(eta, eta_s, sizeof eta_s);
    char ev[48] = "";
    if (isfinite(eval_loss)) snprintf(ev, sizeof ev, " | val %.4f", eval_loss);
    if (p->mode == 1) {
        fprintf(stderr, "\r\033[Kstep %lld/%lld | loss %.4f%s | lr %.2e | %.0f tok/s | %.1f GFLOP/s | ETA %s",
                (long long)done, (long long)p->total, loss, ev, lr, tok_s, gflops, eta_s);
        p->live_open = 1;
        if (isfinite(eval_loss)) { fputc('\n', stderr); p->live_open = 0; }
        fflush(stderr);
    } else {
        printf("step %lld/%lld loss %.4f%s lr %.3e %.0f tok/s %.1f GFLOP/s eta %s\n", (long long)done,
               (long long)p->total, loss, ev, lr, tok_s, gflops, eta_s);
        fflush(stdout);
    }
}

void qat_progress_end(qat_progress *p) {
    if (p->mode == 1 && p->live_open) fputc('\n', stderr);
    p->live_open = 0;
}
