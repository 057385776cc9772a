// Socket set-up the Swift side would otherwise do with sockaddr casts.
#define _GNU_SOURCE
#include "chyperglass.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int hg_listen_tcp(const char *host, int port, int backlog, int *fds, int max, int *gai_error) {
    // "localhost" is loopback by definition (RFC 6761), even on a system without /etc/hosts:
    // both loopback families, whichever of them the machine has.
    if (host && strcmp(host, "localhost") == 0) {
        // A family the machine lacks is skipped; any other failure (the port is taken) fails the whole bind.
        int v4 = hg_listen_tcp("127.0.0.1", port, backlog, fds, max, gai_error);
        if (v4 < 0 && *gai_error == 0 && errno != EADDRNOTAVAIL && errno != EAFNOSUPPORT) return -1;
        int saved = errno, saved_gai = *gai_error;
        int have = v4 > 0 ? v4 : 0;
        int v6 = hg_listen_tcp("::1", port, backlog, fds + have, max - have, gai_error);
        if (v6 < 0 && *gai_error == 0 && errno != EADDRNOTAVAIL && errno != EAFNOSUPPORT) {
            int err = errno;
            for (int i = 0; i < have; i++) close(fds[i]);
            errno = err;
            return -1;
        }
        if (v4 < 0 && v6 < 0) { errno = saved; *gai_error = saved_gai; return -1; }
        *gai_error = 0;
        return have + (v6 > 0 ? v6 : 0);
    }
    struct addrinfo hints, *list, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_ADDRCONFIG;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    *gai_error = getaddrinfo(host, service, &hints, &list);
    if (*gai_error != 0) {
        // AI_ADDRCONFIG ignores loopback-only machines; ask again without it.
        hints.ai_flags = AI_PASSIVE;
        *gai_error = getaddrinfo(host, service, &hints, &list);
        if (*gai_error != 0) return -1;
    }
    int count = 0;
    for (ai = list; ai && count < max; ai = ai->ai_next) {
        // /etc/hosts may list one address twice ("localhost" on two lines); bind each once.
        int duplicate = 0;
        for (struct addrinfo *seen = list; seen != ai; seen = seen->ai_next)
            if (seen->ai_addrlen == ai->ai_addrlen && memcmp(seen->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0) duplicate = 1;
        if (duplicate) continue;
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        // Accepted connections inherit it: a worker that never sets it (uvicorn --fd) still answers
        // kept-alive requests without Nagle's 40 ms wait.
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
            int saved = errno;
            close(fd);
            for (int i = 0; i < count; i++) close(fds[i]);
            freeaddrinfo(list);
            errno = saved;
            *gai_error = 0;
            return -1;
        }
        fds[count++] = fd;
    }
    freeaddrinfo(list);
    return count;
}

const char *hg_gai_strerror(int code) { return gai_strerror(code); }

static socklen_t unix_address(const char *path, struct sockaddr_un *addr) {
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len >= sizeof addr->sun_path) { errno = ENAMETOOLONG; return 0; }
    memcpy(addr->sun_path, path, len);
    if (path[0] == '@') addr->sun_path[0] = '\0';  // the abstract namespace
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '@' ? 0 : 1));
}

int hg_listen_unix(const char *path, int backlog) {
    struct sockaddr_un addr;
    socklen_t len = unix_address(path, &addr);
    if (len == 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&addr, len) < 0 || listen(fd, backlog) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int hg_bind_unix(const char *path, int type, unsigned mode, int backlog) {
    struct sockaddr_un addr;
    socklen_t len = unix_address(path, &addr);
    if (len == 0) return -1;
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    // The file bind() creates takes the socket inode's mode (less the umask): set it first, so the
    // file is born with it and no chmod of a path (which could be swapped for a symlink) follows.
    if (fchmod(fd, (mode_t)mode) < 0 ||
        (type == SOCK_DGRAM && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)) goto fail;
    mode_t previous = umask(0);
    int bound = bind(fd, (struct sockaddr *)&addr, len);
    umask(previous);
    if (bound < 0 || (type == SOCK_STREAM && listen(fd, backlog) < 0)) goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

// A Unix socket of `type` connected to `path`; a non-blocking stream connect may still be in progress.
static int connect_unix(const char *path, int type) {
    struct sockaddr_un addr;
    socklen_t len = unix_address(path, &addr);
    if (len == 0) return -1;
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int rc;
    do { rc = connect(fd, (struct sockaddr *)&addr, len); } while (rc < 0 && errno == EINTR);
    if (rc < 0 && !(errno == EINPROGRESS && (type & SOCK_NONBLOCK))) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int hg_connect_unix_nonblocking(const char *path) { return connect_unix(path, SOCK_STREAM | SOCK_NONBLOCK); }

int hg_connect_unix(const char *path) { return connect_unix(path, SOCK_STREAM); }

// Connected, so that epoll reports EPOLLOUT only once the receiver's queue has room again
// (an unconnected datagram socket is always "writable").
int hg_connect_unix_datagram(const char *path) { return connect_unix(path, SOCK_DGRAM | SOCK_NONBLOCK); }

int hg_unix_socket_alive(const char *path) {
    int fd = hg_connect_unix(path);
    if (fd < 0) return 0;
    close(fd);
    return 1;
}

int hg_accept(int fd) {
    int client;
    do { client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); } while (client < 0 && errno == EINTR);
    return client;
}

int hg_sockname(int fd, char *buf, int len) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) return -1;
    char host[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(buf, (size_t)len, "%s:%d", host, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, (size_t)len, "[%s]:%d", host, ntohs(in6->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        if (sl <= offsetof(struct sockaddr_un, sun_path)) snprintf(buf, (size_t)len, "unix:(unnamed)");
        else if (un->sun_path[0] == '\0') snprintf(buf, (size_t)len, "unix:@%.*s",
            (int)(sl - offsetof(struct sockaddr_un, sun_path) - 1), un->sun_path + 1);
        else snprintf(buf, (size_t)len, "unix:%s", un->sun_path);
    } else {
        snprintf(buf, (size_t)len, "family %d", ss.ss_family);
    }
    return 0;
}

int hg_socket_type(int fd) {
    int type;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) return -1;
    return type;
}

int hg_peercred(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -1;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int hg_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int hg_set_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

ssize_t hg_notify_recv(int fd, char *buf, size_t len, int32_t *pid) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union { struct cmsghdr align; char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)]; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                          .msg_controllen = sizeof control.space };
    ssize_t n;
    do { n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC); } while (n < 0 && errno == EINTR);
    if (n < 0) return (errno == EAGAIN) ? 0 : -1;
    *pid = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof cred);
            *pid = cred.pid;
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            // Workers have no business passing fds (FDSTORE is not supported): close them.
            int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < count; i++) {
                int passed;
                memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
                close(passed);
            }
        }
    }
    if ((size_t)n > len) n = (ssize_t)len;  // truncated: the caller sees the first len bytes
    return n == 0 ? 0 : n;
}
