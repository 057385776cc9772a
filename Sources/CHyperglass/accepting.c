// Whether a process accepts on given listening sockets, from /proc alone (see accepting.h).
// In C because it walks directories and parses kernel text in a loop that must not allocate per entry,
// and because the syscall numbers it matches are per-architecture macros.
#define _GNU_SOURCE
#include "accepting.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

enum { MAX_FDS = 4096, MAX_EPOLLS = 64, MAX_THREADS = 1024, MAX_LISTENER_FDS = 64 };

/// The fds of one process that are one of the targets.
typedef struct { int fd; int target; } listener_fd;

static int target_of_fd(const listener_fd *fds, int n, int fd) {
    for (int i = 0; i < n; i++)
        if (fds[i].fd == fd) return fds[i].target;
    return -1;
}

static void found(hg_accepting *t, int how, pid_t pid, int fd, pid_t tid, int *filled) {
    if (t->how != HG_ACCEPTING_NO) return;
    t->how = how;
    t->pid = pid;
    t->fd = fd;
    t->tid = tid;
    (*filled)++;
}

/// Lists the process's fds that are target sockets, and its epoll fds.
static int scan_fds(pid_t pid, const hg_accepting *targets, int count, listener_fd *listeners, int *nlisteners,
                    int *epolls, int *nepolls) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (!dir) return -1;
    struct dirent *entry;
    int seen = 0;
    while ((entry = readdir(dir)) && seen < MAX_FDS) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        seen++;
        char link[64];
        ssize_t n = readlinkat(dirfd(dir), entry->d_name, link, sizeof link - 1);
        if (n <= 0) continue;
        link[n] = 0;
        int fd = atoi(entry->d_name);
        unsigned long long inode;
        if (sscanf(link, "socket:[%llu]", &inode) == 1) {
            // Every socket lives on the one sockfs, so the inode alone names it here.
            for (int i = 0; i < count && *nlisteners < MAX_LISTENER_FDS; i++)
                if (targets[i].inode == inode) listeners[(*nlisteners)++] = (listener_fd){ fd, i };
        } else if (strcmp(link, "anon_inode:[eventpoll]") == 0 && *nepolls < MAX_EPOLLS) {
            epolls[(*nepolls)++] = fd;
        }
    }
    closedir(dir);
    return 0;
}

/// A target registered in one of the process's epoll sets: it counts once a thread waits on that set.
typedef struct { int epfd; int tfd; int target; } epoll_entry;
enum { MAX_EPOLL_ENTRIES = 64 };

/// Reads the epoll set's registrations ("tfd: 5 events: 19 data: ... pos:0 ino:5b5ad sdev:8") and
/// matches them by inode and device, not by fd number: servers dup the sockets they inherit, and an
/// entry stays registered under the fd it was added with. A registration alone is not accepting: a
/// set nobody waits on (an asyncio loop blocked right after start_server, a child that registered the
/// socket and hangs) takes no connection, so the entry is kept for the thread scan (issue 25, item 2).
static void scan_epoll(pid_t pid, int epfd, hg_accepting *targets, int count, epoll_entry *entries, int *nentries) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)pid, epfd);
    FILE *file = fopen(path, "re");
    if (!file) return;
    char line[256];
    while (fgets(line, sizeof line, file)) {
        int tfd;
        unsigned int events, sdev;
        unsigned long long data, pos, inode;
        if (sscanf(line, "tfd: %d events: %x data: %llx pos:%llu ino:%llx sdev:%x", &tfd, &events, &data, &pos,
                   &inode, &sdev) != 6)
            continue;
        // EPOLLIN: a listener kept in the set with input masked (libuv's way of pausing) is not accepting.
        if (!(events & 0x001)) continue;
        for (int i = 0; i < count; i++) {
            // sdev is the kernel's dev_t (major << 20 | minor); st_dev is glibc's encoding.
            if (targets[i].inode == inode && major(targets[i].device) == (sdev >> 20) &&
                minor(targets[i].device) == (sdev & 0xfffff) && *nentries < MAX_EPOLL_ENTRIES)
                entries[(*nentries)++] = (epoll_entry){ epfd, tfd, i };
        }
    }
    fclose(file);
}

static int read_memory(pid_t pid, unsigned long address, void *buffer, size_t length) {
    struct iovec local = { buffer, length }, remote = { (void *)address, length };
    return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)length ? 0 : -1;
}

