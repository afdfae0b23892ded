/*
 * tests/test_io_faults.c — what every command that writes does when the file
 * system says no, and what every reader does with a damaged file (docs/cli.md,
 * "Output files"; docs/files.md, "Checksums"), with the real binary (QAT_BIN):
 *
 *   - a destination that exists and is not a regular file (a FIFO, a
 *     directory, and as root a character device) is refused with exit 2 and
 *     left as it was, by data pack/synth, grads, fit --out/--csv, plot,
 *     sweep --emit-slurm and train (its run.h5);
 *   - an output that is one of the command's inputs (by inode: a hard link
 *     counts) is refused with exit 2 and the input is unchanged;
 *   - another run's run.h5/ckpt.h5, any HDF5 file of another kind than the
 *     command writes, any other file of another kind (a text or gzip file
 *     where a shard, an SVG or HDF5 goes, a shard or an SVG where a CSV goes),
 *     a file in a run directory whose run.h5.lock is held and
 *     a symbolic link (dangling or not) are refused with exit 2 and left as
 *     they were, by every writer; a command may replace its own kind;
 *   - `--out ''` and a NUL inside a YAML value are usage errors (exit 2);
 *   - a write that fails part-way (RLIMIT_FSIZE, portable: EFBIG; and as root
 *     a full tmpfs: ENOSPC) is one line naming the file and the reason, exit 1,
 *     leaves the previous file as it was and no temporary behind, for plot,
 *     fit --csv, fit --out, grads, data pack/synth, and a training checkpoint
 *     (the run keeps its last checkpoint and says `failed`; before, a full disk
 *     printed ~900 lines of HDF5-DIAG and died with SIGSEGV at exit);
 *   - every dataset qat writes is checksummed (chunked with fletcher32, or
 *     compact inside a checksummed object header), and 64 flipped bytes in a
 *     checkpoint, a run log or a fit are exit 1 naming the file and dataset
 *     for eval, sample, grads and plot; a damaged /final makes fit exit 1 and
 *     a sweep keep the run (reported FAILED) instead of restarting it;
 *   - a result printed on stdout that cannot be written (/dev/full) is exit 1
 *     and one line `qat: cannot write the output: ...`, for every command;
 *   - files written by qat before its strings were fixed-length (variable-
 *     length strings in HDF5's global heap) are read as before by fit, plot,
 *     eval, capacity --fit and train --resume, with the same results.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <hdf5.h>

#include "core/error.h"
#include "h5fuzz.h"
#include "runlog/runlog.h"
#include "testutil.h"

/* Paths here are a temporary directory plus a few characters: gcc's warnings
 * about what a 1200-byte buffer might truncate are noise. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static char g_dir[256];     /* scratch directory of the group */
static char g_err[16384];   /* stderr of the last command */
static unsigned g_alarm;     /* > 0: the child is killed by SIGALRM after this many seconds */

