// The Linux calls Swift's Glibc module does not expose, each small and prefixed `hg_`.
// Every function returns -1 and leaves errno set on failure unless its comment says otherwise.
#ifndef CHYPERGLASS_H
#define CHYPERGLASS_H

#include <stdint.h>
#include <sys/types.h>

// MARK: epoll
typedef struct { uint32_t events; uint64_t data; } hg_event;
extern const uint32_t HG_EPOLLIN, HG_EPOLLOUT, HG_EPOLLERR, HG_EPOLLHUP, HG_EPOLLRDHUP;
int hg_epoll_create(void);
int hg_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
int hg_epoll_mod(int epfd, int fd, uint32_t events, uint64_t data);
int hg_epoll_del(int epfd, int fd);
/// Waits up to timeout_ms (-1 forever); returns the number of events, or -1 (EINTR included).
int hg_epoll_wait(int epfd, hg_event *events, int max, int timeout_ms);

// MARK: signals
/// Blocks the given signals in the calling thread (signalfd only sees blocked signals).
int hg_block_signals(const int *signals, int count);
/// A non-blocking, close-on-exec signalfd for the given signals.
int hg_signalfd(const int *signals, int count);
/// Reads one signal: returns its number, 0 when none is pending, -1 on error.
int hg_signalfd_read(int fd);
/// Ignores SIGPIPE so a vanished peer is an EPIPE, not a death.
void hg_ignore_sigpipe(void);

// MARK: time
uint64_t hg_monotonic_ns(void);
/// A non-blocking, close-on-exec CLOCK_MONOTONIC timerfd.
int hg_timerfd_create(void);
/// Arms the timer for an absolute CLOCK_MONOTONIC instant in ns; 0 disarms it.
int hg_timerfd_set(int fd, uint64_t deadline_ns);
/// Consumes the expiration count so the fd stops being readable.
void hg_timerfd_drain(int fd);

// MARK: processes
int hg_set_child_subreaper(void);
/// The process environment (glibc's `environ`), which Swift 6 cannot read as a global safely.
char **hg_environ(void);
/// waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT): the pid of an exited child left unreaped (its zombie
/// keeps the pid, and the process group it leads, from being reused), 0 when none, -1 when no children.
pid_t hg_peek_exited(void);
/// waitpid(pid, WNOHANG): reaps that one child; returns pid, 0 if it has not exited, -1 on error.
pid_t hg_reap(pid_t pid, int *status);
int hg_wifexited(int status);
int hg_wexitstatus(int status);
int hg_wifsignaled(int status);
int hg_wtermsig(int status);
// The spawn itself: spawn_async.h.

// MARK: sockets
/// Listening TCP sockets for host:port (all addresses getaddrinfo gives; IPv6 ones IPV6_V6ONLY).
/// host NULL means all interfaces. Writes up to max fds; returns their count, or -1 with *gai_error
/// set for a resolution failure (0 when errno tells).
int hg_listen_tcp(const char *host, int port, int backlog, int *fds, int max, int *gai_error);
const char *hg_gai_strerror(int code);
/// A listening Unix stream socket at path ("@name" for the abstract namespace), non-blocking, close-on-exec.
int hg_listen_unix(const char *path, int backlog);
/// A non-blocking, close-on-exec Unix socket of `type` (SOCK_STREAM: listening; SOCK_DGRAM: receiving
/// sender credentials) bound to path, its file created with exactly `mode` (fchmod before bind, umask 0).
int hg_bind_unix(const char *path, int type, unsigned mode, int backlog);
/// A connected Unix stream socket (blocking), close-on-exec.
int hg_connect_unix(const char *path);
/// A non-blocking, close-on-exec Unix stream socket connecting to path ("@name" is abstract), or -1.
int hg_connect_unix_nonblocking(const char *path);
/// A non-blocking datagram socket connected to `path` ('@' for the abstract namespace), or -1 with errno.
int hg_connect_unix_datagram(const char *path);
/// Whether a live process accepts on the Unix socket at path (1 yes, 0 no).
int hg_unix_socket_alive(const char *path);
/// A non-blocking, close-on-exec accepted socket, or -1.
int hg_accept(int fd);
/// A readable address of a bound socket ("127.0.0.1:8001", "[::1]:8001", "unix:/run/x.sock").
int hg_sockname(int fd, char *buf, int len);
/// The socket type (SOCK_STREAM...) of fd, or -1; used to vet inherited LISTEN_FDS.
int hg_socket_type(int fd);
/// Credentials of a Unix socket peer (SO_PEERCRED).
int hg_peercred(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid);
int hg_set_nonblocking(int fd);
int hg_set_cloexec(int fd);

// MARK: sd_notify
/// Receives one datagram; *pid gets the sender's pid (0 if unknown). Returns the length, 0 if none.
ssize_t hg_notify_recv(int fd, char *buf, size_t len, int32_t *pid);

#endif
