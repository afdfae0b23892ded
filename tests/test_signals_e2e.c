/*
 * tests/test_signals_e2e.c — SIGINT, SIGTERM and SIGPIPE that come early in
 * `qat train` and `qat sweep` (core/stop.h, docs/cli.md): the command stops as
 * documented (exit 1, one line, nothing written) instead of dying of the signal.
 *
 * The handlers were installed only once the config (train) or the sweep had been
 * read and planned; a signal in between took the default action. The tests hold
 * the command exactly there, deterministically: its config or sweep is a FIFO,
 * which the command opens once its options are read and which this test opens
 * for writing only to see that happen; the signal is sent, then the text
 * written. Before the fix each of these died of its signal (exit 128 + N).
 *
 * From exec to main no code of qat runs and no handler can be in place (the
 * dynamic loader: core/stop.h); a parent that must not lose a signal there starts
 * qat with it blocked, as the sweep starts its workers. The last test does that
 * with a signal sent at once and after a few delays: each is handled once qat
 * has caught it (before the fix a blocked signal stayed blocked, and the run
 * trained to its end, exit 0).
 * Under two seconds: nothing trains.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

static char g_tmp[256];
static char g_err[8192];

/* A run of the synthetic corpus that would train for a few seconds: any stop
 * seen before it starts is seen long before it could end. */
static const char CONFIG[] = "name: sig\nseed: 0\nthreads: 1\nmodel: {preset: s1, seq_len: 64}\n"
                             "data: {source: synthetic}\n"
                             "train: {tokens: 2e6, batch_tokens: 1024, eval_tokens: 4096, log_every: 1000}\n";

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *path_in(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", g_tmp, name);
    return buf;
}

/* Start `qat ARGS` whose input file is the FIFO `fifo`, wait until it has opened
 * it (it is then past the point where it catches its signals), send `sig`, then
 * write `text` into the FIFO. Returns the exit code (128 + N for a death by
 * signal N), stderr in g_err. */
static int stopped_while_reading(const char *fifo, char *const args[], int sig, const char *text) {
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid_t pid = qat_test_spawn(g_tmp, args);
    assert_true(pid > 0);
    /* O_NONBLOCK: ENXIO until the reader has it open; a child that died first is a failure, not a hang */
    int fd = -1;
    for (int t = 0; t < 2000 && fd < 0; t++) {
        fd = open(fifo, O_WRONLY | O_NONBLOCK);
        if (fd >= 0) break;
        assert_int_equal(errno, ENXIO);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) fail_msg("qat ended before it opened %s (status %d)", fifo, st);
        sleep_ms(5);
    }
    assert_true(fd >= 0);
    assert_int_equal(kill(pid, sig), 0);
    sleep_ms(20); /* let it arrive while the command waits for its input */
    assert_int_equal(fcntl(fd, F_SETFL, 0), 0);
    size_t n = strlen(text);
    /* a command killed by the signal is no reader any more: EPIPE, not SIGPIPE, here */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    ssize_t w = write(fd, text, n);
    signal(SIGPIPE, old);
    (void)w;
    close(fd);
    return qat_test_wait_stderr(pid, g_tmp, g_err, sizeof g_err);
}

static int group_setup(void **state) {
    (void)state;
    if (!getenv("QAT_BIN")) {
        fprintf(stderr, "QAT_BIN is not set\n");
        return -1;
    }
    return qat_test_mkdtemp(g_tmp, sizeof g_tmp, "signals_e2e");
}

static int group_teardown(void **state) {
    (void)state;
    return qat_test_rmtree(g_tmp);
}

static const char *sig_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGPIPE"; }

/* `qat train` stopped while it reads its config: exit 1, the documented line,
 * and no run directory (nothing set up, nothing written). */
