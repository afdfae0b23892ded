/*
 * core/threads.h — one place that sets up the worker threads of a process.
 *
 * OpenMP loops and oneDNN share libgomp's thread pool, so one call fixes the
 * thread count for both. Each worker also gets flush-to-zero and
 * denormals-are-zero: late in training, squared gradients and tiny activations
 * would otherwise fall into denormal range, where x86 arithmetic is ~100× slower.
 * Results stay deterministic: the same flags are set for every run.
 */
#ifndef QAT_CORE_THREADS_H
#define QAT_CORE_THREADS_H

/* Use n threads (n <= 0: every core); returns the count in effect. */
int qat_threads_init(int n);

#endif
