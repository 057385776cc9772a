// The spawn path. Only async-signal-safe C runs between fork and exec: no Swift, no malloc.
#define _GNU_SOURCE
#include "chyperglass.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int hg_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

extern char **environ;
char **hg_environ(void) { return environ; }

pid_t hg_peek_exited(void) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0) return -1;
    return info.si_pid;  // 0 when no child has exited (waitid leaves si_pid zeroed)
}

pid_t hg_reap(pid_t pid, int *status) { return waitpid(pid, status, WNOHANG); }
int hg_wifexited(int status) { return WIFEXITED(status); }
int hg_wexitstatus(int status) { return WEXITSTATUS(status); }
int hg_wifsignaled(int status) { return WIFSIGNALED(status); }
int hg_wtermsig(int status) { return WTERMSIG(status); }

/// Writes the decimal pid after the '=' of a "LISTEN_PID=" buffer (no snprintf: not async-signal-safe).
static void write_pid(char *entry, pid_t pid) {
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

static void child_fail(int pipe_fd, int step_errno) {
    while (write(pipe_fd, &step_errno, sizeof step_errno) < 0 && errno == EINTR) {}
    _exit(127);
}

pid_t hg_spawn(const char *path, char *const argv[], char *const envp[], int listen_pid_index,
               const int *fds, int nfds, int *error) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) { *error = errno; return -1; }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        *error = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (pid == 0) {
        int first_free = 3 + nfds;
        // The report pipe and every fd to pass must first leave the range 3..3+nfds-1 they will fill.
        int out = fcntl(report[1], F_DUPFD_CLOEXEC, first_free);
        if (out < 0) child_fail(report[1], errno);
        if (setpgid(0, 0) < 0) child_fail(out, errno);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) child_fail(out, errno);
        // The supervisor may have died before PDEATHSIG was armed; then nobody would ever kill us.
        if (getppid() != parent) _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigemptyset(&dfl.sa_mask);
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
        }
        int moved[64];
        if (nfds > 64) child_fail(out, EMFILE);
        for (int i = 0; i < nfds; i++) {
            moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, first_free);
            if (moved[i] < 0) child_fail(out, errno);
        }
        for (int i = 0; i < nfds; i++) {
            // dup2 gives the new descriptor without FD_CLOEXEC, so it survives exec.
            if (dup2(moved[i], 3 + i) < 0) child_fail(out, errno);
        }
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd >= 0) {
            dup2(null_fd, 0);
            close(null_fd);
        }
        // Every entry from listen_pid_index on is a "NAME=" placeholder for the child's own pid
        // (LISTEN_PID, WATCHDOG_PID).
        if (listen_pid_index >= 0) {
            for (int i = listen_pid_index; envp[i] != NULL; i++) write_pid(envp[i], getpid());
        }
        execve(path, argv, envp);
        child_fail(out, errno);
    }
    close(report[1]);
    int child_errno = 0;
    ssize_t n;
    do { n = read(report[0], &child_errno, sizeof child_errno); } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof child_errno) {
        // The child never reached exec; reap it here so no zombie is left for the loop to puzzle over.
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *error = child_errno;
        return -1;
    }
    return pid;
}
