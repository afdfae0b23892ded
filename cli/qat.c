/*
 * cli/qat.c — the `qat` command: pick the subcommand and hand over.
 *
 * Kept deliberately thin: every subcommand parses its own options next to the
 * code it drives, so `qat fit --help` is written by whoever knows the fit. Each
 * is `int qat_NAME_main(argc, argv)`, declared in its module's *_cli.h, with
 * argv[0] the subcommand's name, returning the exit code (0 ok, 1 runtime
 * failure, 2 usage/config/input error). The seam runs one way: cli/ includes the
 * modules, no module includes cli/.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/cpu.h"
#include "core/error.h"
#include "data/data_cli.h"
#include "scaling/capacity_cli.h"
#include "scaling/fit_cli.h"
#include "sweep/sweep_cli.h"
#include "train/train_cli.h"

typedef struct {
    const char *name;                 /* subcommand */
    int (*main)(int argc, char **argv);
    const char *help;                 /* one line for `qat --help` */
} command;

static const command COMMANDS[] = {
    {"train", qat_train_main, "train one model from a YAML config (docs/config.md)"},
    {"eval", qat_eval_main, "validation loss of a checkpoint"},
    {"sample", qat_sample_main, "text a checkpoint generates, with its formats"},
    {"grads", qat_grads_main, "gradients of one fixed batch; --compare FORMAT for alignment"},
    {"sweep", qat_sweep_main, "a grid of runs from a sweep YAML"},
    {"capacity", qat_capacity_main, "GMSE, capacity and bits of formats"},
    {"fit", qat_fit_main, "fit a scaling law to runs or a CSV"},
    {"plot", qat_plot_main, "SVG plots of a fit"},
    {"data", qat_data_main, "make, pack and inspect token data"},
};

/* A binary run on a CPU older than it was compiled for would die of SIGILL at the
 * first vector instruction; say so instead. Runs before main, compiled for plain
 * x86-64 so that the check itself executes everywhere. */
#if defined(__x86_64__) && defined(__GNUC__)
#if defined(__AVX512BF16__)
#define QAT_NEEDS "avx512bf16"
#elif defined(__AVX512F__)
#define QAT_NEEDS "x86-64-v4"
#elif defined(__AVX2__)
#define QAT_NEEDS "x86-64-v3"
#elif defined(__SSE4_2__)
#define QAT_NEEDS "x86-64-v2"
#endif
#ifdef QAT_NEEDS
__attribute__((constructor, target("arch=x86-64"))) static void check_cpu(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports(QAT_NEEDS)) return;
    fprintf(stderr, "qat: this binary needs %s (build: %s) and this CPU does not have it; build with "
                    "meson setup -Dnative=false (docs/model.md, \"Builds\")\n", QAT_NEEDS, QAT_BUILD_BASELINE);
    _exit(1);
}
#endif
#endif

static void usage(FILE *f) {
    fprintf(f, "usage: qat COMMAND [options]   (qat COMMAND --help or qat help COMMAND for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(f, "\nexit status: 0 ok, 1 runtime failure, 2 usage/config/input error\n");
}

/* errno of the first write to stdout that failed (0: none). */
static int stdout_errno;

/* stdout's writes, through a stream of our own: stdio keeps only an error
 * flag, and the errno of a failed write is gone by the time the command ends
 * (a command that flushes its own rows, as capacity and fit do, or a large
 * output flushed part-way, as --print-config's, left "write error on stdout"
 * where a full disk should say "No space left on device"). Every write goes to
 * descriptor 1 itself, so a child that inherits it writes to the same place. */
static ssize_t stdout_write(void *cookie, const char *buf, size_t n) {
    (void)cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(STDOUT_FILENO, buf + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (!stdout_errno) stdout_errno = w < 0 ? errno : EIO;
            return -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)n;
}

/* stdout becomes a stream over stdout_write, buffered as stdio buffers fd 1
 * (by line on a terminal, fully otherwise). glibc's stdout is a variable that
 * may be assigned (its manual says so); if the stream cannot be made the
 * plain stdout stays, and flush_stdout falls back to what stdio tells it. */
static void track_stdout_errors(void) {
    cookie_io_functions_t io = {.write = stdout_write};
    FILE *f = fopencookie(NULL, "w", io);
    if (!f) return;
    setvbuf(f, NULL, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, BUFSIZ);
    stdout = f;
}

/* What a command printed on stdout reaches its reader or the command fails: a
 * full disk or a closed pipe behind `> out.json` must not end in exit 0 with
 * the result lost (docs/cli.md, "Exit status and errors"). Checked once here,
 * after every subcommand, rather than after each printf in each module; a
 * command that already failed keeps its own status and message. */
static int flush_stdout(int rc) {
    errno = 0;
    int flushed = fflush(stdout) == 0;
    int err = stdout_errno ? stdout_errno : errno;
    if (flushed && !ferror(stdout)) return rc;
    if (rc) return rc;
    /* without the tracking stream, an error met by an earlier flush leaves no
     * errno here; a pipe whose reader has gone says so through poll (POLLERR
     * on its write end) */
    if (!err) {
        struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
        if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) err = EPIPE;
    }
    fprintf(stderr, "qat: cannot write the output: %s\n", err ? strerror(err) : "write error on stdout");
    return 1;
}

/* Options that add to a list, and may therefore be given more than once
 * (docs/cli.md): train/eval/grads --set, fit --fix, --exclude and --where. */
static const char *const REPEATABLE[] = {"--set", "--fix", "--exclude", "--where", NULL};

