// The spawn primitives alone, timed from the parent's side: what the supervisor's loop pays per spawn.
// fork + blocking read of the exec status (hg_spawn before issue 14), fork alone (hg_spawn_start: the
// exec result arrives later as an event), clone(CLONE_VM|CLONE_VFORK) as posix_spawn does (the parent
// sleeps until the child exec'd). The parent has MB (default 10) MiB resident, like the supervisor.
// usage: spawnprims PROGRAM [ARGS...]
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static char *path;
static char **args;
enum { N = 200 };

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *label, double *t) {
    qsort(t, N, sizeof *t, by_value);
    printf("%-40s median %6.3f ms  p90 %6.3f ms  max %7.3f ms\n", label, t[N / 2], t[N * 9 / 10], t[N - 1]);
}

static void child_side(void) {
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    for (int sig = 1; sig < NSIG; sig++) if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    execve(path, args, environ);
    _exit(127);
}

static int vfork_child(void *unused) { (void)unused; child_side(); return 0; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: spawnprims PROGRAM [ARGS...]\n"); return 2; }
    path = argv[1];
    args = argv + 1;
    size_t mib = getenv("MB") ? (size_t)atoi(getenv("MB")) : 10;
    char *resident = malloc(mib << 20);
    memset(resident, 1, mib << 20);
    double t[N];
    for (int i = 0; i < N; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) return 1;
        double start = now_ms();
        pid_t pid = fork();
        if (pid == 0) { close(p[0]); child_side(); }
        close(p[1]);
        int e;
        while (read(p[0], &e, sizeof e) < 0) {}
        t[i] = now_ms() - start;
        close(p[0]);
        waitpid(pid, NULL, 0);
    }
    report("fork + wait for exec (before issue 14)", t);
    for (int i = 0; i < N; i++) {
        double start = now_ms();
        pid_t pid = fork();
        if (pid == 0) child_side();
        t[i] = now_ms() - start;
        waitpid(pid, NULL, 0);
    }
    report("fork alone (exec result as an event)", t);
    size_t stack_size = 64 << 10;
    char *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    for (int i = 0; i < N; i++) {
        sigset_t all, old;
        sigfillset(&all);
        double start = now_ms();
        // Blocked in the parent so no handler can run on the shared memory before the child reset them.
        sigprocmask(SIG_BLOCK, &all, &old);
        pid_t pid = clone(vfork_child, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        t[i] = now_ms() - start;
        waitpid(pid, NULL, 0);
    }
    report("clone(CLONE_VM|CLONE_VFORK), until exec", t);
    free(resident);
    return 0;
}
