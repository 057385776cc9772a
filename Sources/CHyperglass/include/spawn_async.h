// The spawn path that never waits for the child: its exec result comes back as an event.
#pragma once
#include <sys/types.h>

/// Starts one worker without waiting for its exec: fork, then in the child only async-signal-safe C
/// (own process group, PR_SET_PDEATHSIG(SIGKILL) + getppid() check, clean signal mask and default
/// dispositions, stdin from /dev/null, fds[i] moved to 3+i without close-on-exec, envp[listen_pid_index]
/// and every entry after it — "LISTEN_PID=", "WATCHDOG_PID=" buffers with 24 bytes to spare —
/// completed with the child's own pid), then execve(path).
/// Returns the pid at once, and in *report_fd the non-blocking, close-on-exec read end of a pipe whose
/// write end only the child holds: end of file means exec succeeded (the kernel closed it at exec);
/// exactly 4 bytes are the errno of the step that failed, after which the child exits with 127.
/// On failure to fork returns -1 with *error set; nothing is left behind.
pid_t hg_spawn_start(const char *path, char *const argv[], char *const envp[], int listen_pid_index,
                     const int *fds, int nfds, int *report_fd, int *error);

/// The same, and the child first joins the v2 cgroup whose `cgroup.procs` is open (O_WRONLY) at
/// cgroup_procs (-1: stay in ours), so everything the worker starts is counted in its cgroup.
pid_t hg_spawn_start_in(const char *path, char *const argv[], char *const envp[], int listen_pid_index,
                        const int *fds, int nfds, int cgroup_procs, int *report_fd, int *error);

/// Reads a spawn's report pipe without blocking. Returns 0 when exec succeeded (end of file), an errno
/// value > 0 when the child reported one, -1 when the report has not arrived yet (EAGAIN).
int hg_spawn_result(int report_fd);
