// Reaping and the process-wide settings around spawning; the spawn itself is in spawn_async.c.
#define _GNU_SOURCE
#include "chyperglass.h"
#include <sys/prctl.h>
#include <sys/wait.h>

int hg_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

extern char **environ;
char **hg_environ(void) { return environ; }

pid_t hg_reap_any(int *status) { return waitpid(-1, status, WNOHANG); }
int hg_wifexited(int status) { return WIFEXITED(status); }
int hg_wexitstatus(int status) { return WEXITSTATUS(status); }
int hg_wifsignaled(int status) { return WIFSIGNALED(status); }
int hg_wtermsig(int status) { return WTERMSIG(status); }
