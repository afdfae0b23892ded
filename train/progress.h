/*
 * train/progress.h — what a person watching a run sees.
 *
 * On a terminal: one line rewritten in place (step, loss, lr, tok/s, achieved
 * GFLOP/s, ETA). Otherwise (a log file, a sweep worker): one plain line per call,
 * so logs stay greppable.
 */
#ifndef QAT_TRAIN_PROGRESS_H
#define QAT_TRAIN_PROGRESS_H

#include <stdint.h>

typedef struct {
    int mode;          /* 1 live line, 0 plain lines, -1 silent */
    int64_t total;     /* steps in the run */
    int64_t start;     /* first step of this process (after a resume) */
    int live_open;     /* a live line is on screen and needs a newline at the end */
} qat_progress;

void qat_progress_init(qat_progress *p, int mode, int64_t total, int64_t start);
/* After `done` steps; `elapsed` seconds since this process started training;
 * tokens and FLOPs per step; eval loss or NaN. */
void qat_progress_update(qat_progress *p, int64_t done, double loss, double lr, double elapsed,
                         double tokens_step, double flops_step, double eval_loss);
void qat_progress_end(qat_progress *p);
/* "1h02m", "3m05s", "12s" */
void qat_format_duration(double s, char *buf, int n);

#endif
