// Steps every child of the supervisor takes between fork and exec (private to this target: C only).
#pragma once

/// The supervisor blocks the signals its signalfd reads and sets dispositions of its own; a child would
/// inherit both (a worker started with SIGTERM blocked never drains). Empties the mask and sets every
/// catchable signal to its default. Async-signal-safe.
void hg_child_reset_signals(void);
