// The affinity mask, for `workers = auto` (CpuBudget.swift). A 1024-CPU set covers every machine
// this runs on; sched_getaffinity fails with EINVAL on a larger one, and the caller then uses the
// online count.
#define _GNU_SOURCE
#include "cpus.h"
#include <sched.h>

int hg_affinity_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) < 0) return -1;
    return CPU_COUNT(&set);
}
