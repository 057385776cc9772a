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
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/// A unix listener's pending connections, from sock_diag (what `ss -xl` shows as Recv-Q): unix
/// sockets have no TCP_INFO, and /proc/net/unix shows no queue. -1 when the kernel lacks unix_diag.
/// Asks sock_diag about the unix listener `fd` (by its inode), showing `show`; the netlink socket to read
/// the answer from, or -1 (a kernel without unix_diag).
static int unix_diag_ask(int fd, unsigned show) {
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
    msg.req.udiag_show = show;
    msg.req.udiag_cookie[0] = INET_DIAG_NOCOOKIE;
    msg.req.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(nl, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel) != (ssize_t)sizeof msg) {
        close(nl);
        return -1;
    }
    return nl;
}

static int unix_listen_queue(int fd, int *backlog) {
    int nl = unix_diag_ask(fd, UDIAG_SHOW_RQLEN);
    if (nl < 0) return -1;
    long answer[256];
    ssize_t n = recv(nl, answer, sizeof answer, 0);
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

int hg_unix_queued(int fd, uint64_t *ids, int capacity) {
    int nl = unix_diag_ask(fd, UDIAG_SHOW_ICONS);
    if (nl < 0) return -1;
    int count = -1;
    // Four bytes per queued connection: the answer's size, peeked first, sizes the buffer.
    ssize_t size = recv(nl, NULL, 0, MSG_PEEK | MSG_TRUNC);
    if (size <= 0) goto done;
    long *answer = malloc((size_t)size + sizeof(long));
    if (!answer) goto done;
    ssize_t n = recv(nl, answer, (size_t)size, 0);
    struct nlmsghdr *h = (struct nlmsghdr *)answer;
    if (n > 0 && NLMSG_OK(h, (size_t)n) && h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
        struct unix_diag_msg *m = NLMSG_DATA(h);
        int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof *m);
        for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
            if (a->rta_type != UNIX_DIAG_ICONS) continue;
            const uint32_t *peers = RTA_DATA(a);
            count = (int)(RTA_PAYLOAD(a) / sizeof *peers);
            for (int i = 0; i < count && i < capacity; i++) ids[i] = peers[i];
            break;
        }
        // A listener with nothing queued may carry no ICONS attribute at all.
        if (count < 0) count = 0;
    }
    free(answer);
done:
    close(nl);
    return count;
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

/// Whether a queued socket's local address is the listener's: a wildcard listener takes every address.
static int same_local(const struct sockaddr_storage *bound, const struct inet_diag_msg *m) {
    if (bound->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)bound;
        return in->sin_addr.s_addr == htonl(INADDR_ANY) || memcmp(&in->sin_addr, m->id.idiag_src, 4) == 0;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)bound;
    return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) || memcmp(&in6->sin6_addr, m->id.idiag_src, 16) == 0;
}

/// States a connection reaches only after a process accepted it (and, but for ESTABLISHED and CLOSE_WAIT
/// with an inode, closed it): none of them waits in an accept queue.
static int taken_state(int state) {
    return state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 || state == TCP_TIME_WAIT || state == TCP_LAST_ACK || state == TCP_CLOSING;
}

