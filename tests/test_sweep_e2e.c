/*
 * tests/test_sweep_e2e.c — `qat sweep` with the real binary (QAT_BIN) on tiny
 * models: an impossible run is reported with its reason while every other run
 * completes; a sweep killed part-way and run again completes only what was
 * missing (runs finished before keep their single log header); an interrupted
 * run is resumed from its checkpoint; a worker that fails at run time is
 * reported with the last lines of its train.log; shards run only their runs;
 * two sweeps over one output directory at once complete every run exactly
 * once (no run.h5 replaced or rewritten after it completed); the emitted Slurm
 * script passes `bash -n`; usage errors exit 2; the line saying how many runs
 * train at once with how many threads (--jobs auto or given) is printed, by
 * --dry-run too, and the per-run threads follow it; a completed sweep on a
 * read-only file system is reported as completed; a completed run under an
 * edited sweep file is continued (a larger budget) or refused (any other key),
 * never skipped as if it were the new run; the Slurm script quotes a log
 * directory with a space and a '%' as sbatch reads it; two sweeps with different bases over
 * one output directory each train every run under their own base; one sweep has one base
 * file however its path is spelled (relative, absolute as the Slurm tasks give it, with
 * '..'), the one --dry-run names, and train.log's header quotes it so that it pastes back.
 */
#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "runlog/runlog.h"
#include "testutil.h"

static char tmpdir[256];
static const char *qat;

