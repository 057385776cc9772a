// How many CPUs this process may run on; glibc's CPU_COUNT is a macro Swift cannot call.
#pragma once

/// The number of CPUs in the calling thread's affinity mask (taskset, CPUAffinity=, cpuset), or -1.
int hg_affinity_cpus(void);
