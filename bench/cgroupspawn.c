// cgroupspawn.c: what the cgroup step adds to a worker spawn (issue 21). Median of N (default 100)
// spawns of /bin/true each way, alternating: "plain" = fork, exec, reap; "cgroup" = mkdir a child
// cgroup and open its cgroup.procs, fork, the child writes "0" to it before exec, reap, then
// cgroup.kill + rmdir, as Spawner.swift / WorkerCgroups.swift do. Two figures each: the loop's cost
// up to fork returning (what the event loop pays per spawn), and spawn-to-reap-to-removed.
// Build and run as root on a machine with a writable v2 hierarchy:
//   cc -O2 -o /tmp/cgroupspawn bench/cgroupspawn.c && /tmp/cgroupspawn /sys/fs/cgroup/unified 100
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void spawn(const char *base, int i, int with_cgroup, double *loop, double *total) {
    char dir[512], file[600];
    int procs = -1;
    double t0 = now_us();
    if (with_cgroup) {
        snprintf(dir, sizeof dir, "%s/worker-0.%d", base, i);
        if (mkdir(dir, 0755) < 0) { perror("mkdir"); exit(1); }
        snprintf(file, sizeof file, "%s/cgroup.procs", dir);
        procs = open(file, O_WRONLY | O_CLOEXEC);
        if (procs < 0) { perror("open cgroup.procs"); exit(1); }
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (procs >= 0 && write(procs, "0", 1) < 0) _exit(126);
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    *loop = now_us() - t0;
    if (procs >= 0) close(procs);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "child failed: %d\n", status); exit(1); }
    if (with_cgroup) {
        snprintf(file, sizeof file, "%s/cgroup.kill", dir);
        int k = open(file, O_WRONLY | O_CLOEXEC);
        if (k >= 0) { if (write(k, "1", 1) < 0) perror("cgroup.kill"); close(k); }
        if (rmdir(dir) < 0) { perror("rmdir"); exit(1); }
    }
    *total = now_us() - t0;
}

int main(int argc, char **argv) {
    const char *mount = argc > 1 ? argv[1] : "/sys/fs/cgroup/unified";
    int n = argc > 2 ? atoi(argv[2]) : 100;
    char base[256];
    snprintf(base, sizeof base, "%s/cgroupspawn-%d", mount, (int)getpid());
    if (mkdir(base, 0755) < 0) { perror("mkdir base"); return 1; }
    double *loop[2], *total[2];
    for (int w = 0; w < 2; w++) { loop[w] = calloc(n, sizeof(double)); total[w] = calloc(n, sizeof(double)); }
    for (int i = 0; i < n; i++)
        for (int w = 0; w < 2; w++) spawn(base, i, w, &loop[w][i], &total[w][i]);
    rmdir(base);
    const char *name[2] = {"plain ", "cgroup"};
    for (int w = 0; w < 2; w++) {
        qsort(loop[w], n, sizeof(double), cmp);
        qsort(total[w], n, sizeof(double), cmp);
        printf("%s  loop until fork returned: median %.0f us (p90 %.0f)   spawn+exec+reap%s: median %.0f us (p90 %.0f)\n", name[w],
               loop[w][n / 2], loop[w][n * 9 / 10], w ? "+kill+rmdir" : "", total[w][n / 2], total[w][n * 9 / 10]);
    }
    return 0;
}
