// The system calls of an in-place upgrade (`hyperglassctl upgrade`): running the new binary's check
// mode, the sealed memfd that carries the state across execve, and telling a worker from a stranger
// that reused its pid. Part of the CHyperglass module through the include directory.
#ifndef CHYPERGLASS_UPGRADE_H
#define CHYPERGLASS_UPGRADE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// Starts `path` with `argv` (NULL-terminated): stdin /dev/null, stdout and stderr into a pipe whose
/// non-blocking, close-on-exec read end is returned in *output_fd, its own process group, PR_SET_PDEATHSIG.
/// Returns the pid at once (the caller reads the output and reaps the child from its event loop), or -1
/// with *error set (pipe or fork failed; nothing is left behind). A failed exec is said on the pipe, exit 127.
pid_t hg_check_start(const char *path, char *const argv[], int *output_fd, int *error);

/// A memfd holding `data`, sealed against any change (write, grow, shrink, further seals), read offset 0.
/// Close-on-exec like every fd of ours: the handover clears it on exactly the fds it carries.
int hg_sealed_memfd(const char *name, const void *data, size_t len);

/// Whether `fd` is a memfd sealed against writes (what the new image checks before trusting it): 1, 0, or -1.
int hg_is_write_sealed(int fd);

/// Clears close-on-exec on `fd`.
int hg_clear_cloexec(int fd);

/// Threads in this process (entries of /proc/self/task), or -1. execve must be made with exactly one.
int hg_thread_count(void);

/// Field 22 of /proc/PID/stat (start time in clock ticks since boot), or 0 when the process is gone.
uint64_t hg_process_start_time(pid_t pid);

#endif
