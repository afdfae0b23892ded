/*
 * core/stop.h — SIGINT, SIGTERM, SIGHUP and (for a training) SIGPIPE as a
 * request to stop, for the two commands that must not die of one: `qat train`
 * stops between steps with a checkpoint (exit 1), `qat sweep` passes it on to
 * its workers and reports them (docs/cli.md). A handler only counts; the loops
 * poll the count.
 *
 * SIGHUP is a terminal or an ssh session gone away: it killed a training with
 * the steps since its last checkpoint lost, so it stops the run as SIGTERM does.
 * Two differences. It never counts as a second request ("stop now": a sweep then
 * SIGKILLs its workers): one hangup reaches a foreground job twice, from the
 * kernel and again from the shell that hung up, and neither means impatience.
 * And an ignored SIGHUP stays ignored: `nohup qat train ...` asked to outlive
 * the terminal, where an ignored SIGINT is only what a background job inherits.
 * After a hangup the terminal answers writes with EIO; the progress lines and
 * messages ignore or report that, so it never stops the checkpoint.
 *
 * Why one place, caught early and never given back: the handlers used to be
 * installed by the trainer and the process pool themselves, after the config or
 * the sweep was read and planned (milliseconds for a run, far longer for a large
 * sweep), and restored when they returned; a signal before or after that took
 * the default action, killing the command with no message and the wrong status,
 * a sweep before it could stop anything. Now each command catches them as soon
 * as it knows it is one that stops cleanly, and they stay caught until exit.
 *
 * What remains: from exec until qat's main runs (the dynamic loader maps ~45
 * shared libraries — oneDNN, HDF5 and what they pull in — and runs their
 * constructors: about 7 ms here, more on a loaded machine) no code of qat runs,
 * and exec has reset every caught signal to its default, so a signal then kills
 * the process; it has done nothing yet, so nothing is lost but the status. A
 * parent that must not lose one blocks the signals across fork and exec, as the
 * sweep does for its workers (sweep/pool.c): a blocked signal waits, and
 * qat_stop_catch unblocks it once the handler is in place.
 */
#ifndef QAT_CORE_STOP_H
#define QAT_CORE_STOP_H

#include <signal.h>

enum {
    QAT_STOP_PIPE = 1, /* SIGPIPE too: a reader of stdout gone away (`qat train cfg | head`) stops the run
                        * instead of killing it at its next progress line; the write then fails with EPIPE */
};

/* From now on, count SIGINT, SIGTERM and SIGHUP (and SIGPIPE with
 * QAT_STOP_PIPE) instead of taking their default action (or ignoring them: a
 * background job inherits SIGINT ignored, and must still stop on it; SIGHUP
 * ignored by nohup stays ignored), then unblock them, so that one that arrived
 * while they were blocked is counted now (an ignored SIGHUP is dropped). System calls a
 * signal interrupts are restarted: a stop is acted on between steps, never as a
 * failed read or write. Calling it again adds signals and changes nothing else;
 * the count is never reset. */
void qat_stop_catch(unsigned flags);

/* How many of those signals have arrived (a second one means: stop now; SIGHUP
 * counts only as the first); for loops that poll, e.g. an evaluation that stops
 * between batches. */
const volatile sig_atomic_t *qat_stop_flag(void);
static inline int qat_stop_count(void) { return *qat_stop_flag(); }

#endif
