#ifndef SUPERVISOR_SIGNALS_H
#define SUPERVISOR_SIGNALS_H

/// The signals the supervisor's loop reads from its signalfd, `*count` of them.
const int *hg_supervisor_signals(int *count);

#endif
