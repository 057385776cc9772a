// What autoscaling reads from the kernel about the listening sockets, without the workers' help.
#pragma once
#include <stdint.h>

/// Connections waiting in a listening socket's accept queue: for TCP, TCP_INFO's tcpi_unacked (for a
/// listener, sk_ack_backlog) and *backlog its limit (tcpi_sacked); for a unix socket, sock_diag's
/// UNIX_DIAG_RQLEN (what `ss -xl` shows). -1 when neither answers (e.g. a kernel without unix_diag).
int hg_listen_queue(int fd, int *backlog);

/// Watches a listener for one incoming connection: EPOLLIN | EPOLLONESHOT, added the first time
/// (`add` non-zero) and re-armed with EPOLL_CTL_MOD after. One wake-up, then silence until re-armed.
int hg_epoll_watch_once(int epfd, int fd, uint64_t data, int add);