/* The option argv[i] names ("--tokens" of "--tokens=5"), spelled as -o's long
 * form, into buf; 0 when argv[i] is no option word. Values never start with
 * "--" (core/num.h), so every such word is an option; of the one-dash words
 * only -o is one (a value such as "-1" or "-" is not). */
static int option_name(const char *a, char *buf, size_t n) {
    if (!strcmp(a, "-o")) a = "--out";
    else if (strncmp(a, "--", 2) || !a[2]) return 0;
    /* (a longer word is cut here; it is no option of qat's, which the command says) */
    size_t len = strcspn(a, "=");
    snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), a);
    return 1;
}

/* A repeated option kept its last value without a word (`sample --tokens 5
 * --tokens 6`, `data pack a.txt -o p8.bin -o p9.bin`): refused, exit 2, for
 * every command at once here, where each command's argv passes, rather than
 * in each parser (qat plot had its own check, kept for its in-process callers).
 * --help anywhere wins, as in every command. */
static int repeated_option(const char *cmd, int argc, char **argv) {
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 0;
    for (int i = 2; i < argc; i++) {
        char name[64], prev[64];
        if (!option_name(argv[i], name, sizeof name)) continue;
        int rep = 0;
        for (const char *const *r = REPEATABLE; *r; r++) rep |= !strcmp(name, *r);
        if (rep) continue;
        for (int j = 2; j < i; j++) {
            if (!option_name(argv[j], prev, sizeof prev) || strcmp(prev, name)) continue;
            int la = (int)strcspn(argv[j], "="), lb = (int)strcspn(argv[i], "=");
            char as[80] = "";
            if (la != lb || strncmp(argv[j], argv[i], (size_t)la)) /* -o and --out */
                snprintf(as, sizeof as, " (as %.*s and %.*s)", la, argv[j], lb, argv[i]);
            /* `data pack`, not `data`: the subcommand's options */
            int sub = !strcmp(cmd, "data") && argv[2][0] != '-';
            fprintf(stderr, "qat: %s%s%s: %.*s given twice%s; give each option once (only --set, --fix, --exclude and "
                            "--where repeat)\n", cmd, sub ? " " : "", sub ? argv[2] : "", lb, argv[i], as);
            return 1;
        }
    }
    return 0;
}

static int run(int argc, char **argv) {
    /* Past a file-size limit (ulimit -f) the kernel's default is to kill the
     * process with SIGXFSZ, leaving a .tmp behind and no message; ignored, the
     * write fails with EFBIG instead and the atomic writers (core/fsutil.h)
     * report it on one line, exit 1, and remove their temporary. */
    signal(SIGXFSZ, SIG_IGN);
    /* A reader gone away (`qat sample ... | head -c 100`) likewise: SIGPIPE's
     * default killed every command but `qat train` (status 141, no message)
     * where a full disk gave exit 1 and one line. Ignored, the write fails with
     * EPIPE and flush_stdout (or a command that streams, as sample) reports it.
     * `qat train` installs its own handler over this (core/stop.h: the run stops
     * with a checkpoint), and so does a sweep's worker, which inherits the
     * ignored signal across exec. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) { usage(stderr); return 2; }
    /* `qat help COMMAND [SUB...]` is `qat COMMAND [SUB...] --help`, as git's and
     * pip's are (`qat help data synth`); `qat help help` is `qat help` */
    if (!strcmp(argv[1], "help") && argc >= 3 && strcmp(argv[2], "help")) {
        for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++) {
            if (strcmp(argv[2], COMMANDS[i].name)) continue;
            char *fwd[argc];
            for (int k = 2; k < argc; k++) fwd[k - 2] = argv[k];
            fwd[argc - 2] = "--help";
            fwd[argc - 1] = NULL;
            return COMMANDS[i].main(argc - 1, fwd);
        }
        fprintf(stderr, "qat: help: unknown command '%s'\n", argv[2]);
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") && argc == 3) { usage(stdout); return 0; } /* qat help help */
    /* the top-level options take nothing after them: `qat --version --bogus` said
     * nothing of --bogus, with exit 0 (help's own arguments were taken above) */
    int top = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--version");
    if (top && argc > 2) {
        fprintf(stderr, "qat: %s: unexpected argument '%s' (qat %s takes none; for a command's options: qat "
                        "COMMAND --help or qat help COMMAND)\n", argv[1], argv[2], argv[1]);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) { /* the version, then the CPU and the kernels this run would use */
        char cpu[1024];
        qat_cpu_describe(cpu, sizeof cpu);
        printf("qat %s\n%s\n", QAT_VERSION, cpu);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++) {
        if (strcmp(argv[1], COMMANDS[i].name)) continue;
        if (repeated_option(argv[1], argc, argv)) return 2;
        return COMMANDS[i].main(argc - 1, argv + 1);
    }
    fprintf(stderr, "qat: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

/* A descriptor 0, 1 or 2 the shell left closed (`qat train cfg >&-`) is the
 * first one the next open() returns: run.h5.lock became fd 1 and collected the
 * progress lines. Each closed one gets /dev/null; with stdout closed the command
 * would lose its output, so it stops before any work, as /dev/full's case
 * would at its end (flush_stdout). */
static int guard_std_fds(void) {
    int stdout_closed = 0;
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        int got = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        QAT_ASSERT(got == fd || got < 0); /* the lowest free descriptor: the ones below are open */
        if (fd == 1) stdout_closed = 1;
    }
    if (!stdout_closed) return 0;
    fprintf(stderr, "qat: cannot write the output: stdout is closed; give it a destination (e.g. > /dev/null)\n");
    return 1;
}

int main(int argc, char **argv) {
    if (guard_std_fds()) return 1;
    track_stdout_errors();
    return flush_stdout(run(argc, argv));
}
