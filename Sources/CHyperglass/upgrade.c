// See include/upgrade.h.
#define _GNU_SOURCE
#include "upgrade.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "child.h"

pid_t hg_check_start(const char *path, char *const argv[], int *output_fd, int *error) {
    int fds[2];
    // Close-on-exec both ends (the child's copy is dup2'd onto 1 and 2); non-blocking read end: the loop
    // reads it only when epoll says so.
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) { *error = errno; return -1; }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        *error = errno;
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        // Only async-signal-safe calls: the supervisor's blocked signals and dispositions are not the check's.
        hg_child_reset_signals();
        // Its own process group, so a timeout ends whatever it started too (a grandchild holding the pipe).
        setpgid(0, 0);
        // A SIGKILLed supervisor takes its check along, as it does its workers.
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != parent) _exit(127);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, 0);
        // The write end blocks in the child: O_NONBLOCK is per open file, and a check's output must not be cut.
        fcntl(fds[1], F_SETFL, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        // Nothing else of ours (or of whoever started us, without close-on-exec) reaches the check: in
        // this child only, so the supervisor's own inherited fds still live across its own exec.
        syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC, Linux 5.11 */);
        execv(path, argv);
        char message[] = "cannot execute: ";
        (void)!write(2, message, sizeof message - 1);
        const char *why = strerror(errno);
        (void)!write(2, why, strlen(why));
        _exit(127);
    }
    close(fds[1]);
    *output_fd = fds[0];
    return pid;
}

int hg_sealed_memfd(const char *name, const void *data, size_t len) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { int saved = errno; close(fd); errno = saved; return -1; }
        p += n;
        left -= (size_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int hg_is_write_sealed(int fd) {
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0) return -1;
    return (seals & F_SEAL_WRITE) && (seals & F_SEAL_SHRINK) ? 1 : 0;
}

int hg_clear_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
}

int hg_thread_count(void) {
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (entry->d_name[0] != '.') count++;
    }
    closedir(dir);
    return count;
}

uint64_t hg_process_start_time(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buffer[1024];
    ssize_t n = read(fd, buffer, sizeof buffer - 1);
    close(fd);
    if (n <= 0) return 0;
    buffer[n] = '\0';
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    char *p = strrchr(buffer, ')');
    if (!p) return 0;
    int field = 2;
    for (; *p && field < 22; p++) {
        if (*p == ' ') field++;
    }
    unsigned long long start = 0;
    if (sscanf(p, "%llu", &start) != 1) return 0;
    return start;
}
