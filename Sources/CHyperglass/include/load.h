// What autoscaling reads from the kernel about the listening sockets, without the workers' help.
#pragma once
#include <stdint.h>

/// Connections waiting in a listening socket's accept queue: for TCP, TCP_INFO's tcpi_unacked (for a
/// listener, sk_ack_backlog) and *backlog its limit (tcpi_sacked); for a unix socket, sock_diag's
/// UNIX_DIAG_RQLEN (what `ss -xl` shows). -1 when neither answers (e.g. a kernel without unix_diag).
int hg_listen_queue(int fd, int *backlog);

/// How long the oldest connection waiting in a TCP listener's accept queue has waited, in ms: the largest,
/// over the queued connections (sock_diag: established, on the listener's address and port, with no inode
/// yet because no process accepted them), of the time since the client last sent anything (tcp_info's
/// last_data_recv and last_ack_recv): a lower bound of the wait, so it never overstates. -1 when no connection
/// waits; -2 when the kernel cannot tell (not TCP, no inet_diag). `waiting`: the listener's queue length;
/// when the dump finds more queued connections than that on the address and port (another program's
/// SO_REUSEPORT listener there), the waiting-th youngest age stands for the oldest, still a lower bound.
/// `taken` receives, up to `capacity`, the socket cookies of the listener's connections that a process took
/// (accepted: an inode, or a state only a close after accept reaches, TIME_WAIT included); `*taken_count` is
/// how many there were (more than `capacity`: ask again with room), -1 when the dump did not finish or
/// `taken` is NULL (then the dump skips the states after a close, which a busy port holds by thousands). A
/// connection taken between two looks shows as a cookie the earlier look did not have.
long hg_listen_oldest_wait_ms(int fd, int waiting, uint64_t *taken, int capacity, int *taken_count);

/// A unix listener's queued connections, by the inode of each one's client end (sock_diag UNIX_DIAG_ICONS):
/// unix sockets tell no age, but a connection seen at two looks has waited at least the time between them.
/// Fills up to `capacity` ids; returns how many are queued (more than `capacity`: ask again with room),
/// -1 when the kernel does not tell.
int hg_unix_queued(int fd, uint64_t *ids, int capacity);

/// Watches a listener for one incoming connection: EPOLLIN | EPOLLONESHOT, added the first time
/// (`add` non-zero) and re-armed with EPOLL_CTL_MOD after. One wake-up, then silence until re-armed.
int hg_epoll_watch_once(int epfd, int fd, uint64_t data, int add);
