/*
 * core/stop.c — the stop-request handler behind core/stop.h: one counter, set
 * by a handler that does nothing else (only async-signal-safe work is allowed
 * there, and a counter is all the loops need).
 */
#include "core/stop.h"

#include <string.h>

static volatile sig_atomic_t g_stops;

static void on_stop(int sig) {
    (void)sig;
    g_stops++;
}

void qat_stop_catch(unsigned flags) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGPIPE};
    int n = flags & QAT_STOP_PIPE ? 3 : 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;
    sigset_t set;
    sigemptyset(&set);
    /* the handlers first, then the unblocking: a pending signal meets the handler */
    for (int i = 0; i < n; i++) {
        sigaction(sigs[i], &sa, NULL);
        sigaddset(&set, sigs[i]);
    }
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

const volatile sig_atomic_t *qat_stop_flag(void) { return &g_stops; }
