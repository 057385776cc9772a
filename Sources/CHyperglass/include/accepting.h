// Seeing from /proc, without the worker's help, whether a process accepts on given listening sockets
// (docs/readiness.md has the survey of real servers behind it). Part of the CHyperglass module through
// the include directory, beside chyperglass.h.
#ifndef CHYPERGLASS_ACCEPTING_H
#define CHYPERGLASS_ACCEPTING_H

#include <stdint.h>
#include <sys/types.h>

/// How a process was seen accepting on a listening socket (`how` of `hg_accepting`).
enum {
    HG_ACCEPTING_NO = 0,
    /// The socket is registered for input in one of the process's epoll sets and a thread of that
    /// process waits in epoll_wait on the set (event loops: asyncio, uvloop/libuv, Node, Go, gunicorn
    /// gthread, the bundled worker).
    HG_ACCEPTING_EPOLL = 1,
    /// A thread is blocked in accept/accept4 on it (plain blocking servers).
    HG_ACCEPTING_ACCEPT = 2,
    /// A thread is blocked in poll/ppoll/select/pselect6 with it in the set (http.server,
    /// gunicorn's sync worker). The set is read from the process's memory: needs ptrace access.
    HG_ACCEPTING_POLL = 3,
};

/// One listening socket to look for, as fstat gives it, and what was found.
typedef struct {
    /// In: the socket's st_dev and st_ino.
    uint64_t device;
    uint64_t inode;
    /// Out: HG_ACCEPTING_*, the process and its fd number for the socket (-1 when unknown),
    /// and for HG_ACCEPTING_ACCEPT/POLL the thread.
    int32_t how;
    int32_t pid;
    int32_t fd;
    int32_t tid;
} hg_accepting;

/// Looks at one process and fills every target it accepts on (targets already found are left alone,
/// so one array can collect a whole process tree). Returns how many targets it newly filled, or -1
/// when the process is gone (ESRCH) or /proc refuses (EACCES, errno set).
/// Bounded: at most 4096 fds, 64 epoll sets and 1024 threads of the process are looked at.
int hg_accepting_scan(pid_t pid, hg_accepting *targets, int count);

/// Writes up to max pids of pid's children (every thread's, from /proc/PID/task/TID/children,
/// which needs CONFIG_PROC_CHILDREN); returns how many, or -1 (errno set).
int hg_process_children(pid_t pid, int32_t *children, int max);

#endif
