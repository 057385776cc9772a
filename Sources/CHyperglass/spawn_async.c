// The spawn path that never blocks the loop. Only async-signal-safe C runs between fork and exec:
// no Swift, no malloc. Why fork and not vfork / clone(CLONE_VM|CLONE_VFORK): with CLONE_VFORK the
// parent sleeps until the child has been *scheduled* and reached exec. That is ~0.15 ms on an idle
// machine, but on a busy one (2 CPUs shared with compilers) the child waits for a CPU and so does the
// loop: p90 4-25 ms, max 30-60 ms per spawn (bench/spawn.sh). fork costs the loop ~0.5 ms (copying
// page tables) and never waits for the child; the exec result arrives later on a close-on-exec pipe
// the loop watches in epoll, so a failed exec is still reported with its errno.
#define _GNU_SOURCE
#include "spawn_async.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "child.h"

/// Writes the decimal pid after the '=' of a "LISTEN_PID=" buffer (no snprintf: not async-signal-safe).
static void put_pid(char *entry, pid_t pid) {
    char *p = entry;
    while (*p && *p != '=') p++;
    if (*p != '=') return;
    p++;
    char digits[24];
    int n = 0;
    do { digits[n++] = (char)('0' + pid % 10); pid /= 10; } while (pid > 0 && n < 23);
    while (n > 0) *p++ = digits[--n];
    *p = '\0';
}

/// Reports the errno of the failed step to the parent and ends the child before it becomes a worker.
static void fail(int pipe_fd, int step_errno) {
    while (write(pipe_fd, &step_errno, sizeof step_errno) < 0 && errno == EINTR) {}
    _exit(127);
}

/// The child between fork and exec. Each step has its reason in a comment; none may allocate.
static void become_worker(const char *path, char *const argv[], char *const envp[], int listen_pid_index,
                          const int *fds, int nfds, int report, pid_t parent, int cgroup_procs) {
    // Into the worker's own cgroup first, before anything can fork: all it starts is then counted
    // there, and cgroup.kill ends the whole tree. Writing "0" to a v2 cgroup.procs moves the writer
    // (kernel 4.5+). clone3's CLONE_INTO_CGROUP (5.7) would spare the migration, but raw clone3 skips
    // glibc's fork handlers (swift-subprocess issue 374), and the fd shuffle below may reuse this fd.
    if (cgroup_procs >= 0) {
        ssize_t n;
        do { n = write(cgroup_procs, "0", 1); } while (n < 0 && errno == EINTR);
        if (n < 0) fail(report, errno);
    }
    int first_free = 3 + nfds;
    // The report pipe and every fd to pass must first leave the range 3..3+nfds-1 they will fill.
    int out = fcntl(report, F_DUPFD_CLOEXEC, first_free);
    if (out < 0) fail(report, errno);
    // Its own group, so the supervisor can signal the worker and whatever it forks in one kill().
    if (setpgid(0, 0) < 0) fail(out, errno);
    // Workers must not outlive a SIGKILLed supervisor (systemd would count them as the next start's).
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) fail(out, errno);
    // The supervisor may have died before PDEATHSIG was armed; then nobody would ever kill us.
    if (getppid() != parent) _exit(127);
    hg_child_reset_signals();
    int moved[64];
    if (nfds > 64) fail(out, EMFILE);
    for (int i = 0; i < nfds; i++) {
        moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, first_free);
        if (moved[i] < 0) fail(out, errno);
    }
    for (int i = 0; i < nfds; i++) {
        // dup2 gives the new descriptor without FD_CLOEXEC, so it survives exec.
        if (dup2(moved[i], 3 + i) < 0) fail(out, errno);
    }
    // Nothing else the supervisor holds reaches the worker: an fd it was itself started with and that is
    // not close-on-exec (a wrapper script's lock on fd 9) would otherwise live as long as every worker.
    // Not done in the supervisor itself: its own inherited fds must survive its in-place upgrade's exec.
    // close_range's CLOEXEC flag: kernel 5.11, glibc 2.34; before that, a bounded loop.
    if (close_range((unsigned)first_free, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (int fd = first_free; fd < 4096; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    // A worker reading stdin must not steal the terminal's or systemd's input.
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, 0);
        close(null_fd);
    }
    // Every entry from listen_pid_index on is a "NAME=" placeholder for the child's own pid
    // (LISTEN_PID, WATCHDOG_PID). After fork these buffers are the child's own copy.
    if (listen_pid_index >= 0) {
        for (int i = listen_pid_index; envp[i] != NULL; i++) put_pid(envp[i], getpid());
    }
    execve(path, argv, envp);
    fail(out, errno);
}

pid_t hg_spawn_start(const char *path, char *const argv[], char *const envp[], int listen_pid_index,
                     const int *fds, int nfds, int *report_fd, int *error) {
    return hg_spawn_start_in(path, argv, envp, listen_pid_index, fds, nfds, -1, report_fd, error);
}

pid_t hg_spawn_start_in(const char *path, char *const argv[], char *const envp[], int listen_pid_index,
                        const int *fds, int nfds, int cgroup_procs, int *report_fd, int *error) {
    int report[2];
    // Close-on-exec both ends: a successful exec closes the child's, which is the parent's signal.
    // Non-blocking read end: the loop reads it only when epoll says so, and never waits on it.
    if (pipe2(report, O_CLOEXEC | O_NONBLOCK) < 0) { *error = errno; return -1; }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        *error = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (pid == 0) {
        close(report[0]);
        // The write end must block in the child: 4 bytes always fit, but O_NONBLOCK is per open file.
        fcntl(report[1], F_SETFL, 0);
        become_worker(path, argv, envp, listen_pid_index, fds, nfds, report[1], parent, cgroup_procs);
    }
    close(report[1]);
    *report_fd = report[0];
    return pid;
}

int hg_spawn_result(int report_fd) {
    int child_errno = 0;
    ssize_t n;
    do { n = read(report_fd, &child_errno, sizeof child_errno); } while (n < 0 && errno == EINTR);
    if (n == 0) return 0;
    if (n == (ssize_t)sizeof child_errno) return child_errno > 0 ? child_errno : EIO;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
    // A short read cannot happen for 4 bytes on a pipe; treat it, and any read error, as a failed start.
    return n < 0 ? errno : EIO;
}

void hg_child_reset_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
    }
}