/* DIR/name in one of four rotating buffers: copy what must outlive three more calls. */
static const char *path_in(const char *name) {
    static char buf[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *name, const char *text) {
    FILE *f = fopen(path_in(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Run a shell command; its output in *out (malloc'd), its exit status returned. */
#define run(out, ...) qat_test_popen((out), 0, __VA_ARGS__)

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* How often needle occurs in out/RUN/train.log (0 when there is none). */
static int count_in_log(const char *run, const char *needle) {
    char name[300], *text = NULL;
    snprintf(name, sizeof name, "out/%s/train.log", run);
    FILE *f = fopen(path_in(name), "r");
    if (!f) return 0;
    text = calloc(1, 1 << 20);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    text[n] = 0;
    fclose(f);
    int c = count_of(text, needle);
    free(text);
    return c;
}

static int headers_in_log(const char *run) { return count_in_log(run, "== qat sweep "); }

/* The note of a --resume that finds only the lock of a killed run: the sweep
 * creates that lock itself to decide a run's fate, and every fresh run's
 * worker said it (a run "killed before it wrote its log") though none was. */
static const char KILLED_NOTE[] = "only the lock of a run killed";

/* Processes whose command line mentions our temp dir (orphaned workers). */
static int procs_using_tmpdir(void) {
    DIR *d = opendir("/proc");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char p[300], buf[8192];
        snprintf(p, sizeof p, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i++)
            if (!buf[i]) buf[i] = ' ';
        buf[len] = 0;
        if (strstr(buf, tmpdir) && !strstr(buf, "test_sweep_e2e")) n++;
    }
    if (d) closedir(d);
    return n;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The one base file a sweep wrote under DIR/.sweep (base-HASH.yaml), into buf. */
static void the_base(const char *dir, char *buf, size_t n) {
    char *out, rel[300];
    snprintf(rel, sizeof rel, "%s/.sweep", dir);
    assert_int_equal(run(&out, "ls '%s'/base-*.yaml", path_in(rel)), 0);
    assert_int_equal(count_of(out, "\n"), 1);
    snprintf(buf, n, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
}

/* `qat sweep SWEEP --jobs 1 >LOG 2>&1` in the background; its pid. */
static pid_t start_sweep(const char *sweep, const char *log) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec '%s' sweep '%s' --jobs 1 >'%s' 2>&1", qat, sweep, log);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Two layers, width 16 or 24, 16-token context: a second or so per run. heads 3
 * does not divide dim 16, so run 1 (dim16-heads3) is impossible. */
/* The tiny sweep with base data `data` (one YAML flow mapping). */
static void write_sweep_data(const char *name, const char *data, const char *grid, const char *out) {
    char text[2048];
    snprintf(text, sizeof text,
             "# tiny sweep for the end-to-end test\n"
             "base:\n"
             "  model: {preset: \"\", layers: 2, dim: 16, heads: 2, vocab: 64, seq_len: 16}\n"
             "  data: %s\n"
             "  train: {tokens: 2048, batch_tokens: 64, eval_every: 0, eval_tokens: 64,\n"
             "          checkpoint_every: 4, log_every: 4, warmup: 0.1}\n"
             "grid:\n"
             "%s"
             "out: %s\n", data, grid, out);
    write_file(name, text);
}

/* On the synthetic corpus, with 2 topics so that vocab 64 holds it. */
static void write_sweep_as(const char *name, const char *grid, const char *out) {
    write_sweep_data(name, "{source: synthetic, synth_topics: 2}", grid, out);
}

static void write_sweep(void) {
    char out[600];
    snprintf(out, sizeof out, "%s/out", tmpdir);
    write_sweep_as("tiny.yaml", "  model.dim: [16, 24]\n  model.heads: [2, 3]\n", out);
}

static void test_usage(void **state) {
    (void)state;
    char *out;
    assert_int_equal(run(&out, "'%s' sweep --help", qat), 0);
    assert_non_null(strstr(out, "--emit-slurm"));
    free(out);
    assert_int_equal(run(NULL, "'%s' sweep --bogus 2>/dev/null", qat), 2);
    assert_int_equal(run(NULL, "'%s' sweep 2>/dev/null", qat), 2);
    /* an option where a value belongs is not taken for the value (core/num.h) */
    assert_int_equal(run(&out, "'%s' sweep x.yaml --jobs --dry-run 2>&1", qat), 2);
    assert_non_null(strstr(out, "incomplete option '--jobs'"));
    free(out);
    /* a leading space is not a number (strtoll would skip it) */
    assert_int_equal(run(&out, "'%s' sweep x.yaml --jobs ' 2' --dry-run 2>&1", qat), 2);
    assert_non_null(strstr(out, "--jobs ' 2': expected an integer in [1, 4096] or auto"));
    free(out);
    write_file("bad.yaml", "base: {}\ngrid:\n  model.dimm: [1, 2]\n");
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run 2>&1", qat, path_in("bad.yaml")), 2);
    assert_non_null(strstr(out, "bad.yaml:3:3: unknown key 'model.dimm' in grid (did you mean 'model.dim'?)"));
    free(out);
    assert_int_equal(run(&out, "'%s' sweep '%s' --shard 2/2 2>&1", qat, path_in("bad.yaml")), 2);
    free(out);
    /* a sweep file from a pipe reads as the file does (it is read once, never seeked) */
    assert_int_equal(run(&out, "cat '%s' | '%s' sweep /dev/stdin --dry-run 2>&1", path_in("bad.yaml"), qat), 2);
    assert_non_null(strstr(out, "/dev/stdin:3:3: unknown key 'model.dimm' in grid"));
    free(out);
    /* no possible run is the file's mistake, exit 2, even when only building the
     * model would tell (heads 3 does not divide the default preset's width 64) */
    char allbad[700];
    snprintf(allbad, sizeof allbad, "grid: {model.heads: [3, 5]}\nout: %s\n", path_in("allbad_out"));
    write_file("allbad.yaml", allbad);
    assert_int_equal(run(&out, "'%s' sweep '%s' 2>&1", qat, path_in("allbad.yaml")), 2);
    /* every run's mistake, each on its line, so that one edit fixes both (only the
     * first run's was named: heads 5 came up once heads 3 was fixed) */
    assert_non_null(strstr(out, "allbad.yaml: no run of the sweep is valid; the errors of its 2 runs:\n  "));
    assert_non_null(strstr(out, "allbad.yaml:1:22: model.heads = 3 does not divide model.dim = 64 (run heads3)\n  "));
    assert_non_null(strstr(out, "allbad.yaml:1:25: model.heads = 5 does not divide model.dim = 64 (run heads5)\n"));
    assert_int_equal(access(path_in("allbad_out"), F_OK), -1); /* nothing created */
    free(out);
    /* out: naming a file is said by --dry-run too, not only when the runs fail */
    char afile[600], sw[600];
    snprintf(afile, sizeof afile, "%s", path_in("afile"));
    write_file("afile", "x\n");
    write_sweep_as("fileout.yaml", "  seed: [1]\n", afile);
    snprintf(sw, sizeof sw, "%s", path_in("fileout.yaml"));
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run 2>&1", qat, sw), 2);
    assert_non_null(strstr(out, "exists and is not a directory"));
    free(out);
    /* out: under a file is the same mistake, said before the plan and the table
     * (it was said by the first launch, after the table, with nothing launched) */
    char under[700];
    snprintf(under, sizeof under, "%s/sub", afile);
    write_sweep_as("underfile.yaml", "  seed: [1]\n", under);
    snprintf(sw, sizeof sw, "%s", path_in("underfile.yaml"));
    for (int dry = 0; dry < 2; dry++) {
        assert_int_equal(run(&out, "'%s' sweep '%s' %s 2>&1", qat, sw, dry ? "--dry-run" : ""), 2);
        assert_non_null(strstr(out, "lies under "));
        assert_non_null(strstr(out, "afile, which exists and is not a directory; expected a directory for the runs"));
        assert_null(strstr(out, "qat sweep: 1 run")); /* neither the plan nor the table */
        free(out);
    }
}

/* The CPUs this test may use (the sweep it starts inherits them). */
static int my_cores(void) {
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) ? 1 : CPU_COUNT(&set);
}

/* The pick line in a --dry-run, with the sweep's CPUs capped through
 * SLURM_CPUS_PER_TASK (a cap only: the affinity mask still bounds it), so the
 * expectations hold on any machine with that many CPUs. Nothing is trained. */
static void test_jobs_pick(void **state) {
    (void)state;
    char text[2048], sw[600], swt[600], *out;
    snprintf(text, sizeof text,
             "base:\n"
             "  model: {preset: \"\", layers: 2, dim: 16, heads: 2, vocab: 64, seq_len: 16}\n"
             "  data: {source: synthetic, synth_topics: 2}\n"
             "  train: {tokens: 2048, batch_tokens: 64, eval_tokens: 64}\n"
             "grid:\n"
             "  model.dim: [16, 24]\n"
             "  model.heads: [2, 3]\n"
             "out: %s/out_pick\n", tmpdir);
    write_file("pick.yaml", text);
    snprintf(sw, sizeof sw, "%s", path_in("pick.yaml"));
    /* the same with threads set by the sweep */
    snprintf(text, sizeof text,
             "base:\n"
             "  model: {preset: \"\", layers: 2, dim: 16, heads: 2, vocab: 64, seq_len: 16}\n"
             "  data: {source: synthetic, synth_topics: 2}\n"
             "  train: {tokens: 2048, batch_tokens: 64, eval_tokens: 64}\n"
             "  threads: 1\n"
             "grid:\n"
             "  model.dim: [16, 24]\n"
             "out: %s/out_pick\n", tmpdir);
    write_file("pick_threads.yaml", text);
    snprintf(swt, sizeof swt, "%s", path_in("pick_threads.yaml"));

    /* one CPU: one run at a time, one thread, and every run told so */
    assert_int_equal(run(&out, "SLURM_CPUS_PER_TASK=1 '%s' sweep '%s' --dry-run", qat, sw), 0);
    assert_non_null(strstr(out, "\nqat sweep: 3 runs to train, 1 at once × 1 thread each (auto: a single core"));
    assert_int_equal(count_of(out, " threads=1\n"), 4);
    free(out);
    /* --jobs given: as it always was, and the line says so */
    assert_int_equal(run(&out, "SLURM_CPUS_PER_TASK=1 '%s' sweep '%s' --dry-run --jobs 2", qat, sw), 0);
    assert_non_null(strstr(out, "\nqat sweep: 3 runs to train, 2 at once × 1 thread each (--jobs 2 given)\n"));
    free(out);
    /* the sweep's own threads are not overridden */
    assert_int_equal(run(&out, "SLURM_CPUS_PER_TASK=1 '%s' sweep '%s' --dry-run", qat, swt), 0);
    assert_non_null(strstr(out, "\nqat sweep: 2 runs to train, 1 at once × the sweep's threads (at most 1) each "
                                "(auto: the sweep sets threads"));
    assert_null(strstr(out, "threads="));
    free(out);
    /* a shard with no run: no "1 at once × the sweep's threads" about runs that are not there */
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run --shard 9/10", qat, swt), 0);
    assert_non_null(strstr(out, "\nqat sweep: 0 runs to train: shard 9/10 holds none of the sweep's 2 runs\n"));
    assert_null(strstr(out, "at once"));
    free(out);
    if (my_cores() < 2) {
        print_message("only 1 CPU here: the two-CPU picks are not checked\n");
        return;
    }
    /* two CPUs, tiny models: two one-thread runs side by side */
    assert_int_equal(run(&out, "SLURM_CPUS_PER_TASK=2 '%s' sweep '%s' --dry-run", qat, sw), 0);
    assert_non_null(strstr(out, "\nqat sweep: 3 runs to train, 2 at once × 1 thread each (auto: largest model "));
    assert_non_null(strstr(out, " parameters ≤ "));
    assert_int_equal(count_of(out, " threads=1\n"), 4);
    free(out);
    /* a single run to train gets both CPUs */
    assert_int_equal(run(&out, "SLURM_CPUS_PER_TASK=2 '%s' sweep '%s' --dry-run --shard 1/2", qat, sw), 0);
    assert_non_null(strstr(out, "\nqat sweep: 1 run to train, 1 at once × 2 threads each (auto: a single run"));
    free(out);
    assert_int_equal(run(&out, "SLURM_CPUS_PER_TASK=2 '%s' sweep '%s' --dry-run", qat, swt), 0);
    assert_non_null(strstr(out, "\nqat sweep: 2 runs to train, 2 at once × the sweep's threads (at most 1) each"));
    free(out);
}

static void test_sweep_end_to_end(void **state) {
    (void)state;
    write_sweep();
    char sw[600];
    snprintf(sw, sizeof sw, "%s", path_in("tiny.yaml")); /* path_in's buffers are reused */
    char *out;

    /* dry run: four runs, one impossible, nothing on disk yet */
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run", qat, sw), 0);
    assert_non_null(strstr(out, "dim16-heads3"));
    /* the reason under the run's row, once: the row names the run */
    assert_non_null(strstr(out, "model.heads = 3 must divide model.dim = 16\n"));
    assert_null(strstr(out, "(run dim16-heads3)"));
    assert_non_null(strstr(out, "would start 3, resume 0, skip 0 completed; 0 kept diverged, 1 invalid"));
    free(out);
    assert_int_equal(access(path_in("out/dim16-heads2"), F_OK), -1);

    /* shard 1/2 = runs 1 and 3: the impossible one fails with its reason, run 3 completes */
    assert_int_equal(run(&out, "'%s' sweep '%s' --shard 1/2 2>&1", qat, sw), 1);
    assert_non_null(strstr(out, "qat sweep: 1 run to train, 1 at once × ")); /* said before it starts */
    assert_non_null(strstr(out, "2 runs: 1 started, 0 resumed, 0 skipped (already completed); 1 completed, 1 failed"));
    /* said when the sweep starts and in the final list, each time after the run's name,
     * with the same message as a sweep of no valid run gives (without the name there) */
    assert_non_null(strstr(out, "dim16-heads3: FAILED (invalid config): "));
    assert_non_null(strstr(out, "\n  dim16-heads3: not started (invalid config)\n      "));
    assert_int_equal(count_of(out, "model.heads = 3 must divide model.dim = 16\n"), 2);
    assert_null(strstr(out, "(run dim16-heads3)"));
    free(out);
    assert_int_equal(headers_in_log("dim24-heads3"), 1);
    assert_int_equal(count_in_log("dim24-heads3", KILLED_NOTE), 0); /* a fresh run killed nothing */
    assert_int_equal(access(path_in("out/dim16-heads2"), F_OK), -1); /* not in this shard */
    char base[700];
    the_base("out", base, sizeof base);

    /* the whole sweep, one worker, killed with SIGKILL once its first run has finished */
    pid_t pid = start_sweep(sw, path_in("killed.txt"));
    int finished = 0;
    for (int t = 0; t < 600 && !finished; t++) {
        sleep_ms(50);
        run(&out, "'%s' sweep '%s' --dry-run 2>/dev/null", qat, sw);
        finished = count_of(out, "skip (completed)") >= 2; /* dim24-heads3 from the shard, and one more */
        free(out);
    }
    assert_true(finished);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* its worker gets SIGTERM with the sweep gone, checkpoints and stops */
    for (int t = 0; t < 200 && procs_using_tmpdir(); t++) sleep_ms(50);
    assert_int_equal(procs_using_tmpdir(), 0);

    /* run again: only what was missing runs; what had finished is not touched */
    assert_int_equal(run(&out, "'%s' sweep '%s' --jobs 2 2>/dev/null", qat, sw), 1);
    int started = -1, resumed = -1, skipped = -1;
    const char *line = strstr(out, "qat sweep: 4 runs: ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "qat sweep: 4 runs: %d started, %d resumed, %d skipped", &started, &resumed, &skipped), 3);
    assert_true(skipped >= 2);
    assert_int_equal(started + resumed + skipped, 3);
    assert_non_null(strstr(out, "3 completed, 1 failed, 0 diverged, 0 interrupted"));
    assert_non_null(strstr(out, "dim16-heads3  FAILED"));
    free(out);
    assert_int_equal(headers_in_log("dim24-heads3"), 1);
    assert_int_equal(headers_in_log("dim16-heads2"), 1);
    assert_int_equal(count_in_log("dim16-heads2", KILLED_NOTE), 0);

    /* nothing is left to do */
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run", qat, sw), 0);
    assert_non_null(strstr(out, "would start 0, resume 0, skip 3 completed; 0 kept diverged, 1 invalid"));
    assert_non_null(strstr(out, "\nqat sweep: 0 runs to train: nothing to launch (each of the 4 runs is completed, "
                                "kept, invalid or busy)\n"));
    free(out);

    /* an interrupted run (checkpoint, status running) is resumed, the rest skipped */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && '%s' train '%s' --set model.dim=24 --set model.heads=2 "
             "--set name=dim24-heads2 --set threads=1 --out '%s' --stop-after 8 --quiet",
             path_in("out/dim24-heads2"), qat, base, path_in("out"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(access(path_in("out/dim24-heads2/ckpt.h5"), F_OK), 0);
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run", qat, sw), 0);
    assert_non_null(strstr(out, "would start 0, resume 1, skip 2 completed"));
    free(out);
    assert_int_equal(run(&out, "'%s' sweep '%s' 2>/dev/null", qat, sw), 1);
    assert_non_null(strstr(out, "4 runs: 0 started, 1 resumed, 2 skipped (already completed); 3 completed, 1 failed"));
    free(out);
}

static void test_runtime_failure_and_slurm(void **state) {
    (void)state;
    /* a config that validates but cannot run: no shard matches the glob */
    char text[2048];
    snprintf(text, sizeof text,
             "base:\n"
             "  model: {preset: \"\", layers: 1, dim: 16, heads: 2, vocab: 64, seq_len: 16}\n"
             "  train: {tokens: 512, batch_tokens: 64, eval_tokens: 64}\n"
             "grid:\n"
             "  data.shards: [\"%s/nothing/*.bin\"]\n"
             "repeat: 1\n"
             "out: %s/out2\n", tmpdir, tmpdir);
    write_file("nodata.yaml", text);
    char *out;
    assert_int_equal(run(&out, "'%s' sweep '%s' 2>/dev/null", qat, path_in("nodata.yaml")), 1);
    assert_non_null(strstr(out, "FAILED"));
    assert_non_null(strstr(out, "exit 2"));
    assert_non_null(strstr(out, "nothing"));  /* the worker's own message, from train.log */
    free(out);

    /* Slurm: one task per run, absolute paths, valid bash */
    write_sweep();
    assert_int_equal(run(&out, "cd '%s' && '%s' sweep tiny.yaml --emit-slurm job.sh --jobs 2", tmpdir, qat), 0);
    assert_non_null(strstr(out, "4 runs in 4 array tasks"));
    free(out);
    assert_int_equal(run(NULL, "bash -n '%s'", path_in("job.sh")), 0);
    assert_int_equal(run(NULL, "grep -qx '#SBATCH --array=0-3' '%s'", path_in("job.sh")), 0);
    assert_int_equal(run(NULL, "grep -q \"'%s' sweep '%s' --shard\" '%s'", qat, path_in("tiny.yaml"), path_in("job.sh")), 0);
    assert_int_equal(run(NULL, "cd '%s' && '%s' sweep tiny.yaml --emit-slurm job2.sh --shards 2", tmpdir, qat), 0);
    assert_int_equal(run(NULL, "bash -n '%s' && grep -qx '#SBATCH --array=0-1' '%s'", path_in("job2.sh"), path_in("job2.sh")), 0);

    /* A directory with a space, a '%', a '#' and a '"': the #SBATCH --output line is
     * one double-quoted word as sbatch reads it ('#' and '"' escaped, '%' doubled,
     * as Slurm's filename patterns want), the hint is one shell word; sbatch split
     * the unquoted path ("Invalid directive") and read "%x" as the job's name.
     * tests/test_slurm_e2e.sh submits such a script to a real Slurm. */
    char dir[700];
    snprintf(dir, sizeof dir, "%s", path_in("my dir%x"));
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(run(NULL, "cp '%s' '%s/'", path_in("tiny.yaml"), dir), 0);
    assert_int_equal(run(NULL, "cd '%s' && sed -i 's|^out: .*|out: \"o #\\\\\"x\"|' tiny.yaml", dir), 0);
    assert_int_equal(run(&out, "cd '%s' && '%s' sweep tiny.yaml --emit-slurm 'job 1.sh'", dir, qat), 0);
    assert_non_null(strstr(out, "; submit with: sbatch 'job 1.sh'\n"));
    free(out);
    char want[1200];
    snprintf(want, sizeof want, "#SBATCH --output=\"%s/my dir%%%%x/o \\#\\\"x/.sweep/slurm-%%A_%%a.log\"\n", tmpdir);
    assert_int_equal(run(&out, "cat '%s/job 1.sh'", dir), 0);
    if (!strstr(out, want)) fprintf(stderr, "expected %s in:\n%s", want, out);
    assert_non_null(strstr(out, want));
    free(out);
    assert_int_equal(run(NULL, "cd '%s' && bash -n 'job 1.sh' && test -d 'o #\"x/.sweep'", dir), 0);
    /* a backslash would turn Slurm's replacement symbols off: refused, nothing written */
    assert_int_equal(run(NULL, "cd '%s' && sed -i 's|^out: .*|out: \"a\\\\\\\\b\"|' tiny.yaml", dir), 0);
    assert_int_equal(run(&out, "cd '%s' && '%s' sweep tiny.yaml --emit-slurm job2.sh 2>&1", dir, qat), 2);
    assert_non_null(strstr(out, "holds a backslash, which an #SBATCH --output line cannot carry"));
    free(out);
    assert_int_equal(run(NULL, "cd '%s' && test ! -e job2.sh", dir), 0);
}

/* Two `qat sweep` processes started at once on the same three runs in one
 * output directory, their grids in opposite orders, so that each reaches runs
 * the other has started or finished since both began. Each run's run.h5 is
 * watched while they work: its inode when first seen, and its inode and mtime
 * when first seen completed. At the end every run must be completed with its
 * full training record, in the file first created for it, untouched since it
 * completed. A sweep that decides every run's action when it begins finds
 * nothing on disk, so it later deletes and restarts what the other sweep has
 * started or finished, which this catches. */
static void test_concurrent_sweeps(void **state) {
    (void)state;
    enum { R = 3 };
    static const char *const names[R] = {"dim16", "dim24", "dim32"};
    char text[2048], sw[2][600];
    for (int k = 0; k < 2; k++) {
        snprintf(text, sizeof text,
                 "base:\n"
                 "  model: {preset: \"\", layers: 2, dim: 16, heads: 2, vocab: 64, seq_len: 16}\n"
                 "  data: {source: synthetic, synth_topics: 2}\n"
                 "  train: {tokens: 2048, batch_tokens: 64, eval_every: 0, eval_tokens: 64,\n"
                 "          checkpoint_every: 4, log_every: 4, warmup: 0.1}\n"
                 "grid:\n"
                 "  model.dim: [%s]\n"
                 "out: %s/both\n", k ? "32, 24, 16" : "16, 24, 32", tmpdir);
        write_file(k ? "both_b.yaml" : "both_a.yaml", text);
        snprintf(sw[k], sizeof sw[k], "%s", path_in(k ? "both_b.yaml" : "both_a.yaml"));
    }

    pid_t pid[2] = {0, 0};
    ino_t first[R] = {0}, done_ino[R] = {0};
    struct timespec done_mtime[R];
    int seen_done[R] = {0}, replaced[R] = {0}, status[2] = {-1, -1}, alive = 0;
    memset(done_mtime, 0, sizeof done_mtime);
    qat_runlog_summary *sum = malloc(sizeof *sum);
    for (int k = 0; k < 2; k++) pid[k] = start_sweep(sw[k], path_in(k ? "both_b.txt" : "both_a.txt"));
    alive = 2;
    for (int t = 0; t < 6000 && alive; t++) {
        for (int k = 0; k < 2; k++) {
            int st;
            if (status[k] < 0 && waitpid(pid[k], &st, WNOHANG) == pid[k]) {
                status[k] = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
                alive--;
            }
        }
        for (int r = 0; r < R; r++) {
            char name[300];
            struct stat st;
            snprintf(name, sizeof name, "both/%s/run.h5", names[r]);
            if (stat(path_in(name), &st)) continue;
            if (!first[r]) first[r] = st.st_ino;
            if (st.st_ino != first[r]) replaced[r] = 1;
            if (!seen_done[r] && !qat_runlog_read_final(path_in(name), sum) && !strcmp(sum->status, "completed") &&
                sum->has_final && stat(path_in(name), &st) == 0) {
                seen_done[r] = 1;
                done_ino[r] = st.st_ino;
                done_mtime[r] = st.st_mtim;
            }
        }
        sleep_ms(10);
    }
    assert_int_equal(alive, 0);
    for (int r = 0; r < R; r++) {
        char name[300];
        struct stat st;
        snprintf(name, sizeof name, "both/%s/run.h5", names[r]);
        assert_int_equal(qat_runlog_read_final(path_in(name), sum), 0);
        assert_string_equal(sum->status, "completed");
        assert_true(sum->has_final);
        assert_int_equal(sum->final.steps, 2048 / 64);  /* one whole training record */
        assert_int_equal(sum->n_train, sum->final.steps);
        assert_int_equal(replaced[r], 0);               /* never deleted and created again */
        assert_true(seen_done[r]);
        assert_int_equal(stat(path_in(name), &st), 0);
        assert_true(st.st_ino == done_ino[r]);          /* not rewritten after it completed */
        assert_true(st.st_mtim.tv_sec == done_mtime[r].tv_sec && st.st_mtim.tv_nsec == done_mtime[r].tv_nsec);
    }
    for (int k = 0; k < 2; k++) {
        char *out = NULL;
        run(&out, "cat '%s'", path_in(k ? "both_b.txt" : "both_a.txt"));
        /* 0, or 1 when a run the other sweep was still writing was left busy */
        if (status[k] != 0 && status[k] != 1) fprintf(stderr, "sweep %d exited %d:\n%s\n", k, status[k], out);
        assert_true(status[k] == 0 || status[k] == 1);
        assert_null(strstr(out, "FAILED"));
        assert_non_null(strstr(out, "qat sweep: 3 runs: "));
        free(out);
    }
    free(sum);

    /* a third sweep, alone, finds everything done */
    char *out;
    assert_int_equal(run(&out, "'%s' sweep '%s' 2>/dev/null", qat, sw[0]), 0);
    assert_non_null(strstr(out, "3 runs: 0 started, 0 resumed, 3 skipped (already completed); 3 completed"));
    free(out);
}

/* The learning rate stored in run NAME's run.h5 under DIR ("" when unreadable). */
static void stored_lr(const char *dir, const char *name, char *lr, size_t n) {
    char rel[300], *yaml = NULL;
    snprintf(rel, sizeof rel, "%s/%s/run.h5", dir, name);
    lr[0] = 0;
    if (qat_runlog_config(path_in(rel), &yaml) || !yaml) return;
    const char *p = strstr(yaml, "\n  lr: ");
    if (p) snprintf(lr, n, "%.*s", (int)strcspn(p + 7, " \n"), p + 7);
    free(yaml);
}

/* Two sweeps with different bases over one output directory, the second
 * started and finished while the first is still training its first run: every
 * run of each trains under its own sweep's base. Both used to write their base
 * to OUT/.sweep/base.yaml, which each worker reads when it is launched, so the
 * first sweep's later runs trained under the second's learning rate, and both
 * reported success. Each base now has a file named by its content. */
static void test_two_bases_one_out(void **state) {
    (void)state;
    char text[2048], x[600], y[600], *out;
    for (int k = 0; k < 2; k++) {
        snprintf(text, sizeof text,
                 "base:\n"
                 "  name: %s\n"
                 "  model: {preset: \"\", layers: 2, dim: 16, heads: 2, vocab: 64, seq_len: 16}\n"
                 "  data: {source: synthetic, synth_topics: 2}\n"
                 "  train: {tokens: %d, batch_tokens: 64, eval_every: 0, eval_tokens: 64, lr: %s}\n"
                 "  threads: 1\n"
                 "grid:\n"
                 "  seed: [%s]\n"
                 "out: %s/shared\n",
                 k ? "Y" : "X", k ? 1024 : 8192, k ? "1e-4" : "3e-3", k ? "0" : "0, 1, 2", tmpdir);
        write_file(k ? "base_y.yaml" : "base_x.yaml", text);
    }
    snprintf(x, sizeof x, "%s", path_in("base_x.yaml"));
    snprintf(y, sizeof y, "%s", path_in("base_y.yaml"));
    pid_t pid = start_sweep(x, path_in("base_x.txt"));
    /* X has written its base and launched its first run */
    for (int t = 0; t < 400 && access(path_in("shared/X-seed0/train.log"), F_OK); t++) sleep_ms(10);
    assert_int_equal(access(path_in("shared/X-seed0/train.log"), F_OK), 0);
    assert_int_equal(run(&out, "'%s' sweep '%s' --jobs 1 2>&1", qat, y), 0);
    free(out);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    run(&out, "cat '%s'", path_in("base_x.txt"));
    if (!WIFEXITED(st) || WEXITSTATUS(st)) fprintf(stderr, "%s\n", out);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(out);
    static const char *const xs[] = {"X-seed0", "X-seed1", "X-seed2"};
    char lr[64];
    for (int i = 0; i < 3; i++) {
        stored_lr("shared", xs[i], lr, sizeof lr);
        if (strcmp(lr, "0.003")) fprintf(stderr, "%s trained with lr '%s'\n", xs[i], lr);
        assert_string_equal(lr, "0.003");
    }
    stored_lr("shared", "Y-seed0", lr, sizeof lr);
    assert_string_equal(lr, "0.0001");
    /* one file per base, and each run's log names the one its worker read */
    assert_int_equal(run(&out, "ls '%s' | grep -c '^base-[0-9a-f]\\{16\\}\\.yaml$'", path_in("shared/.sweep")), 0);
    assert_int_equal(atoi(out), 2);
    free(out);
    assert_int_equal(run(NULL, "grep -q 'lr: 0.003' $(grep -o '[^ ]*/base-[0-9a-f]*\\.yaml' '%s' | head -1)",
                         path_in("shared/X-seed2/train.log")), 0);
}

/* What --dry-run lists is what each worker gets: `qat train BASE --set OVERRIDES`,
 * BASE the file its header names, reproduces the run (config.md, "A run's
 * overrides"). Checked by training row 0 by hand and comparing its stored config
 * with the sweep's run: the same text. name=NAME was missing from the list (a
 * run trained from it was named "run"), and an inline base had no file to name. */
static void test_dry_run_reproduces(void **state) {
    (void)state;
    char text[4096], sw[600], corpus[600], *out;
    FILE *f = fopen(path_in("rep.txt"), "w");
    assert_non_null(f);
    for (int i = 0; i < 400; i++) fprintf(f, "line %d of a small corpus, %s\n", i, i % 3 ? "some words" : "other words");
    fclose(f);
    snprintf(corpus, sizeof corpus, "%s", path_in("rep.txt"));
    snprintf(text, sizeof text,
             "base:\n"
             "  model: {preset: \"\", layers: 1, dim: 16, heads: 2, vocab: 256, seq_len: 16}\n"
             "  data: {source: synthetic}\n"
             "  train: {tokens: 1024, batch_tokens: 64, eval_every: 0, eval_tokens: 64}\n"
             "grid:\n"
             "  data.text: [\"%s\"]\n"
             "  train.lr: [2e-3]\n"
             "repeat: [5]\n"
             "out: %s/rep_out\n", corpus, tmpdir);
    write_file("rep.yaml", text);
    snprintf(sw, sizeof sw, "%s", path_in("rep.yaml"));
    assert_int_equal(run(&out, "SLURM_CPUS_PER_TASK=1 '%s' sweep '%s' --dry-run", qat, sw), 0);
    char base[700], sets[2048], cmd[4096];
    const char *b = strstr(out, "(written as "), *row = strstr(out, "\n     0  ");
    assert_non_null(b);
    assert_non_null(row);
    snprintf(base, sizeof base, "%.*s", (int)strcspn(b + 12, " "), b + 12);
    char name[200], rel[300];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(row + 9, " "), row + 9);
    row = strstr(row, " start ");
    assert_non_null(row);
    row += strspn(row + 7, " ") + 7;
    snprintf(sets, sizeof sets, "%.*s", (int)strcspn(row, "\n"), row);
    free(out);
    assert_non_null(strstr(sets, " name="));
    assert_non_null(strstr(sets, "data.source=text"));
    /* the same CPUs as the dry run: the threads it listed are the ones the sweep gives */
    assert_int_equal(run(NULL, "SLURM_CPUS_PER_TASK=1 '%s' sweep '%s' >/dev/null 2>&1", qat, sw), 0);
    assert_int_equal(access(base, R_OK), 0); /* the file the header named */
    /* by hand: each override as `--set` */
    size_t l = (size_t)snprintf(cmd, sizeof cmd, "'%s' train '%s' --out '%s' --quiet", qat, base, path_in("rep_hand"));
    for (char *tok = strtok(sets, " "); tok; tok = strtok(NULL, " "))
        l += (size_t)snprintf(cmd + l, sizeof cmd - l, " --set '%s'", tok);
    assert_int_equal(run(NULL, "%s", cmd), 0);
    char *a = NULL, *h = NULL;
    snprintf(rel, sizeof rel, "rep_out/%s/run.h5", name);
    assert_int_equal(qat_runlog_config(path_in(rel), &a), 0);
    snprintf(rel, sizeof rel, "rep_hand/%s/run.h5", name);
    assert_int_equal(qat_runlog_config(path_in(rel), &h), 0);
    assert_string_equal(a, h);
    free(a);
    free(h);
}

/* "(written as BASE when a run starts)" of a --dry-run's first line: BASE into buf. */
static void dry_run_base(const char *out, char *buf, size_t n) {
    const char *b = strstr(out, "(written as "), *e = b ? strstr(b, " when a run starts)") : NULL;
    if (!e) fail_msg("no base named in: %s", out);
    snprintf(buf, n, "%.*s", (int)(e - b - 12), b + 12);
}

/* The base file's name was a hash of a text that held the sweep's path as it was
 * spelled: `qat sweep t/s.yaml` and the Slurm tasks (`qat sweep /abs/t/s.yaml
 * --shard`) wrote two bases for one sweep, and the one --dry-run named was not
 * the one the tasks' workers read. And train.log's header, which is the worker's
 * command, printed a base path with a space as two words. */
static void test_base_path_spelling(void **state) {
    (void)state;
    char text[2048], *out;
    assert_int_equal(mkdir(path_in("sp dir"), 0755), 0);
    snprintf(text, sizeof text,
             "base:\n"
             "  model: {preset: \"\", layers: 1, dim: 16, heads: 2, vocab: 64, seq_len: 16}\n"
             "  data: {source: synthetic, synth_topics: 2}\n"
             "  train: {tokens: 256, batch_tokens: 64, eval_every: 0, eval_tokens: 64}\n"
             "grid:\n"
             "  train.lr: [2e-3, 3e-3]\n"
             "out: %s/sp out\n", tmpdir);
    write_file("sp dir/s%w.yaml", text);
    char rel_base[1200], abs_base[1200], dot_base[1200];
    /* relative to the directory it is run from, absolute, and through '..' */
    assert_int_equal(run(&out, "cd '%s' && '%s' sweep 'sp dir/s%%w.yaml' --dry-run", tmpdir, qat), 0);
    dry_run_base(out, rel_base, sizeof rel_base);
    free(out);
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run", qat, path_in("sp dir/s%w.yaml")), 0);
    dry_run_base(out, abs_base, sizeof abs_base);
    free(out);
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run", qat, path_in("sp dir/../sp dir/s%w.yaml")), 0);
    dry_run_base(out, dot_base, sizeof dot_base);
    free(out);
    printf("  --dry-run's base: %s | %s | %s\n", rel_base, abs_base, dot_base);
    assert_string_equal(rel_base, abs_base);
    assert_string_equal(dot_base, abs_base);
    /* the Slurm tasks run the absolute spelling; a shard by hand the relative one:
     * one base file, the one named */
    assert_int_equal(run(NULL, "cd '%s' && '%s' sweep 'sp dir/s%%w.yaml' --shard 0/2 >/dev/null 2>&1", tmpdir, qat), 0);
    assert_int_equal(run(NULL, "'%s' sweep '%s' --shard 1/2 >/dev/null 2>&1", qat, path_in("sp dir/s%w.yaml")), 0);
    char base[1200];
    the_base("sp out", base, sizeof base);
    assert_string_equal(base, abs_base);
    /* train.log's header is the worker's command: pasted into a shell, its third
     * word (after the binary and `train`) is the base, one word */
    assert_int_equal(run(&out, "grep -h '^== qat sweep .*: start: ' '%s'/*/train.log | head -1", path_in("sp out")), 0);
    const char *cmd = strstr(out, ": start: ");
    assert_non_null(cmd);
    cmd += 9;
    char line[4096], *word;
    snprintf(line, sizeof line, "%.*s", (int)strcspn(cmd, "\n"), cmd);
    free(out);
    printf("  train.log: %s\n", line);
    assert_int_equal(run(&word, "set -- %s; printf '%%s' \"$3\"", line), 0);
    assert_string_equal(word, abs_base);
    free(word);
}

/* A run that starts from a checkpoint (train.init) that is not there, or is a
 * directory, is invalid before anything starts, by --dry-run too, with the key,
 * the file and where it was given; with no other run, exit 2. --dry-run listed
 * every such run as "start", and each then failed in its worker. */
static void test_missing_init(void **state) {
    (void)state;
    char grid[1200], sw[600], *out;
    snprintf(grid, sizeof grid, "  train.init: [\"%s/nothere/ckpt.h5\", \"%s\"]\n", tmpdir, tmpdir);
    write_sweep_as("init.yaml", grid, path_in("init_out"));
    snprintf(sw, sizeof sw, "%s", path_in("init.yaml"));
    for (int dry = 0; dry < 2; dry++) {
        assert_int_equal(run(&out, "'%s' sweep '%s' %s 2>&1", qat, sw, dry ? "--dry-run" : ""), 2);
        assert_non_null(strstr(out, "init.yaml: no run of the sweep is valid; the errors of its 2 runs:\n"));
        assert_non_null(strstr(out, "init.yaml:8:16: train.init: "));
        assert_non_null(strstr(out, "/nothere/ckpt.h5: cannot open: No such file or directory; expected the checkpoint"));
        assert_non_null(strstr(out, ": cannot open: is a directory; expected the checkpoint (ckpt.h5) the run starts from"));
        free(out);
        assert_int_equal(access(path_in("init_out"), F_OK), -1); /* nothing made */
    }
    /* beside a run that can start: that one is listed invalid with its reason */
    snprintf(grid, sizeof grid, "  train.init: [\"\", \"%s/nothere/ckpt.h5\"]\n", tmpdir);
    write_sweep_as("init2.yaml", grid, path_in("init_out"));
    snprintf(sw, sizeof sw, "%s", path_in("init2.yaml"));
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run 2>&1", qat, sw), 0);
    assert_non_null(strstr(out, "would start 1, resume 0, skip 0 completed; 0 kept diverged, 1 invalid"));
    assert_non_null(strstr(out, "invalid           train.init="));
    assert_non_null(strstr(out, "init2.yaml:8:20: train.init: "));
    free(out);
}

/* A run to start whose data.text lists one file twice (however spelled) or names
 * a missing file is invalid before anything starts, by --dry-run too, at its grid
 * value; with no other run, exit 2. --dry-run listed them as "start", and each
 * then failed in its worker. A run already on disk (a ckpt.h5 in its directory)
 * is read as made: not checked. */
static void test_text_files(void **state) {
    (void)state;
    char grid[1600], sw[600], c1[600], *out;
    snprintf(c1, sizeof c1, "%s", path_in("dt_c1.txt"));
    write_file("dt_c1.txt", "some text to train on, some text to train on, some text to train on\n");
    snprintf(grid, sizeof grid, "  model.vocab: [256]\n  data.text: [[\"%s\", \"%s/./dt_c1.txt\"], \"%s/dt_none.txt\"]\n",
             c1, tmpdir, tmpdir);
    write_sweep_data("dt.yaml", "{source: synthetic}", grid, path_in("dt_out")); /* text replaces it: no synth_* */
    snprintf(sw, sizeof sw, "%s", path_in("dt.yaml"));
    for (int dry = 0; dry < 2; dry++) {
        assert_int_equal(run(&out, "'%s' sweep '%s' %s 2>&1", qat, sw, dry ? "--dry-run" : ""), 2);
        assert_non_null(strstr(out, "dt.yaml: no run of the sweep is valid; the errors of its 2 runs:\n"));
        assert_non_null(strstr(out, "dt.yaml:9:15: data.text: entries 1 and 2 ("));
        assert_non_null(strstr(out, "/./dt_c1.txt) are the same file"));
        assert_non_null(strstr(out, "/dt_none.txt: cannot open: No such file or directory; expected a text file"));
        free(out);
        assert_int_equal(access(path_in("dt_out"), F_OK), -1); /* nothing made */
    }
    /* beside a run that can start: listed invalid with its reason */
    snprintf(grid, sizeof grid, "  model.vocab: [256]\n  data.text: [\"%s\", \"%s/dt_none.txt\"]\n", c1, tmpdir);
    write_sweep_data("dt2.yaml", "{source: synthetic}", grid, path_in("dt2_out"));
    snprintf(sw, sizeof sw, "%s", path_in("dt2.yaml"));
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run 2>&1", qat, sw), 0);
    assert_non_null(strstr(out, "would start 1, resume 0, skip 0 completed; 0 kept diverged, 1 invalid"));
    char want[800];
    snprintf(want, sizeof want, "dt2.yaml:9:%d: data.text: %s/dt_none.txt: cannot open", 15 + (int)strlen(c1) + 4,
             tmpdir);
    assert_non_null(strstr(out, want));
    free(out);
    /* the missing file's run already on disk: read as made, not checked */
    char dir[800];
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run 2>&1 | grep -o '[^ ]*dt_none.txt ' | head -1", qat, sw), 0);
    *strchr(out, ' ') = 0;
    snprintf(dir, sizeof dir, "%s/%s", path_in("dt2_out"), out);
    free(out);
    assert_int_equal(mkdir(path_in("dt2_out"), 0755), 0);
    assert_int_equal(mkdir(dir, 0755), 0);
    strcat(dir, "/ckpt.h5");
    FILE *f = fopen(dir, "w");
    fclose(f);
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run 2>&1", qat, sw), 0);
    assert_non_null(strstr(out, ", 0 invalid"));
    assert_null(strstr(out, "cannot open"));
    free(out);
}

static int setup(void **state) {
    (void)state;
    qat = getenv("QAT_BIN");
    if (!qat || access(qat, X_OK)) {
        fprintf(stderr, "QAT_BIN must name the qat executable\n");
        return -1;
    }
    return qat_test_mkdtemp(tmpdir, sizeof tmpdir, "sweep_e2e");
}

static int teardown(void **state) {
    (void)state;
    umount2(path_in("rofs"), MNT_DETACH); /* if test_readonly_output stopped half-way */
    return qat_test_rmtree(tmpdir);
}

/* A completed sweep's output on a read-only file system (root: a tmpfs
 * remounted read-only; skipped otherwise): running the sweep again reports its
 * completed runs and exits 0, writing nothing; a sweep with a run still to
 * train names the read-only path (exit 1) and reports the completed runs as
 * such. Before, it said "qat: unknown error" with every run "interrupted". */
static void test_readonly_output(void **state) {
    (void)state;
    char mnt[600], sw[600], sw3[600];
    snprintf(mnt, sizeof mnt, "%s", path_in("rofs"));
    assert_int_equal(mkdir(mnt, 0755), 0);
    if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=32m") != 0) {
        skip();
        return;
    }
    char out_dir[700];
    snprintf(out_dir, sizeof out_dir, "%s/out", mnt);
    write_sweep_as("ro.yaml", "  seed: [1, 2]\n", out_dir);
    write_sweep_as("ro3.yaml", "  seed: [1, 2, 3]\n", out_dir);
    snprintf(sw, sizeof sw, "%s", path_in("ro.yaml"));
    snprintf(sw3, sizeof sw3, "%s", path_in("ro3.yaml"));
    char *out;
    assert_int_equal(run(&out, "'%s' sweep '%s' 2>/dev/null", qat, sw), 0);
    free(out);
    assert_int_equal(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT | MS_RDONLY, "size=32m"), 0);

    assert_int_equal(run(&out, "'%s' sweep '%s' 2>&1", qat, sw), 0);
    printf("%s", out);
    assert_non_null(strstr(out, "2 runs: 0 started, 0 resumed, 2 skipped (already completed); 2 completed, 0 failed"));
    assert_null(strstr(out, "unknown error"));
    free(out);

    assert_int_equal(run(&out, "'%s' sweep '%s' 2>&1", qat, sw3), 1);
    printf("%s", out);
    assert_non_null(strstr(out, "Read-only file system"));
    assert_non_null(strstr(out, "rofs/out/"));
    assert_non_null(strstr(out, "seed1  skipped"));
    assert_non_null(strstr(out, "seed2  skipped"));
    assert_non_null(strstr(out, "seed3  not started")); /* the table says what the list and count say */
    assert_non_null(strstr(out, "2 skipped (already completed); 2 completed, 0 failed, 0 diverged, 0 interrupted, 0 busy, "
                                "1 not started"));
    assert_null(strstr(out, "unknown error"));
    free(out);
    umount2(mnt, MNT_DETACH);
}

/* One run (seed 3) of the tiny sweep: its token budget, log_every and `extra`
 * appended to its train mapping. */
static void write_changed(const char *extra, int tokens, int log_every) {
    char text[2048], out[600];
    snprintf(out, sizeof out, "%s/chg", tmpdir);
    snprintf(text, sizeof text,
             "base:\n"
             "  model: {preset: \"\", layers: 2, dim: 16, heads: 2, vocab: 64, seq_len: 16}\n"
             "  data: {source: synthetic, synth_topics: 2}\n"
             "  train: {tokens: %d, batch_tokens: 64, eval_every: 0, eval_tokens: 64,\n"
             "          checkpoint_every: 4, log_every: %d, warmup: 0.1%s}\n"
             "grid:\n"
             "  seed: [3]\n"
             "out: %s\n", tokens, log_every, extra, out);
    write_file("chg.yaml", text);
}

/* A completed run under a sweep file edited since (its name unchanged) is not
 * passed off as the new run: another learning rate is refused with the key,
 * its old and new value, the run's files untouched (exit 1, FAILED); restored,
 * the run is skipped again; a cadence key (log_every) changes nothing; a larger
 * token budget continues the run from its checkpoint; a smaller one is refused. */
static void test_changed_sweep_file(void **state) {
    (void)state;
    char sw[600], h5[600], *out;
    snprintf(sw, sizeof sw, "%s", path_in("chg.yaml"));
    snprintf(h5, sizeof h5, "%s", path_in("chg/seed3/run.h5"));
    write_changed("", 1024, 4);
    assert_int_equal(run(&out, "'%s' sweep '%s' 2>/dev/null", qat, sw), 0);
    free(out);
    struct stat before, after;
    assert_int_equal(stat(h5, &before), 0);

    write_changed(", lr: 1e-3", 1024, 4);
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run", qat, sw), 0);
    assert_non_null(strstr(out, "would start 0, resume 1, skip 0 completed"));
    assert_non_null(strstr(out, "completed under another config than the sweep's"));
    free(out);
    assert_int_equal(run(&out, "'%s' sweep '%s' 2>/dev/null", qat, sw), 1);
    assert_non_null(strstr(out, "train.lr: 0.003 -> 0.001"));
    assert_non_null(strstr(out, "0 completed, 1 failed"));
    free(out);
    assert_int_equal(stat(h5, &after), 0);
    assert_int_equal(before.st_size, after.st_size);
    assert_true(before.st_mtim.tv_sec == after.st_mtim.tv_sec && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);

    write_changed("", 1024, 4); /* restored */
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run", qat, sw), 0);
    assert_non_null(strstr(out, "would start 0, resume 0, skip 1 completed"));
    free(out);

    write_changed("", 1024, 8); /* a cadence: the run stands */
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run", qat, sw), 0);
    assert_non_null(strstr(out, "would start 0, resume 0, skip 1 completed"));
    free(out);

    write_changed("", 2048, 4); /* a larger budget: continued */
    assert_int_equal(run(&out, "'%s' sweep '%s' 2>/dev/null", qat, sw), 0);
    assert_non_null(strstr(out, "0 started, 1 resumed, 0 skipped (already completed); 1 completed, 0 failed"));
    free(out);
    qat_runlog_summary *s = calloc(1, sizeof *s);
    assert_int_equal(qat_runlog_read_final(h5, s), 0);
    assert_string_equal(s->status, "completed");
    assert_int_equal(s->final.tokens, 2048);
    free(s);

    write_changed("", 1024, 4); /* a smaller one: refused */
    assert_int_equal(run(&out, "'%s' sweep '%s' 2>/dev/null", qat, sw), 1);
    assert_non_null(strstr(out, "expected train.tokens (or tokens_per_param) of at least 2112 tokens (one more step)"));
    free(out);

    /* a stored config changed in the file: the checksum of the header holding it
     * (or, in files of older qat, the config's own CRC) no longer matches; kept
     * and reported as damaged by the sweep, exit 1 from qat fit, never read as
     * another config */
    write_changed("", 2048, 4);
    FILE *fp = fopen(h5, "r+b");
    assert_non_null(fp);
    static char buf[1 << 21];
    size_t n = fread(buf, 1, sizeof buf, fp);
    int hits = 0; /* every copy: the extension rewrote the attribute, and HDF5 may keep the old bytes */
    for (char *at = buf; (at = memmem(at, n - (size_t)(at - buf), "lr: 0.003", 9)); at += 9) at[8] = '4', hits++;
    assert_true(hits >= 1);
    fseek(fp, 0, SEEK_SET);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    fclose(fp);
    qat_test_lsan_hdf5(1); /* these children load the damaged header on purpose */
    assert_int_equal(run(&out, "'%s' sweep '%s' --dry-run", qat, sw), 0);
    assert_non_null(strstr(out, "1 kept damaged"));
    free(out);
    assert_int_equal(run(&out, "'%s' sweep '%s' 2>/dev/null", qat, sw), 1);
    assert_non_null(strstr(out, "checksum mismatch (the file is damaged)"));
    free(out);
    assert_int_equal(run(&out, "'%s' fit '%s' --law chinchilla 2>&1", qat, path_in("chg")), 1);
    assert_non_null(strstr(out, "checksum mismatch (the file is damaged)"));
    free(out);
    qat_test_lsan_hdf5(0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changed_sweep_file),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_jobs_pick),
        cmocka_unit_test(test_sweep_end_to_end),
        cmocka_unit_test(test_concurrent_sweeps),
        cmocka_unit_test(test_runtime_failure_and_slurm),
        cmocka_unit_test(test_readonly_output),
        cmocka_unit_test(test_two_bases_one_out),
        cmocka_unit_test(test_dry_run_reproduces),
        cmocka_unit_test(test_base_path_spelling),
        cmocka_unit_test(test_missing_init),
        cmocka_unit_test(test_text_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
