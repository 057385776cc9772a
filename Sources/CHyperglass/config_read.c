// Reading a configuration file on a helper thread with a time-out (see config_read.h). In C because the
// thread runs no Swift: it opens, reads and signals a pipe, nothing else. The event loop stays the only
// thread that does anything else; a thread left behind by a hung mount only ever finishes its read.
#define _GNU_SOURCE
#include "config_read.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *path;
    size_t limit;
    char *data;
    size_t length;
    int result;
    int error;
    int done[2];
    /// The caller and the thread; whoever lets go last frees the job.
    atomic_int holders;
} job;

/// Threads still stuck in an open or read: past a few, refuse at once rather than pile them up.
static atomic_int stuck;

static void let_go(job *j) {
    if (atomic_fetch_sub(&j->holders, 1) != 1) return;
    free(j->path);
    free(j->data);
    close(j->done[0]);
    close(j->done[1]);
    free(j);
}

static void read_file(job *j) {
    // O_NONBLOCK: a FIFO's open returns at once instead of waiting for a writer; fstat then refuses it.
    int fd = open(j->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) { j->result = -1; j->error = errno; return; }
    struct stat info;
    if (fstat(fd, &info) < 0) { j->result = -1; j->error = errno; close(fd); return; }
    if (!S_ISREG(info.st_mode)) { j->result = HG_CONFIG_NOT_REGULAR; close(fd); return; }
    if ((size_t)info.st_size > j->limit) { j->result = HG_CONFIG_TOO_LARGE; close(fd); return; }
    // One byte more than the limit: a file that grew since fstat is refused too, not cut.
    size_t capacity = j->limit + 1;
    j->data = malloc(capacity);
    if (!j->data) { j->result = -1; j->error = ENOMEM; close(fd); return; }
    while (j->length < capacity) {
        ssize_t n = read(fd, j->data + j->length, capacity - j->length);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { j->result = -1; j->error = errno; close(fd); return; }
        if (n == 0) break;
        j->length += (size_t)n;
    }
    close(fd);
    j->result = j->length > j->limit ? HG_CONFIG_TOO_LARGE : 0;
}

static void *reader(void *argument) {
    job *j = argument;
    read_file(j);
    char byte = 1;
    while (write(j->done[1], &byte, 1) < 0 && errno == EINTR) {}
    atomic_fetch_sub(&stuck, 1);
    let_go(j);
    return NULL;
}

int hg_read_config(const char *path, size_t limit, int timeout_ms, char **data, size_t *length) {
    if (atomic_load(&stuck) >= 4) return HG_CONFIG_TIMED_OUT;
    job *j = calloc(1, sizeof *j);
    if (!j) { errno = ENOMEM; return -1; }
    j->path = strdup(path);
    j->limit = limit;
    atomic_init(&j->holders, 2);
    if (!j->path || pipe2(j->done, O_CLOEXEC) < 0) {
        int saved = j->path ? errno : ENOMEM;
        free(j->path);
        free(j);
        errno = saved;
        return -1;
    }
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 64 * 1024);
    pthread_t thread;
    atomic_fetch_add(&stuck, 1);
    int started = pthread_create(&thread, &attributes, reader, j);
    pthread_attr_destroy(&attributes);
    if (started != 0) {
        // No thread: read here (the loop then waits as it always did).
        atomic_fetch_sub(&stuck, 1);
        read_file(j);
        atomic_fetch_sub(&j->holders, 1);
    } else {
        struct pollfd wait = { .fd = j->done[0], .events = POLLIN };
        int ready;
        do ready = poll(&wait, 1, timeout_ms); while (ready < 0 && errno == EINTR);
        if (ready <= 0) {
            let_go(j);
            return HG_CONFIG_TIMED_OUT;
        }
    }
    int result = j->result;
    if (result == 0) {
        *data = j->data;
        *length = j->length;
        j->data = NULL;
    } else if (result < 0) {
        errno = j->error;
    }
    let_go(j);
    return result;
}