static int by_age(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

long hg_listen_oldest_wait_ms(int fd, int waiting, uint64_t *taken, int capacity, int *taken_count) {
    *taken_count = -1;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0) return -2;
    if (bound.ss_family != AF_INET && bound.ss_family != AF_INET6) return -2;
    uint16_t port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                     : ((struct sockaddr_in6 *)&bound)->sin6_port);
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) return -2;
    // The kernel filters by local port (INET_DIAG_BC_S_EQ): true jumps to the end (keep), false past it (drop).
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
        struct rtattr bytecode;
        struct inet_diag_bc_op ops[2];
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = (uint8_t)bound.ss_family;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    // A client that gave up while queued leaves its connection in CLOSE_WAIT, still in the queue. The states
    // after a process's close are there for the connections taken: one taken since the last look, even one
    // served and closed by its worker since (TIME_WAIT lasts a minute), shows the workers take connections.
    // Those states cost (a busy port holds thousands in TIME_WAIT): only asked for when `taken` is given.
    msg.req.idiag_states = (1u << TCP_ESTABLISHED) | (1u << TCP_CLOSE_WAIT);
    if (taken) msg.req.idiag_states |= (1u << TCP_FIN_WAIT1) | (1u << TCP_FIN_WAIT2) | (1u << TCP_TIME_WAIT) | (1u << TCP_LAST_ACK) | (1u << TCP_CLOSING);
    msg.req.idiag_ext = 1u << (INET_DIAG_INFO - 1);
    msg.bytecode.rta_type = INET_DIAG_REQ_BYTECODE;
    msg.bytecode.rta_len = RTA_LENGTH(sizeof msg.ops);
    msg.ops[0] = (struct inet_diag_bc_op){ .code = INET_DIAG_BC_S_EQ, .yes = sizeof msg.ops, .no = sizeof msg.ops + 4 };
    msg.ops[1] = (struct inet_diag_bc_op){ .no = port };
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(nl, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel) != (ssize_t)sizeof msg) {
        close(nl);
        return -2;
    }
    long oldest = -1;
    int found = 0, done = 0, failed = 0;
    // Every queued connection's age: more of them than `waiting` means another listener's queue on this
    // address and port (SO_REUSEPORT), which the dump cannot tell from ours.
    long *ages = NULL;
    int aged = 0, room = 0;
    long answer[4096];
    // Bounded: a dump of more sockets than this many reads is cut short (each read holds dozens).
    for (int reads = 0; reads < 4096 && !done && !failed; reads++) {
        ssize_t n = recv(nl, answer, sizeof answer, 0);
        if (n <= 0) break;
        for (struct nlmsghdr *h = (struct nlmsghdr *)answer; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) { done = 1; break; }
            if (h->nlmsg_type == NLMSG_ERROR) { failed = 1; break; }
            struct inet_diag_msg *m = NLMSG_DATA(h);
            if (ntohs(m->id.idiag_sport) != port || !same_local(&bound, m)) continue;
            int queued = (m->idiag_state == TCP_ESTABLISHED || m->idiag_state == TCP_CLOSE_WAIT) && m->idiag_inode == 0;
            if (!queued) {
                if (m->idiag_inode != 0 || taken_state(m->idiag_state)) {
                    if (taken && found < capacity) taken[found] = (uint64_t)m->id.idiag_cookie[0] | (uint64_t)m->id.idiag_cookie[1] << 32;
                    found++;
                }
                continue;
            }
            int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof *m);
            for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
                if (a->rta_type != INET_DIAG_INFO || RTA_PAYLOAD(a) < offsetof(struct tcp_info, tcpi_rcv_ssthresh)) continue;
                struct tcp_info *info = RTA_DATA(a);
                long quiet = info->tcpi_last_data_recv < info->tcpi_last_ack_recv ? info->tcpi_last_data_recv : info->tcpi_last_ack_recv;
                if (quiet > oldest) oldest = quiet;
                if (aged == room) {
                    int larger = room ? room * 2 : 256;
                    long *more = realloc(ages, (size_t)larger * sizeof *ages);
                    if (!more) { failed = 1; break; }
                    ages = more;
                    room = larger;
                }
                ages[aged++] = quiet;
            }
        }
    }
    close(nl);
    // Ours are `waiting` of the connections found: the oldest of ours is at least the waiting-th youngest.
    // The fewer of the lengths before and after the dump: one accepted meanwhile must not count.
    int after = hg_listen_queue(fd, NULL);
    if (after >= 0 && after < waiting) waiting = after;
    if (after == 0) oldest = -1;  // emptied meanwhile: none of ours waits any more
    if (!failed && waiting > 0 && aged > waiting) {
        qsort(ages, (size_t)aged, sizeof *ages, by_age);
        oldest = ages[waiting - 1];
    }
    free(ages);
    if (failed) return -2;
    if (done) { *taken_count = taken ? found : -1; return oldest; }
    // Cut short: the ages seen stand (a lower bound); the connections taken are not all known.
    return oldest >= 0 ? oldest : -2;
}

int hg_epoll_watch_once(int epfd, int fd, uint64_t data, int add) {
    // Level-triggered one-shot: a connection already waiting when re-armed reports at once, as it should.
    struct epoll_event event = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = data };
    return epoll_ctl(epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event);
}
