// The kernel's view of the listening sockets, for autoscaling (see load.h).
#define _GNU_SOURCE
#include "load.h"
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/// A unix listener's pending connections, from sock_diag (what `ss -xl` shows as Recv-Q): unix
/// sockets have no TCP_INFO, and /proc/net/unix shows no queue. -1 when the kernel lacks unix_diag.
static int unix_listen_queue(int fd, int *backlog) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -1;
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) return -1;
    struct { struct nlmsghdr nlh; struct unix_diag_req req; } msg;
    memset(&msg, 0, sizeof msg);
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = AF_UNIX;
    msg.req.udiag_states = 1 << TCP_LISTEN;
    msg.req.udiag_ino = (unsigned)st.st_ino;
    msg.req.udiag_show = UDIAG_SHOW_RQLEN;
    msg.req.udiag_cookie[0] = INET_DIAG_NOCOOKIE;
    msg.req.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    long answer[256];
    ssize_t n = -1;
    if (sendto(nl, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel) == (ssize_t)sizeof msg) {
        n = recv(nl, answer, sizeof answer, 0);
    }
    close(nl);
    if (n < 0) return -1;
    struct nlmsghdr *h = (struct nlmsghdr *)answer;
    if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY) return -1;
    struct unix_diag_msg *m = NLMSG_DATA(h);
    int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof *m);
    for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == UNIX_DIAG_RQLEN) {
            // For a listener: pending connections, and the backlog.
            struct unix_diag_rqlen *rq = RTA_DATA(a);
            if (backlog) *backlog = (int)rq->udiag_wqueue;
            return (int)rq->udiag_rqueue;
        }
    }
    return -1;
}

int hg_listen_queue(int fd, int *backlog) {
    struct tcp_info info;
    socklen_t len = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0) {
        // Not TCP (EOPNOTSUPP on a unix socket): ask sock_diag instead.
        return unix_listen_queue(fd, backlog);
    }
    if (info.tcpi_state != TCP_LISTEN) return -1;
    if (backlog) *backlog = (int)info.tcpi_sacked;
    return (int)info.tcpi_unacked;
}

int hg_epoll_watch_once(int epfd, int fd, uint64_t data, int add) {
    // Level-triggered one-shot: a connection already waiting when re-armed reports at once, as it should.
    struct epoll_event event = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = data };
    return epoll_ctl(epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event);
}
