// Reaping and the process-wide settings around spawning; the spawn itself is in spawn_async.c.
#define _GNU_SOURCE
#include "chyperglass.h"
#include <sys/prctl.h>
#include <string.h>
#include <sys/wait.h>

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