static const char *at(const char *name) {
    static char buf[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The whole file in a malloc'd buffer (NULL when unreadable), its size in *n. */
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

/* `qat ARGS...` with stdout to /dev/null and stderr to g_err (through a pipe:
 * a file would count against the limit); with `fsize` > 0 the child runs under
 * RLIMIT_FSIZE = fsize bytes and SIGXFSZ at its default (kill): qat ignores
 * it itself, so a write past the limit fails with EFBIG like a full disk,
 * without root. qat_run sends stdout to the file `out` instead. Returns the
 * exit code, or 128 + the signal. */
static int qat_run(long fsize, const char *out, char *const args[]) {
    const char *bin = getenv("QAT_BIN");
    assert_non_null(bin);
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR), fo = open(out, O_WRONLY);
        dup2(nul, 0);
        dup2(fo, 1);
        dup2(p[1], 2);
        close(p[0]);
        if (g_alarm) alarm(g_alarm); /* kept across exec: a hang becomes a death by signal */
        if (fsize > 0) {
            /* the default disposition, as a user's shell leaves it (an ignored
             * one would survive exec and hide a qat that dies of SIGXFSZ with
             * its .tmp left behind): qat itself must ignore the signal */
            signal(SIGXFSZ, SIG_DFL);
            struct rlimit r = {(rlim_t)fsize, (rlim_t)fsize};
            setrlimit(RLIMIT_FSIZE, &r);
        }
        int n = 0;
        while (args[n]) n++;
        char *argv[n + 2];
        argv[0] = (char *)bin;
        for (int i = 0; i < n; i++) argv[i + 1] = args[i];
        argv[n + 1] = NULL;
        execv(bin, argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    for (ssize_t r; (r = read(p[0], g_err + len, sizeof g_err - 1 - len)) != 0;) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        len += (size_t)r;
        if (len == sizeof g_err - 1) { /* keep draining a flood, keep its start */
            char sink[4096];
            while (read(p[0], sink, sizeof sink) > 0) {}
            break;
        }
    }
    g_err[len] = 0;
    close(p[0]);
    return qat_test_wait(pid);
}

static int qat_lim(long fsize, char *const args[]) { return qat_run(fsize, "/dev/null", args); }

#define QAT(...) qat_lim(0, (char *[]){__VA_ARGS__, NULL})

static int lines_of(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int is_root(void) { return geteuid() == 0; }

/* An HDF5 file with two groups, which is all the destination probe
 * (runlog/h5util.c) tells the kinds by: a small stand-in for a fit or a
 * gradients file. */
static void h5_with_groups(const char *path, const char *g1, const char *g2) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    H5Gclose(H5Gcreate2(f, g1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Gclose(H5Gcreate2(f, g2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(f);
}

/* An llm.c shard of the three tokens 'O', 'L', 'D' (docs/data.md). */
static void old_shard(const char *path) {
    int32_t h[256] = {20240520, 1, 3};
    uint16_t t[3] = {'O', 'L', 'D'};
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(h, sizeof h, 1, f);
    fwrite(t, sizeof t, 1, f);
    fclose(f);
}

/* Put arg after the last of args (NULL-terminated, with room for one more). */
static void append_arg(char **args, char *arg) {
    int k = 0;
    while (args[k]) k++;
    args[k] = arg;
    args[k + 1] = NULL;
}

/* ------------------------------------------------------------- fixtures */

/* A tiny synthetic-data run: a second or two. */
static const char TINY[] =
    "name: %s\n"
    "threads: 1\n"
    "model: {preset: s1, seq_len: 32}\n"
    "data: {source: synthetic}\n"
    "train: {tokens: %d, batch_tokens: 1024, eval_every: 0, eval_tokens: 1024,\n"
    "        checkpoint_every: 10, log_every: 5}\n";

static void tiny_config(const char *path, const char *name, int tokens) {
    char text[1024];
    snprintf(text, sizeof text, TINY, name, tokens);
    write_text(path, text);
}

/* Nine runs on L = 400 N^-0.34 + 410 D^-0.28 + 1.7: a fit in a blink. */
static void runs_csv(const char *path) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "N,D,loss\n");
    double Ns[3] = {1e6, 3e6, 1e7}, Ds[3] = {2e7, 6e7, 2e8};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            fprintf(f, "%g,%g,%.6f\n", Ns[i], Ds[j], 400 * pow(Ns[i], -0.34) + 410 * pow(Ds[j], -0.28) + 1.7);
    fclose(f);
}

static int setup(void **state) {
    (void)state;
    if (qat_test_mkdtemp(g_dir, sizeof g_dir, "io_faults")) return -1;
    char cfg[1200], csv[1200], runs[1200], fit[1200];
    snprintf(cfg, sizeof cfg, "%s", at("tiny.yaml"));
    snprintf(csv, sizeof csv, "%s", at("runs.csv"));
    snprintf(runs, sizeof runs, "%s", at("R"));
    snprintf(fit, sizeof fit, "%s", at("fit.h5"));
    tiny_config(cfg, "t", 20480);
    runs_csv(csv);
    write_text(at("text.txt"), "the quick brown fox jumps over the lazy dog, again and again and again and again.\n");
    write_text(at("sweep.yaml"), "base: {model: {preset: s1}}\ngrid: {seed: [1, 2]}\nout: sw\n");
    if (QAT("train", cfg, "--out", runs, "--quiet") != 0) return fprintf(stderr, "%s", g_err), -1;
    if (QAT("fit", csv, "--no-loo", "--out", fit) != 0) return fprintf(stderr, "%s", g_err), -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    /* a test that failed part-way may have left its tmpfs mounted */
    umount2(at("full"), MNT_DETACH);
    umount2(at("ckfull"), MNT_DETACH);
    return qat_test_rmtree(g_dir);
}

/* ------------------------------------------------- #2: non-regular files */

/* Every command that writes, with DEST as its output. */
static void refuses_every_writer(const char *dest, const char *kind) {
    char d[1200], tdir[1200], cfg[1200];
    snprintf(d, sizeof d, "%s", dest);
    struct stat before, after;
    assert_int_equal(stat(d, &before), 0);
    char *const cmds[][12] = {
        {"data", "pack", (char *)at("text.txt"), "-o", d, NULL},
        {"data", "synth", "--tokens", "1000", "--val", "0", "-o", d, NULL},
        {"grads", (char *)at("tiny.yaml"), "--out", d, NULL},
        {"fit", (char *)at("runs.csv"), "--no-loo", "--out", d, NULL},
        {"fit", (char *)at("runs.csv"), "--no-loo", "--csv", d, NULL},
        {"plot", (char *)at("fit.h5"), "--kind", "law", "-o", d, NULL},
        {"sweep", (char *)at("sweep.yaml"), "--emit-slurm", d, NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int rc = qat_lim(0, cmds[i]);
        printf("  %s %s -> %s: exit %d: %s", cmds[i][0], cmds[i][1], kind, rc, g_err);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(g_err, "not a regular file"));
        assert_int_equal(lines_of(g_err), 1);
        assert_int_equal(stat(d, &after), 0);
        assert_true((before.st_mode & S_IFMT) == (after.st_mode & S_IFMT));
        assert_true(before.st_rdev == after.st_rdev);
    }
    /* train: its run.h5 is that kind of file */
    snprintf(tdir, sizeof tdir, "%s/T_%s", g_dir, kind);
    snprintf(cfg, sizeof cfg, "%s/dev/run.h5", tdir);
    assert_int_equal(qat_test_popen(NULL, 1, "mkdir -p '%s/dev' && ln '%s' '%s' 2>/dev/null || cp -a '%s' '%s'", tdir, d,
                                    cfg, d, cfg), 0);
    struct stat rs;
    assert_int_equal(stat(cfg, &rs), 0);
    tiny_config(at("dev.yaml"), "dev", 2048);
    int rc = QAT("train", (char *)at("dev.yaml"), "--out", tdir, "--quiet");
    printf("  train (run.h5 -> %s): exit %d: %s", kind, rc, g_err);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(g_err, "not a regular file"));
    assert_int_equal(stat(cfg, &after), 0);
    assert_true((rs.st_mode & S_IFMT) == (after.st_mode & S_IFMT));
}

static void test_nonregular_destination(void **state) {
    (void)state;
    assert_int_equal(mkfifo(at("fifo"), 0644), 0);
    refuses_every_writer(at("fifo"), "fifo");
    assert_int_equal(mkdir(at("adir"), 0755), 0);
    refuses_every_writer(at("adir"), "directory");
    if (is_root() && mknod(at("null"), S_IFCHR | 0666, makedev(1, 3)) == 0) {
        refuses_every_writer(at("null"), "chardev");
    } else {
        printf("  (not root: the character-device case is skipped; the FIFO covers the same check)\n");
    }
}

/* ------------------------------------------------- #5: output == input */

static void unchanged_after(const char *path, int expected_rc, char *const args[]) {
    size_t n0 = 0, n1 = 0;
    char *before = slurp(path, &n0);
    assert_non_null(before);
    int rc = qat_lim(0, args);
    printf("  %s %s: exit %d: %s", args[0], args[1], rc, g_err);
    assert_int_equal(rc, expected_rc);
    char *after = slurp(path, &n1);
    assert_non_null(after);
    assert_true(n0 == n1 && !memcmp(before, after, n0));
    free(before);
    free(after);
}

static void test_output_is_input(void **state) {
    (void)state;
    char ck[1200], rl[1200], fit[1200], alias[1200], csv[1200], txt[1200], runs[1200];
    snprintf(ck, sizeof ck, "%s", at("R/t/ckpt.h5"));
    snprintf(rl, sizeof rl, "%s", at("R/t/run.h5"));
    snprintf(fit, sizeof fit, "%s", at("fit.h5"));
    snprintf(alias, sizeof alias, "%s", at("fit-alias.h5"));
    snprintf(csv, sizeof csv, "%s", at("runs.csv"));
    snprintf(txt, sizeof txt, "%s", at("text.txt"));
    snprintf(runs, sizeof runs, "%s", at("R"));
    unchanged_after(ck, 2, (char *[]){"grads", "--checkpoint", ck, "--out", ck, NULL});
    assert_non_null(strstr(g_err, "is also an input"));
    unchanged_after(rl, 2, (char *[]){"fit", runs, "--no-loo", "--out", rl, NULL});
    assert_non_null(strstr(g_err, "is also an input"));
    unchanged_after(fit, 2, (char *[]){"plot", fit, "--kind", "law", "-o", fit, NULL});
    /* the same file under another name (a hard link) is still the input */
    assert_int_equal(link(fit, alias), 0);
    unchanged_after(fit, 2, (char *[]){"plot", fit, "--kind", "law", "-o", alias, NULL});
    unchanged_after(csv, 2, (char *[]){"fit", csv, "--no-loo", "--csv", csv, NULL});
    unchanged_after(txt, 2, (char *[]){"data", "pack", txt, "-o", txt, NULL});
    /* two outputs that are one file */
    assert_int_equal(QAT("fit", csv, "--no-loo", "--out", (char *)at("x.h5"), "--csv", (char *)at("x.h5")), 2);
    assert_non_null(strstr(g_err, "same file"));
    assert_int_equal(access(at("x.h5"), F_OK), -1);
}

/* ------------------- another run's files, a live run, a symbolic link */

/* Every writer with DEST as its output is refused (exit 2, one line saying
 * `want`), and DEST is left as it was: the same bytes, or still a link, or
 * still absent. */
static void refused_by_every_writer(const char *dest, const char *want) {
    char d[1200];
    snprintf(d, sizeof d, "%s", dest);
    struct stat before, after;
    int existed = lstat(d, &before) == 0;
    size_t n0 = 0, n1 = 0;
    char *bytes = existed && S_ISREG(before.st_mode) ? slurp(d, &n0) : NULL;
    char *const cmds[][12] = {
        {"data", "pack", (char *)at("text.txt"), "-o", d, NULL},
        {"data", "synth", "--tokens", "1000", "--val", "0", "-o", d, NULL},
        {"grads", "--checkpoint", (char *)at("R/t/ckpt.h5"), "--out", d, NULL},
        {"fit", (char *)at("runs.csv"), "--no-loo", "--out", d, NULL},
        {"fit", (char *)at("runs.csv"), "--no-loo", "--csv", d, NULL},
        {"plot", (char *)at("fit.h5"), "--kind", "law", "-o", d, NULL},
        {"sweep", (char *)at("sweep.yaml"), "--emit-slurm", d, NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int rc = qat_lim(0, cmds[i]);
        printf("  %s %s: exit %d: %s", cmds[i][0], cmds[i][1], rc, g_err);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(g_err, want));
        assert_int_equal(lines_of(g_err), 1);
        if (!existed) {
            assert_int_equal(lstat(d, &after), -1);
            continue;
        }
        assert_int_equal(lstat(d, &after), 0);
        assert_true((before.st_mode & S_IFMT) == (after.st_mode & S_IFMT));
        if (bytes) {
            char *now = slurp(d, &n1);
            assert_true(now && n0 == n1 && !memcmp(bytes, now, n0));
            free(now);
        }
    }
    free(bytes);
}

static void test_foreign_live_and_linked_destination(void **state) {
    (void)state;
    /* another run's log and checkpoint (before: replaced without a word, exit 0) */
    refused_by_every_writer(at("R/t/run.h5"), "is a qat run log (run.h5); refusing to replace it");
    /* a copy: R/t/ckpt.h5 itself is grads' input, refused as such */
    assert_int_equal(qat_test_popen(NULL, 1, "cp -a '%s' '%s'", at("R"), at("C")), 0);
    refused_by_every_writer(at("C/t/ckpt.h5"), "is a qat checkpoint (ckpt.h5); refusing to replace it");
    /* an HDF5 file qat does not write */
    hid_t f = H5Fcreate(at("foreign.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    H5Fclose(f);
    refused_by_every_writer(at("foreign.h5"), "is an HDF5 file; refusing to replace it");
    /* ... but a command may replace its own kind */
    assert_int_equal(QAT("fit", (char *)at("runs.csv"), "--no-loo", "--out", (char *)at("fit2.h5")), 0);
    assert_int_equal(QAT("fit", (char *)at("runs.csv"), "--no-loo", "--out", (char *)at("fit2.h5")), 0);
    assert_int_equal(QAT("grads", "--checkpoint", (char *)at("R/t/ckpt.h5"), "--out", (char *)at("g.h5")), 0);
    assert_int_equal(QAT("grads", "--checkpoint", (char *)at("R/t/ckpt.h5"), "--out", (char *)at("g.h5")), 0);
    /* a grads file is not a fit, nor a fit a grads file */
    assert_int_equal(QAT("fit", (char *)at("runs.csv"), "--no-loo", "--out", (char *)at("g.h5")), 2);
    assert_non_null(strstr(g_err, "is a qat gradients file"));
    assert_int_equal(QAT("grads", "--checkpoint", (char *)at("R/t/ckpt.h5"), "--out", (char *)at("fit2.h5")), 2);
    assert_non_null(strstr(g_err, "is a qat fit (FIT.h5)"));
    /* a run directory a training is writing: even a file not there yet (the
     * training would replace it, or resume from it) */
    assert_int_equal(qat_test_popen(NULL, 1, "mkdir -p '%s'", at("L/t")), 0);
    int fd = -1;
    assert_int_equal(qat_runlog_lock(at("L/t/run.h5"), &fd, NULL), QAT_OK);
    refused_by_every_writer(at("L/t/ckpt.h5"), "is in a run directory a training is writing");
    qat_runlog_unlock(fd);
    assert_int_equal(QAT("plot", (char *)at("fit.h5"), "--kind", "law", "-o", (char *)at("L/t/fig.svg")), 0);
    /* a symbolic link, to a file or dangling: the link would become a file */
    assert_int_equal(symlink(at("text.txt"), at("link.out")), 0);
    refused_by_every_writer(at("link.out"), "is a symbolic link; refusing to replace it; give its target's path");
    assert_int_equal(symlink(at("nowhere"), at("dangling.out")), 0);
    refused_by_every_writer(at("dangling.out"), "is a symbolic link; refusing to replace it; give its target's path");
    assert_int_equal(access(at("nowhere"), F_OK), -1);
    /* train's own run.h5 as a link */
    assert_int_equal(qat_test_popen(NULL, 1, "mkdir -p '%s'", at("SL/dev")), 0);
    assert_int_equal(symlink(at("nowhere"), at("SL/dev/run.h5")), 0);
    tiny_config(at("dev.yaml"), "dev", 2048);
    assert_int_equal(QAT("train", (char *)at("dev.yaml"), "--out", (char *)at("SL"), "--quiet"), 2);
    printf("  train (run.h5 a link): %s", g_err);
    assert_non_null(strstr(g_err, "is a symbolic link"));
}

/* A file of another kind than the command writes is never replaced: `data pack
 * -o a.txt.gz` replaced a gzip text file with a shard, `grads --out a.txt` a
 * text file with HDF5, exit 0. A file of the command's own kind, or an empty
 * one, is replaced. */
static void test_other_kind_destination(void **state) {
    (void)state;
    write_text(at("kind.txt"), "a text file someone keeps\n");
    assert_int_equal(qat_test_popen(NULL, 1, "gzip -c '%s' > '%s'", at("kind.txt"), at("kind.txt.gz")), 0);
    old_shard(at("kind.bin"));
    write_text(at("kind.svg"), "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>\n");
    /* at() keeps 8 paths at a time: the arguments get their own */
    char text[1200], ckpt[1200], csv[1200], fit[1200], sweep[1200];
    snprintf(text, sizeof text, "%s", at("text.txt"));
    snprintf(ckpt, sizeof ckpt, "%s", at("R/t/ckpt.h5"));
    snprintf(csv, sizeof csv, "%s", at("runs.csv"));
    snprintf(fit, sizeof fit, "%s", at("fit.h5"));
    snprintf(sweep, sizeof sweep, "%s", at("sweep.yaml"));
    struct { const char *dest, *want; char *args[12]; } cases[] = {
        {"kind.txt.gz", "is gzip data, not an llm.c token shard", {"data", "pack", text, "-o", NULL}},
        {"kind.txt", "is a text file, not an llm.c token shard", {"data", "pack", text, "-o", NULL}},
        {"kind.txt", "is a text file, not an llm.c token shard", {"data", "synth", "--tokens", "100", "--val", "0", "-o", NULL}},
        {"kind.txt", "is a text file, not a qat gradients file", {"grads", "--checkpoint", ckpt, "--out", NULL}},
        {"kind.bin", "is an llm.c token shard, not a qat gradients file", {"grads", "--checkpoint", ckpt, "--out", NULL}},
        {"kind.txt", "is a text file, not a qat fit", {"fit", csv, "--no-loo", "--out", NULL}},
        {"kind.txt", "is a text file, not an SVG image", {"plot", fit, "--kind", "law", "-o", NULL}},
        {"kind.bin", "is an llm.c token shard, not a text file", {"fit", csv, "--no-loo", "--csv", NULL}},
        {"kind.svg", "is an SVG image, not a text file", {"fit", csv, "--no-loo", "--csv", NULL}},
        {"kind.txt.gz", "is gzip data, not a text file", {"sweep", sweep, "--emit-slurm", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dest[1200];
        snprintf(dest, sizeof dest, "%s", at(cases[i].dest));
        append_arg(cases[i].args, dest);
        size_t n0 = 0, n1 = 0;
        char *before = slurp(dest, &n0);
        int rc = qat_lim(0, cases[i].args);
        printf("  %s %s: exit %d: %s", cases[i].args[0], cases[i].dest, rc, g_err);
        assert_int_equal(rc, 2);
        assert_int_equal(lines_of(g_err), 1);
        assert_non_null(strstr(g_err, cases[i].want));
        char *after = slurp(dest, &n1);
        assert_true(before && after && n0 == n1 && !memcmp(before, after, n0));
        free(before);
        free(after);
    }
    /* its own kind, or an empty file, is replaced */
    assert_int_equal(QAT("data", "pack", (char *)at("text.txt"), "-o", (char *)at("kind.bin")), 0);
    assert_int_equal(QAT("plot", (char *)at("fit.h5"), "--kind", "law", "-o", (char *)at("kind.svg")), 0);
    write_text(at("empty.out"), "");
    assert_int_equal(QAT("grads", "--checkpoint", (char *)at("R/t/ckpt.h5"), "--out", (char *)at("empty.out")), 0);
}

/* ------------------------------------------- #6 and a NUL in a value */

static void test_empty_output_and_nul(void **state) {
    (void)state;
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s", at("empty.yaml"));
    tiny_config(cfg, "qat-io-faults-empty-out", 2048);
    assert_int_equal(QAT("train", cfg, "--out", "", "--quiet"), 2);
    printf("  train --out '': %s", g_err);
    assert_non_null(strstr(g_err, "qat: train: --out ''"));
    assert_int_equal(access("/qat-io-faults-empty-out", F_OK), -1);
    /* each names its command and option (docs/cli.md) */
    assert_int_equal(QAT("grads", cfg, "--out", ""), 2);
    assert_non_null(strstr(g_err, "qat: grads: --out '': expected a file name"));
    assert_int_equal(QAT("plot", (char *)at("fit.h5"), "--kind", "law", "-o", ""), 2);
    assert_non_null(strstr(g_err, "qat: plot: -o '': expected a file name"));
    assert_int_equal(QAT("fit", (char *)at("runs.csv"), "--no-loo", "--out", ""), 2);
    assert_non_null(strstr(g_err, "qat: fit: --out '': expected a file name"));
    assert_int_equal(QAT("data", "pack", (char *)at("text.txt"), "-o", ""), 2);
    assert_non_null(strstr(g_err, "qat: data pack: -o '': expected a file name"));
    /* name: "x\0y" is three characters; cut at the NUL it would be "x" */
    write_text(at("nul.yaml"), "name: \"x\\0y\"\nmodel: {preset: s1, seq_len: 32}\n");
    assert_int_equal(QAT("train", (char *)at("nul.yaml"), "--print-config"), 2);
    printf("  name \"x\\0y\": %s", g_err);
    assert_non_null(strstr(g_err, "nul.yaml:1:"));
    assert_non_null(strstr(g_err, "NUL"));
}

/* --------------------------------------- #12: outputs on a full disk */

/* Each output command with a destination that already holds an older file of
 * its kind (old_outputs), run with `limit` (RLIMIT_FSIZE bytes; 0: none, the
 * file system itself is full): exit 1, one line naming the destination and
 * `why`, the old file kept, no temporary. */
static void outputs_fail_cleanly(const char *dir, long limit, const char *why) {
    struct { const char *name; char *args[12]; } cases[] = {
        {"fig.svg", {"plot", (char *)at("fit.h5"), "--kind", "law", "-o", NULL}},
        {"fit.csv", {"fit", (char *)at("runs.csv"), "--no-loo", "--csv", NULL}},
        {"fit2.h5", {"fit", (char *)at("runs.csv"), "--no-loo", "--out", NULL}},
        {"grads.h5", {"grads", (char *)at("tiny.yaml"), "--out", NULL}},
        {"text.bin", {"data", "pack", (char *)at("text.txt"), "-o", NULL}},
        {"syn.bin", {"data", "synth", "--tokens", "20000", "--val", "0", "-o", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dest[1200], tmp[1300];
        snprintf(dest, sizeof dest, "%s/%s", dir, cases[i].name);
        snprintf(tmp, sizeof tmp, "%s.tmp", dest);
        append_arg(cases[i].args, dest);
        size_t n0 = 0, n1 = 0;
        char *before = slurp(dest, &n0);
        assert_non_null(before);
        int rc = qat_lim(limit, cases[i].args);
        printf("  %s %s (%s): exit %d: %s", cases[i].args[0], cases[i].name, why, rc, g_err);
        assert_int_equal(rc, 1);
        assert_int_equal(lines_of(g_err), 1);
        assert_non_null(strstr(g_err, dest));
        assert_non_null(strstr(g_err, why));
        assert_null(strstr(g_err, "HDF5"));
        char *old = slurp(dest, &n1);
        assert_non_null(old);
        assert_true(n0 == n1 && !memcmp(before, old, n0));
        free(old);
        free(before);
        assert_int_equal(access(tmp, F_OK), -1);
    }
}

/* Older outputs, each of the kind its command writes (a command replaces its
 * own kind only, docs/cli.md "Output files"). */
static void old_outputs(const char *dir) {
    char p[1200];
    snprintf(p, sizeof p, "%s/fig.svg", dir);
    write_text(p, "<svg xmlns=\"http://www.w3.org/2000/svg\">OLD</svg>\n");
    snprintf(p, sizeof p, "%s/fit.csv", dir);
    write_text(p, "OLD");
    snprintf(p, sizeof p, "%s/fit2.h5", dir);
    h5_with_groups(p, "runs", "pairs");
    snprintf(p, sizeof p, "%s/grads.h5", dir);
    h5_with_groups(p, "grads", "batch");
    snprintf(p, sizeof p, "%s/text.bin", dir);
    old_shard(p);
    snprintf(p, sizeof p, "%s/syn.bin", dir);
    old_shard(p);
}

/* An output file that cannot be created is an I/O failure, exit 1, in one line
 * naming the path and the system's reason (docs/cli.md): /proc exists but takes
 * no new file (fit --law chen --svg: tests/test_scaling_chen.c), and a grads --out in a missing directory fails at the end, after
 * the work (both were exit 2, as if the user's argument were wrong). */
static void test_outputs_that_cannot_be_created(void **state) {
    (void)state;
    char nodir[1200];
    snprintf(nodir, sizeof nodir, "%s/nonexist/g.h5", g_dir);
    struct { const char *dest; char *args[12]; } cases[] = {
        {"/proc/x.csv", {"fit", (char *)at("runs.csv"), "--no-loo", "--csv", NULL}},
        {"/proc/x.h5", {"fit", (char *)at("runs.csv"), "--no-loo", "--out", NULL}},
        {nodir, {"grads", (char *)at("tiny.yaml"), "--out", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        append_arg(cases[i].args, (char *)cases[i].dest);
        int rc = qat_lim(0, cases[i].args);
        printf("  %s %s: exit %d: %s", cases[i].args[0], cases[i].dest, rc, g_err);
        /* for all but root, /proc is a directory we may not write: fit refuses it up front (exit 2) */
        int up_front = !is_root() && !strncmp(cases[i].dest, "/proc/", 6);
        assert_int_equal(rc, up_front ? 2 : 1);
        assert_int_equal(lines_of(g_err), 1);
        assert_non_null(strstr(g_err, cases[i].dest));
        assert_non_null(strstr(g_err, up_front ? "cannot write in the directory /proc" : strerror(ENOENT)));
    }
}

/* A tmpfs at DIR (root only); 0 when mounted. */
static int small_tmpfs(const char *dir, const char *size) {
    char opt[64];
    snprintf(opt, sizeof opt, "size=%s", size);
    mkdir(dir, 0755);
    return is_root() ? mount("tmpfs", dir, "tmpfs", 0, opt) : -1;
}

/* Fill a file system until it refuses another byte. */
static void fill_up(const char *dir) {
    char p[1200];
    snprintf(p, sizeof p, "%s/filler", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    static char block[4096];
    while (write(fd, block, sizeof block) > 0) {}
    while (write(fd, block, 1) > 0) {}
    close(fd);
}

static void test_outputs_on_a_full_disk(void **state) {
    (void)state;
    char d[1200];
    snprintf(d, sizeof d, "%s", at("lim"));
    assert_int_equal(mkdir(d, 0755), 0);
    old_outputs(d);
    /* 100 bytes: past the CSV's header, before any output is complete */
    outputs_fail_cleanly(d, 100, strerror(EFBIG));
    snprintf(d, sizeof d, "%s", at("full"));
    if (small_tmpfs(d, "256k") != 0) {
        printf("  (not root or no tmpfs: the ENOSPC case is skipped; RLIMIT_FSIZE covered the same paths)\n");
        return;
    }
    old_outputs(d);
    fill_up(d);
    outputs_fail_cleanly(d, 0, strerror(ENOSPC));
    umount2(d, MNT_DETACH);
}

/* ------------------------------------ #1: a checkpoint on a full disk */

static int64_t ckpt_step(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    int64_t step = -1;
    hid_t d = H5Dopen2(f, "state/step", H5P_DEFAULT);
    if (d >= 0) H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &step), H5Dclose(d);
    H5Fclose(f);
    return step;
}

static void run_ends_failed(const char *rundir, int64_t kept_step, const char *why) {
    char ck[1200], rl[1200], tmp[1300];
    snprintf(ck, sizeof ck, "%s/ckpt.h5", rundir);
    snprintf(rl, sizeof rl, "%s/run.h5", rundir);
    snprintf(tmp, sizeof tmp, "%s/ckpt.h5.tmp", rundir);
    assert_int_equal(lines_of(g_err), 1);
    assert_non_null(strstr(g_err, "ckpt.h5"));
    assert_non_null(strstr(g_err, why));
    assert_null(strstr(g_err, "HDF5"));
    assert_int_equal(ckpt_step(ck), kept_step);
    assert_int_equal(access(tmp, F_OK), -1);
    qat_runlog_summary s;
    assert_int_equal(qat_runlog_read_final(rl, &s), QAT_OK);
    assert_string_equal(s.status, "failed");
    assert_int_equal(s.live, 0);
}

static void test_checkpoint_on_a_full_disk(void **state) {
    (void)state;
    char cfg[1200], out[1200], rundir[1200];
    snprintf(cfg, sizeof cfg, "%s", at("ck.yaml"));
    snprintf(out, sizeof out, "%s", at("ck"));
    snprintf(rundir, sizeof rundir, "%s/c", out);
    tiny_config(cfg, "c", 40960);
    /* A first checkpoint at step 10, then a resume whose checkpoints cannot be
     * written: a checkpoint is ~0.5 MB, the run log stays under 100 kB. */
    assert_int_equal(QAT("train", cfg, "--out", out, "--quiet", "--stop-after", "10"), 0);
    int rc = qat_lim(300000, (char *[]){"train", cfg, "--out", out, "--quiet", "--resume", NULL});
    printf("  checkpoint past RLIMIT_FSIZE: exit %d: %s", rc, g_err);
    assert_int_equal(rc, 1);
    run_ends_failed(rundir, 10, strerror(EFBIG));

    /* The issue's case: a 900 KiB tmpfs fills at the second checkpoint. */
    char mnt[1200];
    snprintf(mnt, sizeof mnt, "%s", at("ckfull"));
    if (small_tmpfs(mnt, "900k") != 0) {
        printf("  (not root or no tmpfs: the ENOSPC case is skipped)\n");
        return;
    }
    rc = QAT("train", cfg, "--out", mnt, "--quiet");
    printf("  checkpoint on a full tmpfs: exit %d: %s", rc, g_err);
    assert_int_equal(rc, 1);
    snprintf(rundir, sizeof rundir, "%s/c", mnt);
    run_ends_failed(rundir, 10, strerror(ENOSPC));
    umount2(mnt, MNT_DETACH);
}

/* ------------------------------------------------ #10: checksums */

/* Every dataset is compact (inside a checksummed object header) or carries
 * the fletcher32 filter. */
static herr_t check_dataset(hid_t loc, const char *name, const H5O_info_t *info, void *data) {
    if (info->type != H5O_TYPE_DATASET) return 0;
    int *bad = data;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(d);
    int ok = H5Pget_layout(dcpl) == H5D_COMPACT;
    for (int i = 0; !ok && i < H5Pget_nfilters(dcpl); i++) {
        unsigned flags, conf;
        size_t nv = 0;
        ok = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nv, NULL, 0, NULL, &conf) == H5Z_FILTER_FLETCHER32;
    }
    if (!ok) {
        fprintf(stderr, "  dataset %s: neither compact nor fletcher32\n", name);
        (*bad)++;
    }
    H5Pclose(dcpl);
    H5Dclose(d);
    return 0;
}

static int unprotected_datasets(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
    if (f < 0) f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    int bad = 0;
    H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, check_dataset, &bad);
    H5Fclose(f);
    return bad;
}

/* Flip 64 bytes inside the first chunk of dataset `name` (copying `src` to `dst` first). */
static void damage(const char *src, const char *dst, const char *name) {
    assert_int_equal(qat_test_popen(NULL, 1, "cp '%s' '%s'", src, dst), 0);
    hid_t f = H5Fopen(dst, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0, off[8];
    unsigned mask;
    hid_t sp = H5Dget_space(d);
    assert_true(H5Dget_chunk_info(d, sp, 0, off, &mask, &addr, &size) >= 0);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    assert_true(addr != HADDR_UNDEF && size > 72);
    int fd = open(dst, O_RDWR);
    unsigned char b[64];
    assert_int_equal(pread(fd, b, 64, (off_t)addr + 8), 64);
    for (int i = 0; i < 64; i++) b[i] ^= 0x5a;
    assert_int_equal(pwrite(fd, b, 64, (off_t)addr + 8), 64);
    close(fd);
}

/* Flip 16 bytes inside the object header of `name` (a compact scalar: its
 * value lives there), in a copy of src at dst: 40 bytes in, past the prefix
 * (signature, flags, times, size), among the header's messages. */
static void damage_header(const char *src, const char *dst, const char *name) {
    if (strcmp(src, dst)) assert_int_equal(qat_test_popen(NULL, 1, "cp '%s' '%s'", src, dst), 0);
    hid_t f = H5Fopen(dst, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    H5O_info_t oi;
    assert_true(H5Oget_info_by_name(f, name, &oi, H5P_DEFAULT) >= 0);
    H5Fclose(f);
    int fd = open(dst, O_RDWR);
    unsigned char b[16];
    assert_int_equal(pread(fd, b, 16, (off_t)oi.addr + 40), 16);
    for (int i = 0; i < 16; i++) b[i] ^= 0x5a;
    assert_int_equal(pwrite(fd, b, 16, (off_t)oi.addr + 40), 16);
    close(fd);
}

static void test_checksums(void **state) {
    (void)state;
    char ck[1200], rl[1200], g[1200], bad[1200], badfit[1200], runs2[1200];
    snprintf(ck, sizeof ck, "%s", at("R/t/ckpt.h5"));
    snprintf(rl, sizeof rl, "%s", at("R/t/run.h5"));
    snprintf(g, sizeof g, "%s", at("g.h5"));
    assert_int_equal(QAT("grads", "--checkpoint", ck, "--out", g), 0);
    /* every dataset of every kind of file qat writes */
    assert_int_equal(unprotected_datasets(ck), 0);
    assert_int_equal(unprotected_datasets(rl), 0);
    assert_int_equal(unprotected_datasets(g), 0);
    assert_int_equal(unprotected_datasets(at("fit.h5")), 0);

    /* a damaged checkpoint: every reader exits 1 naming file and dataset */
    const char *w = "params/model.layers.0.mlp.up_proj.weight";
    snprintf(bad, sizeof bad, "%s", at("bad-ckpt.h5"));
    damage(ck, bad, w);
    char *const readers[][8] = {
        {"eval", "--checkpoint", bad, NULL},
        {"sample", "--checkpoint", bad, "--tokens", "4", NULL},
        {"grads", "--checkpoint", bad, "--out", (char *)at("g2.h5"), NULL},
        {"train", (char *)at("tiny.yaml"), "--out", (char *)at("I"), "--init", bad, NULL},
    };
    for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++) {
        int rc = qat_lim(0, readers[i]);
        printf("  %s of a damaged checkpoint: exit %d: %s", readers[i][0], rc, g_err);
        assert_int_equal(rc, 1);
        assert_non_null(strstr(g_err, "bad-ckpt.h5: dataset /params/model.layers.0.mlp.up_proj.weight: checksum mismatch"));
    }
    assert_int_equal(access(at("g2.h5"), F_OK), -1);
    assert_int_equal(access(at("I/t"), F_OK), -1); /* --init is checked before the run directory exists */

    /* a damaged run log: its series cannot be read */
    snprintf(runs2, sizeof runs2, "%s", at("R2/t"));
    assert_int_equal(qat_test_popen(NULL, 1, "mkdir -p '%s'", runs2), 0);
    char rl2[1300];
    snprintf(rl2, sizeof rl2, "%s/run.h5", runs2);
    damage(rl, rl2, "train/loss");
    double *v = NULL;
    int64_t n = 0;
    assert_int_equal(qat_runlog_read_series(rl2, "train/loss", &v, &n), QAT_ERUNTIME);
    printf("  a damaged run log: %s\n", qat_errmsg());
    assert_non_null(strstr(qat_errmsg(), "dataset /train/loss: checksum mismatch"));
    free(v);

    /* a damaged fit: plot exits 1 naming the table */
    snprintf(badfit, sizeof badfit, "%s", at("bad-fit.h5"));
    damage(at("fit.h5"), badfit, "runs/loss");
    assert_int_equal(QAT("plot", badfit, "--kind", "law", "-o", (char *)at("bad.svg")), 1);
    printf("  plot of a damaged fit: %s", g_err);
    assert_non_null(strstr(g_err, "dataset /runs/loss: checksum mismatch"));
    assert_int_equal(access(at("bad.svg"), F_OK), -1);

    /* a damaged /final of a completed run: fit exits 1 (it used to skip it as
     * unreadable), and a sweep keeps the run as it is instead of restarting it */
    char swdir[1200], swfile[1200], h5[1300];
    snprintf(swdir, sizeof swdir, "%s", at("dmg"));
    snprintf(swfile, sizeof swfile, "%s", at("dmg.yaml"));
    char text[1024];
    snprintf(text, sizeof text,
             "base:\n"
             "  model: {preset: \"\", layers: 2, dim: 16, heads: 2, vocab: 64, seq_len: 16}\n"
             "  data: {source: synthetic, synth_topics: 2}\n"
             "  train: {tokens: 2048, batch_tokens: 64, eval_every: 0, eval_tokens: 64, checkpoint_every: 16}\n"
             "grid: {seed: [1]}\n"
             "out: %s\n", swdir);
    write_text(swfile, text);
    assert_int_equal(QAT("sweep", swfile), 0);
    snprintf(h5, sizeof h5, "%s/seed1/run.h5", swdir);
    damage_header(h5, h5, "final/val_loss");
    assert_int_equal(QAT("fit", swdir, "--no-loo"), 1);
    printf("  fit over a damaged run log: %s", g_err);
    assert_non_null(strstr(g_err, "checksum mismatch"));
    assert_non_null(strstr(g_err, "seed1/run.h5"));
    char *out = NULL;
    assert_int_equal(qat_test_popen(&out, 1, "'%s' sweep '%s'", getenv("QAT_BIN"), swfile), 1);
    printf("%s", out);
    assert_non_null(strstr(out, "seed1  FAILED"));
    assert_non_null(strstr(out, "checksum mismatch"));
    assert_non_null(strstr(out, "0 started, 0 resumed"));
    free(out);
    assert_int_equal(access(h5, F_OK), 0);
}

/* A run log cut short (a copy that stopped part-way, a full disk outside qat)
 * under a run with a checkpoint: --resume refuses it (exit 2) and never
 * replaces it, since it holds the series up to the damage, and its message
 * says the way on; moving it aside as told resumes from the checkpoint. Before,
 * the message ended at "not an HDF5 run log?", a dead end. */
static void test_truncated_run_log_on_resume(void **state) {
    (void)state;
    char cfg[1200], runs[1200], rl[1300], aside[1300];
    snprintf(cfg, sizeof cfg, "%s", at("tiny.yaml"));
    snprintf(runs, sizeof runs, "%s", at("TR"));
    snprintf(rl, sizeof rl, "%s/t/run.h5", runs);
    snprintf(aside, sizeof aside, "%s/t/run.h5.damaged", runs);
    assert_int_equal(QAT("train", cfg, "--out", runs, "--quiet", "--stop-after", "12"), 0);
    assert_int_equal(truncate(rl, 2000), 0);
    assert_int_equal(QAT("train", cfg, "--out", runs, "--quiet", "--resume"), 2);
    printf("  resume over a truncated run log: %s", g_err);
    assert_non_null(strstr(g_err, "run.h5: cannot open for resuming"));
    assert_non_null(strstr(g_err, "at step 12, move "));
    assert_non_null(strstr(g_err, "aside and --resume again"));
    struct stat st;
    assert_int_equal(stat(rl, &st), 0);
    assert_int_equal(st.st_size, 2000); /* left as it was */
    assert_int_equal(rename(rl, aside), 0);
    assert_int_equal(QAT("train", cfg, "--out", runs, "--quiet", "--resume"), 0);
    assert_non_null(strstr(g_err, "is missing; resuming from"));
    assert_int_equal(access(rl, F_OK), 0);

    /* overwritten with text: the output-kind rule refuses to replace it, and says
     * the way on for a resume too (it said only "choose another output") */
    char runs2[1200], rl2[1300];
    snprintf(runs2, sizeof runs2, "%s", at("TR2"));
    snprintf(rl2, sizeof rl2, "%s/t/run.h5", runs2);
    assert_int_equal(QAT("train", cfg, "--out", runs2, "--quiet", "--stop-after", "12"), 0);
    write_text(rl2, "notes, not a run log\n");
    assert_int_equal(QAT("train", cfg, "--out", runs2, "--quiet", "--resume"), 2);
    printf("  resume over a run log overwritten with text: %s", g_err);
    assert_non_null(strstr(g_err, "move "));
    assert_non_null(strstr(g_err, "aside and --resume again"));
    struct stat st2;
    assert_int_equal(stat(rl2, &st2), 0);
    assert_int_equal(st2.st_size, 21); /* left as it was */
    /* emptied (0 bytes): no series to keep, so it is a missing log, recreated from
     * the checkpoint (it was replaced by an empty log and then refused) */
    assert_int_equal(truncate(rl2, 0), 0);
    assert_int_equal(QAT("train", cfg, "--out", runs2, "--quiet", "--resume"), 0);
    assert_non_null(strstr(g_err, "is missing; resuming from"));
}

/* A copy of src at dst with the byte at `off` changed (x ^ 0x5a). */
static void copy_flipped(const char *src, const char *dst, long off) {
    size_t n = 0;
    char *b = slurp(src, &n);
    assert_non_null(b);
    assert_true((size_t)off < n);
    b[off] ^= 0x5a;
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    free(b);
}

/* One byte of an HDF5 file's superblock changed (bytes 11-47: its fields and its
 * checksum). A destination's kind was probed with a SWMR open, and HDF5 retries
 * the metadata of a SWMR reader 100 times, sleeping 1, 2, 4, ... ns between:
 * `plot -o`, `fit --out`, `grads --out` and `train --resume` over such a file
 * never returned, and no SIGINT or SIGTERM ended the sleep. Now a destination is
 * refused at once (an HDF5 file of no kind qat can tell, exit 2, left as it was)
 * and a resume stops with exit 1 naming the damage. A child still running after
 * 60 s is killed (SIGALRM), which fails the exit-code check. */
static void test_damaged_superblock(void **state) {
    (void)state;
    g_alarm = 60;
    const long offs[] = {11, 14, 20, 47};
    for (int i = 0; i < 4; i++) {
        char dmg[1200];
        snprintf(dmg, sizeof dmg, "%s", at("dmg.h5"));
        copy_flipped(at("fit.h5"), dmg, offs[i]);
        size_t n0 = 0, n1 = 0;
        char *before = slurp(dmg, &n0);
        int rc = QAT("plot", (char *)at("fit.h5"), "--kind", "law", "-o", dmg);
        printf("  plot -o over a superblock changed at byte %ld: exit %d: %s", offs[i], rc, g_err);
        assert_int_equal(rc, 2);
        assert_int_equal(lines_of(g_err), 1);
        assert_non_null(strstr(g_err, "is an HDF5 file; refusing to replace it"));
        assert_int_equal(QAT("fit", (char *)at("runs.csv"), "--no-loo", "--out", dmg), 2);
        char *after = slurp(dmg, &n1);
        assert_true(before && after && n0 == n1 && !memcmp(before, after, n0));
        free(before);
        free(after);
    }
    char cfg[1200], runs[1200], rl[1300], ck[1300], keep[1300];
    snprintf(cfg, sizeof cfg, "%s", at("tiny.yaml"));
    snprintf(runs, sizeof runs, "%s", at("SB"));
    snprintf(rl, sizeof rl, "%s/t/run.h5", runs);
    snprintf(ck, sizeof ck, "%s/t/ckpt.h5", runs);
    snprintf(keep, sizeof keep, "%s/kept.h5", runs);
    assert_int_equal(QAT("train", cfg, "--out", runs, "--quiet", "--stop-after", "12"), 0);
    const char *files[] = {rl, ck};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rename(files[i], keep), 0);
        copy_flipped(keep, files[i], 20);
        int rc = QAT("train", cfg, "--out", runs, "--quiet", "--resume");
        printf("  --resume, %s's superblock changed: exit %d: %s", i ? "ckpt.h5" : "run.h5", rc, g_err);
        assert_int_equal(rc, 1);
        assert_non_null(strstr(g_err, "checksum mismatch in the file's metadata"));
        assert_int_equal(rename(keep, files[i]), 0);
    }
    /* cut short: damage, exit 1, for every kind (a checkpoint and a FIT.h5 were exit 2,
     * "not a readable HDF5 checkpoint", while a run log was exit 1) */
    char cut[1300];
    snprintf(cut, sizeof cut, "%s/cut/run.h5", runs);
    assert_int_equal(qat_test_popen(NULL, 1, "mkdir -p '%s/cut' && head -c 5000 '%s' > '%s' && head -c 3000 '%s' > '%s/cut.ckpt.h5' "
                                    "&& head -c 2000 '%s' > '%s/cut.fit.h5'", runs, rl, cut, ck, runs, at("fit.h5"), runs), 0);
    char cutck[1300], cutfit[1300];
    snprintf(cutck, sizeof cutck, "%s/cut.ckpt.h5", runs);
    snprintf(cutfit, sizeof cutfit, "%s/cut.fit.h5", runs);
    char *cuts[][8] = {
        {"fit", cut, "--law", "chinchilla", NULL},
        {"eval", "--checkpoint", cutck, NULL},
        {"plot", cutfit, "--kind", "law", "-o", (char *)at("cut.svg"), NULL},
    };
    for (int i = 0; i < 3; i++) {
        int rc = qat_lim(0, cuts[i]);
        printf("  %s of a file cut short: exit %d: %s", cuts[i][0], rc, g_err);
        assert_int_equal(rc, 1);
        assert_int_equal(lines_of(g_err), 1);
        assert_non_null(strstr(g_err, "truncated: "));
        assert_non_null(strstr(g_err, " its superblock records"));
    }
    g_alarm = 0;
}

/* A FIFO given where an HDF5 file is read. Opening one with no writer blocks, and
 * `train --init FIFO` blocked there deaf to SIGINT and SIGTERM (its stop handlers
 * are in place before the config is read, and restart the open); the others
 * blocked too. HDF5 cannot read a pipe in any case (it seeks), so every reader
 * refuses one before opening it: exit 2, one line, at once (a child still running
 * after 60 s dies of SIGALRM, which fails the exit-code check). */
static void test_pipe_inputs(void **state) {
    (void)state;
    char fifo[1200], cfg[1200];
    snprintf(fifo, sizeof fifo, "%s", at("ckpt.fifo"));
    snprintf(cfg, sizeof cfg, "%s", at("tiny.yaml"));
    assert_int_equal(mkfifo(fifo, 0600), 0);
    g_alarm = 60;
    char *cmds[][8] = {
        {"train", cfg, "--init", fifo, "--out", (char *)at("PI"), "--quiet", NULL},
        {"eval", "--checkpoint", fifo, NULL},
        {"sample", "--checkpoint", fifo, NULL},
        {"plot", fifo, "--kind", "law", "-o", (char *)at("pipe.svg"), NULL},
        {"capacity", "int4", "--fit", fifo, NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int rc = qat_lim(0, cmds[i]);
        printf("  %s with a FIFO: exit %d: %s", cmds[i][0], rc, g_err);
        assert_int_equal(rc, 2);
        assert_int_equal(lines_of(g_err), 1);
        assert_non_null(strstr(g_err, "is a pipe, not a file"));
    }
    g_alarm = 0;
}

/* --------------------------------------------- stdout that cannot be written */

/* Every command that prints its result on stdout, with stdout on /dev/full
 * (every write ENOSPC): exit 1 and, as the last line of stderr and only once,
 * `qat: cannot write the output: ...` (cli/qat.c checks stdout after every
 * subcommand). Before, all but sample exited 0 with the result lost. Small
 * outputs fail at the final flush, large ones (the --print-config YAML) part-way. */
static void test_stdout_that_cannot_be_written(void **state) {
    (void)state;
    if (access("/dev/full", W_OK) != 0) {
        printf("  (no /dev/full: skipped)\n");
        return;
    }
    char *const ck = (char *)at("R/t/ckpt.h5");
    assert_int_equal(QAT("data", "synth", "--tokens", "1000", "--val", "0", "-o", (char *)at("inspect.bin")), 0);
    char *const cmds[][12] = {
        {"--help", NULL},
        {"capacity", "int4", "--json", NULL},
        {"fit", (char *)at("runs.csv"), "--no-loo", "--json", NULL},
        {"train", (char *)at("tiny.yaml"), "--print-config", NULL},
        {"eval", "--checkpoint", ck, NULL},
        {"sample", "--checkpoint", ck, "--tokens", "4", NULL},
        {"grads", "--checkpoint", ck, "--out", (char *)at("gfull.h5"), NULL},
        {"data", "inspect", (char *)at("inspect.bin"), NULL},
        {"sweep", (char *)at("sweep.yaml"), "--dry-run", NULL},
    };
    const char *line = "qat: cannot write the output: ";
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int rc = qat_run(0, "/dev/full", cmds[i]);
        printf("  %s %s > /dev/full: exit %d: %s", cmds[i][0], cmds[i][1] ? cmds[i][1] : "", rc, g_err);
        assert_int_equal(rc, 1);
        const char *at_line = strstr(g_err, line);
        assert_non_null(at_line);
        assert_null(strstr(at_line + 1, line));
        assert_int_equal(lines_of(at_line), 1);
        assert_int_equal(at_line[strlen(at_line) - 1], '\n');
    }
    /* a command that failed keeps its own status and message */
    int rc = qat_run(0, "/dev/full", (char *[]){"fit", (char *)at("missing.csv"), NULL});
    assert_int_equal(rc, 2);
    assert_null(strstr(g_err, line));
    assert_int_equal(lines_of(g_err), 1);
    /* and one whose stdout is fine says nothing more */
    assert_int_equal(qat_run(0, "/dev/null", (char *[]){"capacity", "int4", "--json", NULL}), 0);
    assert_string_equal(g_err, "");
}

/* ------------------------------------------------ files of an older qat */

/* `qat ARGS...`'s stdout in a malloc'd string, every `from` replaced by `to`
 * (the paths of two copies of the same file); its exit status in *rc. */
static char *qat_out(int *rc, const char *from, const char *to, char *const args[]) {
    char out[1200];
    snprintf(out, sizeof out, "%s", at("stdout.txt"));
    write_text(out, "");
    *rc = qat_run(0, out, args);
    size_t n;
    char *s = slurp(out, &n);
    assert_non_null(s);
    size_t lf = strlen(from), lt = strlen(to);
    assert_true(lt <= lf);
    for (char *p = s; lf && (p = strstr(p, from));) {
        memcpy(p, to, lt);
        memmove(p + lt, p + lf, strlen(p + lf) + 1);
        p += lt;
    }
    return s;
}

/* The runs of runs_csv at four formats: a unified fit with capacity constants. */
static void unified_csv(const char *path) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "N,D,loss,format,act_format\n");
    const char *fmt[4] = {"fp32", "int4", "int3", "int2"};
    const double rho[4] = {1, 0.67, 0.45, 0.2}, Ns[4] = {1e6, 3e6, 1e7, 3e7}, Ds[3] = {1e8, 3e8, 1e9};
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 3; j++)
                fprintf(f, "%g,%g,%.12g,%s,%s\n", Ns[i], Ds[j],
                        400 * pow(Ns[i] * rho[k], -0.34) + 410 * pow(Ds[j], -0.28) + 1.69, fmt[k], fmt[k]);
    fclose(f);
}

/* A run.h5, ckpt.h5 and FIT.h5 as qat wrote them before its strings were
 * fixed-length: every command that reads one gives what it gives for the
 * file this qat writes, and a resume continues the old run. */
static void test_files_of_older_qat(void **state) {
    (void)state;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", at("O"), at("O/t"));
    assert_int_equal(qat_test_popen(NULL, 1, "%s", cmd), 0);
    h5fuzz_write_old(at("R/t/run.h5"), at("O/t/run.h5"), 1, NULL);
    h5fuzz_write_old(at("R/t/ckpt.h5"), at("O/t/ckpt.h5"), 1, NULL);
    static const char *const fit_cols[] = {"/params/name", "/params/fixed_reason", "/runs/weight_format",
                                           "/runs/act_format", "/runs/grad_format", "/runs/origin", "/pairs/name",
                                           "/decoupled/name", "/quartet/key", "/formats/name", NULL};
    h5fuzz_write_old(at("fit.h5"), at("old-fit.h5"), 1, fit_cols);
    unified_csv(at("unified.csv"));
    assert_int_equal(
        QAT("fit", (char *)at("unified.csv"), "--law", "unified", "--no-loo", "--out", (char *)at("u.h5")), 0);
    h5fuzz_write_old(at("u.h5"), at("old-u.h5"), 0, fit_cols); /* and from before the CRCs */
    hid_t f = H5Fopen(at("O/t/run.h5"), H5F_ACC_RDONLY, H5P_DEFAULT), a = H5Aopen(f, "config", H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    assert_true(H5Tis_variable_str(t) > 0); /* the old layout indeed */
    H5Tclose(t);
    H5Aclose(a);
    H5Fclose(f);

    int rn, ro;
    char *n, *o;
    /* fit: the same runs, the same table (the law held: one run and a CSV
     * determine nothing, and the table is what reading the run gave) */
    n = qat_out(&rn, "", "", (char *[]){"fit", (char *)at("R/t"), (char *)at("runs.csv"), "--no-loo", "--fix", "A=400",
                                        "--fix", "alpha=0.34", "--fix", "B=410", "--fix", "beta=0.28", "--fix", "E=1.7",
                                        "--csv", (char *)at("n.csv"), NULL});
    o = qat_out(&ro, "", "", (char *[]){"fit", (char *)at("O/t"), (char *)at("runs.csv"), "--no-loo", "--fix", "A=400",
                                        "--fix", "alpha=0.34", "--fix", "B=410", "--fix", "beta=0.28", "--fix", "E=1.7",
                                        "--csv", (char *)at("o.csv"), NULL});
    assert_int_equal(rn, 0);
    assert_int_equal(ro, 0);
    free(n);
    free(o);
    size_t ln, lo;
    n = slurp(at("n.csv"), &ln);
    o = slurp(at("o.csv"), &lo);
    assert_non_null(n);
    assert_non_null(o);
    for (char *p = o; (p = strstr(p, "/O/t/")); p += 5) p[1] = 'R';
    assert_string_equal(o, n);
    free(n);
    free(o);
    /* eval and sample: the same model */
    n = qat_out(&rn, "/R/t/", "/O/t/",
                (char *[]){"eval", "--checkpoint", (char *)at("R/t/ckpt.h5"), "--tokens", "1024", NULL});
    o = qat_out(&ro, "", "", (char *[]){"eval", "--checkpoint", (char *)at("O/t/ckpt.h5"), "--tokens", "1024", NULL});
    assert_int_equal(rn, 0);
    assert_int_equal(ro, 0);
    assert_string_equal(o, n);
    free(n);
    free(o);
    /* plot: the same figure (the source's name aside) */
    assert_int_equal(QAT("plot", (char *)at("fit.h5"), "--kind", "law", "-o", (char *)at("n.svg")), 0);
    assert_int_equal(QAT("plot", (char *)at("old-fit.h5"), "--kind", "law", "-o", (char *)at("o.svg")), 0);
    n = slurp(at("n.svg"), &ln);
    o = slurp(at("o.svg"), &lo);
    for (char *p = o; (p = strstr(p, "old-fit.h5"));) memmove(p, p + 4, strlen(p + 4) + 1);
    assert_string_equal(o, n);
    free(n);
    free(o);
    /* capacity --fit: the same constants */
    n = qat_out(&rn, "", "", (char *[]){"capacity", "int4", "sp50", "--fit", (char *)at("u.h5"), NULL});
    o = qat_out(&ro, "", "", (char *[]){"capacity", "int4", "sp50", "--fit", (char *)at("old-u.h5"), NULL});
    assert_int_equal(rn, 0);
    assert_int_equal(ro, 0);
    assert_string_equal(o, n);
    free(n);
    free(o);
    /* train --resume: the old run goes on to a larger budget */
    tiny_config(at("tiny2.yaml"), "t", 30720);
    assert_int_equal(QAT("train", (char *)at("tiny2.yaml"), "--out", (char *)at("O"), "--quiet", "--resume"), 0);
    qat_runlog_summary s;
    assert_int_equal(qat_runlog_read_final(at("O/t/run.h5"), &s), QAT_OK);
    assert_string_equal(s.status, "completed");
    assert_int_equal(s.final.tokens, 30720);
    assert_string_equal(s.weight_format, "fp32");
}

int main(void) {
    if (!getenv("QAT_BIN")) {
        fprintf(stderr, "QAT_BIN is not set: skipped\n");
        return 77;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    /* Under `make test-asan`: HDF5's own leaks on the error paths these tests
     * take are suppressed for the qat children (tests/lsan-hdf5.supp). */
    qat_test_lsan_hdf5(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nonregular_destination),
        cmocka_unit_test(test_output_is_input),
        cmocka_unit_test(test_foreign_live_and_linked_destination),
        cmocka_unit_test(test_other_kind_destination),
        cmocka_unit_test(test_empty_output_and_nul),
        cmocka_unit_test(test_outputs_on_a_full_disk),
        cmocka_unit_test(test_outputs_that_cannot_be_created),
        cmocka_unit_test(test_checkpoint_on_a_full_disk),
        cmocka_unit_test(test_checksums),
        cmocka_unit_test(test_truncated_run_log_on_resume),
        cmocka_unit_test(test_damaged_superblock),
        cmocka_unit_test(test_pipe_inputs),
        cmocka_unit_test(test_stdout_that_cannot_be_written),
        cmocka_unit_test(test_files_of_older_qat),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
