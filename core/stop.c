/*
 * core/stop.c — the stop-request handler behind core/stop.h: one counter, set
 * by a handler that does nothing else (only async-signal-safe work is allowed
 * there, and a counter is all the loops need).
 */
#include "core/stop.h"

#include <string.h>

static volatile sig_atomic_t g_stops;

static void on_stop(int sig) {
    /* a hangup asks for a stop, never for a second, harder one: it arrives
     * twice by itself (core/stop.h) */
    if (sig == SIGHUP) {
        if (!g_stops) g_stops = 1;
        return;
    }
    g_stops++;
}

void qat_stop_catch(unsigned flags) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    int n = flags & QAT_STOP_PIPE ? 4 : 3;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < n; i++) sigaddset(&set, sigs[i]);
    /* one handler at a time: the counter's read-modify-write is not atomic */
    sa.sa_mask = set;
    /* the handlers first, then the unblocking: a pending signal meets the handler */
    for (int i = 0; i < n; i++) {
        struct sigaction old;
        /* nohup: the command was asked to outlive its terminal */
        if (sigs[i] == SIGHUP && sigaction(SIGHUP, NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

const volatile sig_atomic_t *qat_stop_flag(void) { return &g_stops; }
