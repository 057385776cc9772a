// The kernel's view of the listening sockets, for autoscaling (see load.h).
#define _GNU_SOURCE
#include "load.h"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

int hg_listen_queue(int fd, int *backlog) {
    struct tcp_info info;
    socklen_t len = sizeof info;
    // On a unix socket TCP_INFO fails (EOPNOTSUPP): there is no such counter there.
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0) return -1;
    if (info.tcpi_state != TCP_LISTEN) return -1;
    if (backlog) *backlog = (int)info.tcpi_sacked;
    return (int)info.tcpi_unacked;
}

int hg_epoll_watch_once(int epfd, int fd, uint64_t data, int add) {
    // Level-triggered one-shot: a connection already waiting when re-armed reports at once, as it should.
    struct epoll_event event = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = data };
    return epoll_ctl(epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event);
}
