/*
 * tests/test_signals_e2e.c — SIGINT, SIGTERM, SIGHUP and SIGPIPE that come
 * early in `qat train` and `qat sweep` (core/stop.h, docs/cli.md): the command
 * stops as documented (exit 1, one line, nothing written) instead of dying of
 * the signal. And SIGHUP in earnest: a training whose terminal hangs up, and a
 * sweep whose process group gets the hangup twice (the kernel's and the shell's),
 * both stop with a checkpoint instead of dying of it (exit 129) and losing the
 * steps since the last one.
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
 * A few seconds: the hangup tests train a tiny model for a few steps.
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
#include <poll.h>
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

static const char *sig_name(int sig) {
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "SIGPIPE";
}

/* `qat train` stopped while it reads its config: exit 1, the documented line,
 * and no run directory (nothing set up, nothing written). */
static void train_stopped_while_reading_its_config(void **state) {
    (void)state;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
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
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
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

/* `nohup qat train ...`: a SIGHUP ignored when qat starts stays ignored (the
 * user asked the run to outlive its terminal), unlike an ignored SIGINT, which
 * is only what a background job inherits: the run trains to its end, exit 0. */
static void train_under_nohup_outlives_a_hangup(void **state) {
    (void)state;
    char fifo[400], out[400];
    path_in(fifo, sizeof fifo, "nohup.fifo");
    path_in(out, sizeof out, "nohup_runs");
    void (*old)(int) = signal(SIGHUP, SIG_IGN); /* inherited across fork and exec, as nohup does it */
    int rc = stopped_while_reading(fifo, (char *[]){"train", fifo, "--out", out, "--quiet", NULL}, SIGHUP,
                                   "name: sig\nseed: 0\nthreads: 1\nmodel: {preset: s1, seq_len: 64}\n"
                                   "data: {source: synthetic}\ntrain: {tokens: 2048, batch_tokens: 1024, "
                                   "eval_tokens: 1024}\n");
    signal(SIGHUP, old);
    printf("  qat train under nohup, SIGHUP while reading the config: exit %d: %s\n", rc, g_err);
    assert_int_equal(rc, 0);
    assert_int_equal(qat_test_rmtree(out), 0);
}

/* A run that logs every step and checkpoints only at its end (or when stopped):
 * a ckpt.h5 after a stop is the stop's own. */
static const char LONG_CONFIG[] = "name: hup\nseed: 0\nthreads: 1\nmodel: {preset: s1, seq_len: 64}\n"
                                  "data: {source: synthetic}\n"
                                  "train: {tokens: 2e7, batch_tokens: 1024, eval_tokens: 4096, log_every: 1, "
                                  "eval_every: 0, checkpoint_every: 0}\n";

/* `qat train` on a terminal (a pty whose session it leads, as a login shell's
 * job is) whose other side closes, as sshd closes it when the connection drops:
 * the kernel sends SIGHUP, and every later write to the terminal fails with EIO.
 * The run must checkpoint and exit 1 all the same. Before the fix it died of
 * SIGHUP (129) with no checkpoint: every step since the last one was lost. */
static void train_hung_up_by_its_terminal(void **state) {
    (void)state;
    char cfg[400], out[400], ckpt[500];
    path_in(cfg, sizeof cfg, "hup.yaml");
    path_in(out, sizeof out, "hup_runs");
    snprintf(ckpt, sizeof ckpt, "%s/hup/ckpt.h5", out);
    assert_int_equal(qat_test_write_text(cfg, LONG_CONFIG), 0);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(m >= 0);
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    char slave[256];
    assert_int_equal(ptsname_r(m, slave, sizeof slave), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* a session leader opening a terminal makes it its controlling one */
        if (setsid() < 0) _exit(126);
        int s = open(slave, O_RDWR);
        if (s < 0) _exit(126);
        close(m);
        dup2(s, 0);
        dup2(s, 1);
        dup2(s, 2);
        if (s > 2) close(s);
        execl(getenv("QAT_BIN"), "qat", "train", cfg, "--out", out, NULL);
        _exit(127);
    }
    /* read the terminal (a full one would block the run) until the live line
     * shows steps being trained; then hang up */
    char seen[8192];
    size_t n = 0;
    int steps = 0;
    for (int t = 0; t < 3000 && !steps; t++) {
        struct pollfd p = {.fd = m, .events = POLLIN};
        if (poll(&p, 1, 10) == 1) {
            ssize_t r = read(m, seen + n, sizeof seen - 1 - n);
            if (r <= 0) fail_msg("the terminal closed before training began");
            n += (size_t)r;
            seen[n] = 0;
            /* "step 2/": one step done and the next under way */
            steps = strstr(seen, "step 2/") != NULL;
            if (n > sizeof seen / 2) {
                memmove(seen, seen + n - 64, 64); /* keep a tail a match may straddle */
                n = 64;
            }
        }
    }
    assert_true(steps);
    close(m);
    int rc = qat_test_wait(pid);
    printf("  qat train, its terminal hung up while training: exit %d, ckpt.h5 %s\n", rc,
           access(ckpt, F_OK) == 0 ? "written" : "missing");
    assert_int_equal(rc, 1);
    assert_int_equal(access(ckpt, F_OK), 0);
    assert_int_equal(qat_test_rmtree(out), 0);
}

/* Start `qat ARGS` in a process group of its own (as a shell starts a job), with
 * stdout and stderr to g_tmp/stdout.txt and g_tmp/stderr.txt. */
static pid_t spawn_job(char *const args[]) {
    char o[400], e[400];
    path_in(o, sizeof o, "stdout.txt");
    path_in(e, sizeof e, "stderr.txt");
    int count = 0;
    while (args[count]) count++;
    char *argv[count + 2];
    argv[0] = getenv("QAT_BIN");
    for (int i = 0; i < count; i++) argv[i + 1] = args[i];
    argv[count + 1] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        int fo = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    if (pid > 0) setpgid(pid, pid); /* either side may win; both set the same */
    return pid;
}

/* A hangup reaches every process of the foreground job, the sweep and its
 * workers, and reaches it twice: from the kernel and again from the shell that
 * hung up. The sweep must stop its workers cleanly (they checkpoint, exit 1,
 * `interrupted`), never take the second SIGHUP for an impatient second Ctrl-C
 * and SIGKILL them. Before the fix the sweep and its worker died of the first. */
static void sweep_hung_up_twice(void **state) {
    (void)state;
    char sweep[400], out[400], h5[500], text[1200];
    path_in(sweep, sizeof sweep, "hup_sweep.yaml");
    path_in(out, sizeof out, "hup_sweep_out");
    snprintf(h5, sizeof h5, "%s/lr1e-3/run.h5", out);
    snprintf(text, sizeof text,
             "base:\n  threads: 1\n  model: {preset: s1, seq_len: 64}\n  data: {source: synthetic}\n"
             "  train: {tokens: 2e7, batch_tokens: 1024, eval_tokens: 4096, eval_every: 0, checkpoint_every: 0}\n"
             "grid:\n  train.lr: [1e-3]\nout: %s\n", out);
    assert_int_equal(qat_test_write_text(sweep, text), 0);
    pid_t pid = spawn_job((char *[]){"sweep", sweep, "--jobs", "1", NULL});
    assert_true(pid > 0);
    /* the worker has its run.h5 once it is set up; a little later it trains */
    for (int t = 0; t < 3000 && access(h5, F_OK) != 0; t++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) fail_msg("the sweep ended before its run started (status %d)", st);
        sleep_ms(10);
    }
    assert_int_equal(access(h5, F_OK), 0);
    sleep_ms(300);
    assert_int_equal(kill(-pid, SIGHUP), 0);
    sleep_ms(5);
    assert_int_equal(kill(-pid, SIGHUP), 0);
    int rc = qat_test_wait_stderr(pid, g_tmp, g_err, sizeof g_err);
    char stdout_text[8192];
    qat_test_read_in(g_tmp, "stdout.txt", stdout_text, sizeof stdout_text);
    printf("  qat sweep, SIGHUP twice to its process group: exit %d: %s", rc, stdout_text);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(stdout_text, "interrupted (exit 1)"));
    assert_null(strstr(stdout_text, "killed by signal"));
    assert_int_equal(qat_test_rmtree(out), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(train_stopped_while_reading_its_config),
        cmocka_unit_test(sweep_stopped_while_reading_its_file),
        cmocka_unit_test(train_started_with_the_signal_blocked),
        cmocka_unit_test(train_under_nohup_outlives_a_hangup),
        cmocka_unit_test(train_hung_up_by_its_terminal),
        cmocka_unit_test(sweep_hung_up_twice),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