static void train_stopped_while_reading_its_config(void **state) {
    (void)state;
    static const int sigs[] = {SIGINT, SIGTERM, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        char fifo[400], out[400], dir[500];
        path_in(fifo, sizeof fifo, "cfg.fifo");
        path_in(out, sizeof out, "runs");
        snprintf(dir, sizeof dir, "%s/sig", out);
        int rc = stopped_while_reading(fifo, (char *[]){"train", fifo, "--out", out, "--quiet", NULL}, sigs[i], CONFIG);
        printf("  qat train, %s while reading the config: exit %d: %s", sig_name(sigs[i]), rc, g_err);
        assert_int_equal(rc, 1);
        assert_non_null(strstr(g_err, "qat: interrupted before step 1 (before the setup); nothing written"));
        assert_int_equal(access(dir, F_OK), -1);
    }
}

/* `qat sweep` stopped while it reads its sweep file: it starts nothing, reports
 * every run not started, exit 1. */
static void sweep_stopped_while_reading_its_file(void **state) {
    (void)state;
    static const int sigs[] = {SIGINT, SIGTERM};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        char fifo[400], out[400], text[1200];
        path_in(fifo, sizeof fifo, "sweep.fifo");
        path_in(out, sizeof out, "sweep_out");
        snprintf(text, sizeof text,
                 "base:\n  model: {preset: s1, seq_len: 64}\n  data: {source: synthetic}\n"
                 "  train: {tokens: 2e6, batch_tokens: 1024, eval_tokens: 4096}\n"
                 "grid:\n  train.lr: [1e-3, 2e-3]\nout: %s\n", out);
        int rc = stopped_while_reading(fifo, (char *[]){"sweep", fifo, NULL}, sigs[i], text);
        char stdout_text[8192];
        qat_test_read_in(g_tmp, "stdout.txt", stdout_text, sizeof stdout_text);
        const char *last = strstr(stdout_text, "qat sweep: 2 runs:");
        printf("  qat sweep, %s while reading the sweep: exit %d: %s%s", sig_name(sigs[i]), rc, g_err,
               last ? last : "(no summary)\n");
        assert_int_equal(rc, 1);
        assert_non_null(strstr(stdout_text, "lr1e-3: not started (the sweep was interrupted)"));
        assert_non_null(strstr(stdout_text, "qat sweep: 2 runs: 0 started, 0 resumed"));
        assert_non_null(strstr(stdout_text, ", 2 not started\n"));
        assert_int_equal(access(out, F_OK), -1); /* nothing written, not even OUT/.sweep */
    }
}

/* Started with SIGINT blocked, as the sweep starts a worker, and sent SIGINT at
 * once (before its exec, most likely) or a few milliseconds later (in the
 * dynamic loader, or past main): the run stops, exit 1, whenever it came. */
static void train_started_with_the_signal_blocked(void **state) {
    (void)state;
    char cfg[400], out[400];
    path_in(cfg, sizeof cfg, "blocked.yaml");
    path_in(out, sizeof out, "blocked_runs");
    assert_int_equal(qat_test_write_text(cfg, CONFIG), 0);
    static const int delays_ms[] = {0, 1, 3, 10};
    for (size_t i = 0; i < sizeof delays_ms / sizeof *delays_ms; i++) {
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigprocmask(SIG_BLOCK, &block, &old); /* inherited by the child, across its exec */
        pid_t pid = qat_test_spawn(g_tmp, (char *[]){"train", cfg, "--out", out, "--quiet", NULL});
        sigprocmask(SIG_SETMASK, &old, NULL);
        assert_true(pid > 0);
        if (delays_ms[i]) sleep_ms(delays_ms[i]);
        assert_int_equal(kill(pid, SIGINT), 0);
        int rc = qat_test_wait_stderr(pid, g_tmp, g_err, sizeof g_err);
        printf("  qat train started with SIGINT blocked, SIGINT after %d ms: exit %d: %s", delays_ms[i], rc, g_err);
        assert_int_equal(rc, 1);
        assert_non_null(strstr(g_err, "qat: interrupted "));
        assert_int_equal(qat_test_rmtree(out), 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(train_stopped_while_reading_its_config),
        cmocka_unit_test(sweep_stopped_while_reading_its_file),
        cmocka_unit_test(train_started_with_the_signal_blocked),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
