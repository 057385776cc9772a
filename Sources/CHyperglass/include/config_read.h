// Reading a configuration file without letting it freeze the event loop (issue 25, items 9 and 10).
#ifndef CHYPERGLASS_CONFIG_READ_H
#define CHYPERGLASS_CONFIG_READ_H

#include <stddef.h>

/// Results of `hg_read_config` besides 0 (read) and -1 (errno set).
enum {
    /// Not a regular file: a FIFO, a device, a directory (a FIFO's open would wait for a writer).
    HG_CONFIG_NOT_REGULAR = 1,
    /// Longer than the limit: refused, never cut.
    HG_CONFIG_TOO_LARGE = 2,
    /// open() or read() did not finish within the time-out (a hung network mount); the reading thread is
    /// left to finish on its own and frees what it holds.
    HG_CONFIG_TIMED_OUT = 3,
};

/// Reads the whole regular file `path` (at most `limit` bytes) on a helper thread, waiting at most
/// `timeout_ms`. On 0, *data (malloc'ed, the caller frees) and *length hold the contents.
int hg_read_config(const char *path, size_t limit, int timeout_ms, char **data, size_t *length);

#endif
