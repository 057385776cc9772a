// What autoscaling reads from the kernel about the listening sockets, without the workers' help.
#pragma once
#include <stdint.h>

/// Connections waiting in a listening TCP socket's accept queue (TCP_INFO's tcpi_unacked, which for a
/// listener is sk_ack_backlog); *backlog gets its limit (tcpi_sacked). -1 for a non-TCP socket or an error.
int hg_listen_queue(int fd, int *backlog);

/// Watches a listener for one incoming connection: EPOLLIN | EPOLLONESHOT, added the first time
/// (`add` non-zero) and re-armed with EPOLL_CTL_MOD after. One wake-up, then silence until re-armed.
int hg_epoll_watch_once(int epfd, int fd, uint64_t data, int add);
