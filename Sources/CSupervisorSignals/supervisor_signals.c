// The supervisor's signals, blocked before main: a runtime sends SIGTERM to a container's PID 1 at any
// moment, even while the dynamic loader and the Swift runtime are still starting. Until the signals are
// blocked such a SIGTERM takes its default action (or, for PID 1 of a namespace, is dropped by the kernel:
// measured 10 lost of 20 when sent right after exec, when main() blocked them). Blocked here, in a
// constructor that runs before Swift's, it stays pending until the loop's signalfd reads it.
// Only the supervisor links this target: the worker and hyperglassctl keep default dispositions.
// The list is SupervisorCore's `Signal.handled` (the one signal table); main checks that they agree.
#include <signal.h>
#include <stddef.h>
#include "supervisor_signals.h"

static const int handled[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCHLD, SIGTTIN, SIGTTOU};

const int *hg_supervisor_signals(int *count) {
    *count = (int)(sizeof handled / sizeof handled[0]);
    return handled;
}

__attribute__((constructor)) static void block_before_main(void) {
    sigset_t set;
    sigemptyset(&set);
    for (unsigned i = 0; i < sizeof handled / sizeof handled[0]; i++) sigaddset(&set, handled[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
}