/// One thread: blocked in accept on a target, in poll/select with a target in its read set, or in
/// epoll_wait on a set that holds a target.
static void scan_thread(pid_t pid, pid_t tid, const listener_fd *listeners, int nlisteners, const epoll_entry *entries,
                        int nentries, hg_accepting *targets, int *filled) {
    char path[64], text[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return;
    text[n] = 0;
    long nr;
    unsigned long a[6];
    // "running" or "-1 sp pc" (not in a system call) do not parse as seven numbers.
    if (sscanf(text, "%ld %lx %lx %lx %lx %lx %lx", &nr, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5]) != 7) return;
    int is_epoll_wait = nr == SYS_epoll_pwait;
#ifdef SYS_epoll_wait
    is_epoll_wait |= nr == SYS_epoll_wait;
#endif
#ifdef SYS_epoll_pwait2
    is_epoll_wait |= nr == SYS_epoll_pwait2;
#endif
    if (is_epoll_wait) {
        for (int i = 0; i < nentries; i++)
            if (entries[i].epfd == (int)a[0]) found(&targets[entries[i].target], HG_ACCEPTING_EPOLL, pid, entries[i].tfd, tid, filled);
        return;
    }
    int is_accept = nr == SYS_accept4;
#ifdef SYS_accept
    is_accept |= nr == SYS_accept;
#endif
    if (is_accept) {
        int target = target_of_fd(listeners, nlisteners, (int)a[0]);
        if (target >= 0) found(&targets[target], HG_ACCEPTING_ACCEPT, pid, (int)a[0], tid, filled);
        return;
    }
    int is_poll = nr == SYS_ppoll;
#ifdef SYS_poll
    is_poll |= nr == SYS_poll;
#endif
    if (is_poll && a[1] > 0 && a[1] <= 1024) {
        struct { int fd; short events, revents; } set[1024];
        if (read_memory(pid, a[0], set, a[1] * sizeof set[0]) < 0) return;
        for (unsigned long i = 0; i < a[1]; i++) {
            int target = target_of_fd(listeners, nlisteners, set[i].fd);
            if (target >= 0 && (set[i].events & 0x001)) found(&targets[target], HG_ACCEPTING_POLL, pid, set[i].fd, tid, filled);
        }
        return;
    }
    int is_select = nr == SYS_pselect6;
#ifdef SYS_select
    is_select |= nr == SYS_select;
#endif
    if (is_select && a[1] != 0 && a[0] > 0 && a[0] <= 1024) {
        // select(nfds, readfds, ...): the read set is a bitmap of nfds bits.
        unsigned char bits[128];
        size_t length = (a[0] + 7) / 8;
        if (read_memory(pid, a[1], bits, length) < 0) return;
        for (int i = 0; i < nlisteners; i++) {
            int lfd = listeners[i].fd;
            if ((unsigned long)lfd < a[0] && (bits[lfd / 8] >> (lfd % 8) & 1))
                found(&targets[listeners[i].target], HG_ACCEPTING_POLL, pid, lfd, tid, filled);
        }
    }
}

int hg_accepting_scan(pid_t pid, hg_accepting *targets, int count) {
    listener_fd listeners[MAX_LISTENER_FDS];
    int epolls[MAX_EPOLLS], nlisteners = 0, nepolls = 0, filled = 0, nentries = 0;
    epoll_entry entries[MAX_EPOLL_ENTRIES];
    if (scan_fds(pid, targets, count, listeners, &nlisteners, epolls, &nepolls) < 0) return -1;
    for (int i = 0; i < nepolls; i++) scan_epoll(pid, epolls[i], targets, count, entries, &nentries);
    // A thread can only accept on a socket the process holds, or wait on a set that holds it.
    if (nlisteners == 0 && nentries == 0) return filled;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (!dir) return filled;
    struct dirent *entry;
    int threads = 0;
    while ((entry = readdir(dir)) && threads < MAX_THREADS) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        threads++;
        scan_thread(pid, atoi(entry->d_name), listeners, nlisteners, entries, nentries, targets, &filled);
    }
    closedir(dir);
    return filled;
}

int hg_process_children(pid_t pid, int32_t *children, int max) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (!dir) return -1;
    struct dirent *entry;
    int count = 0;
    while ((entry = readdir(dir)) && count < max) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        char file[96];
        snprintf(file, sizeof file, "/proc/%d/task/%s/children", (int)pid, entry->d_name);
        FILE *list = fopen(file, "re");
        if (!list) continue;
        int child;
        while (count < max && fscanf(list, "%d", &child) == 1) children[count++] = child;
        fclose(list);
    }
    closedir(dir);
    return count;
}
