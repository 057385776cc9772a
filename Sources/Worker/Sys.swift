import CHyperglass
import Glibc

/// The one door to the kernel for connection I/O: EINTR is retried here and nowhere else, a bad fd
/// (our bug) crashes, and what the peer or the environment can cause comes back as a value.
enum Sys {
    enum IO: Equatable {
        case bytes(Int)
        case wouldBlock
        /// read() returned 0: the peer will send nothing more.
        case endOfFile
        /// The connection is gone (reset, broken pipe, timed out): close it.
        case failed(Int32)
    }

    /// The corresponding C function is `read`.
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> IO {
        while true {
            let n = Glibc.read(fd, buffer, count)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return checked(errno)
            }
        }
    }

    /// The corresponding C function is `send` with MSG_NOSIGNAL (a vanished peer is EPIPE, not a signal).
    static func write(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> IO {
        while true {
            let n = Glibc.send(fd, buffer, count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return .bytes(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return checked(errno)
            }
        }
    }

    /// The corresponding C function is `close`. EINTR is not retried: on Linux the fd is gone anyway.
    static func close(_ fd: Int32) {
        if Glibc.close(fd) < 0 { precondition(errno != EBADF, "closed fd \(fd) twice: a bookkeeping bug") }
    }

    /// The corresponding C function is `shutdown(fd, SHUT_WR)`: our FIN, while we keep reading.
    static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Disables Nagle on TCP sockets: responses go out in one write and must not wait for an ACK.
    /// Fails harmlessly (ENOTSUP/EOPNOTSUPP) on Unix sockets.
    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), 1 /* TCP_NODELAY */, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    private static func checked(_ code: Int32) -> IO {
        precondition(code != EBADF && code != EFAULT, "I/O on a bad fd or buffer (errno \(code)): a bookkeeping bug")
        return .failed(code)
    }
}

/// The epoll calls, named as the kernel names them.
enum Epoll {
    /// EPOLLEXCLUSIVE (Linux 4.5): wake one waiter per connection, not every worker sharing the socket.
    static let exclusive: UInt32 = 1 << 28

    static func add(_ epfd: Int32, _ fd: Int32, _ events: UInt32, _ data: UInt64) {
        precondition(hg_epoll_add(epfd, fd, events, data) == 0, "epoll_ctl(ADD, \(fd)) failed: errno \(errno)")
    }

    static func modify(_ epfd: Int32, _ fd: Int32, _ events: UInt32, _ data: UInt64) {
        precondition(hg_epoll_mod(epfd, fd, events, data) == 0, "epoll_ctl(MOD, \(fd)) failed: errno \(errno)")
    }

    static func remove(_ epfd: Int32, _ fd: Int32) {
        _ = hg_epoll_del(epfd, fd)
    }
}
