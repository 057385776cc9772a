import Glibc

/// The socket calls beyond read/send/accept: what the worker's connections and its `sd_notify`
/// datagrams need. Same rules as `Sys`: EINTR retried in `retryingInterrupts`, EBADF a bug.
extension Sys {
    /// The corresponding C function is `socket`; close-on-exec is the caller's to ask for in `type`.
    public static func socket(_ domain: Int32, _ type: Int32) -> Result<Int32, Errno> {
        retryingInterrupts("socket") { Glibc.socket(domain, type, 0) }
    }

    /// The corresponding C function is `sendto` with MSG_NOSIGNAL | MSG_DONTWAIT: one datagram to
    /// `address`, never blocking (a full receive queue is EAGAIN) and never raising SIGPIPE.
    public static func sendDatagram(_ fd: Int32, _ buffer: UnsafeRawBufferPointer,
                                    to address: UnsafePointer<sockaddr>, length: socklen_t) -> Result<Int, Errno> {
        retryingInterrupts("sendto fd \(fd)") {
            Glibc.sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), address, length)
        }
    }

    /// The corresponding C function is `poll` with a zero timeout: whether a listening socket has a
    /// connection waiting in its accept queue, without taking it.
    public static func hasPendingConnection(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard case .success(let ready) = retryingInterrupts("poll fd \(fd)", { Glibc.poll(&entry, 1, 0) }) else { return false }
        return ready > 0 && entry.revents & Int16(POLLIN) != 0
    }

    /// The corresponding C function is `poll` for POLLOUT: waits up to `milliseconds` for room to send.
    public static func waitWritable(_ fd: Int32, milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard case .success(let ready) = retryingInterrupts("poll fd \(fd)", { Glibc.poll(&entry, 1, milliseconds) }) else { return false }
        return ready > 0 && entry.revents & Int16(POLLOUT) != 0
    }

    /// The corresponding C function is `shutdown(fd, SHUT_WR)`: our FIN, while we keep reading.
    /// A peer already gone (ENOTCONN) is no error: there is nobody left to tell.
    public static func shutdownWrite(_ fd: Int32) {
        _ = retryingInterrupts("shutdown fd \(fd)") { Glibc.shutdown(fd, Int32(SHUT_WR)) }
    }

    /// The corresponding C function is `setsockopt(IPPROTO_TCP, TCP_NODELAY)`: responses go out in
    /// one write and must not wait for an ACK. Fails harmlessly (EOPNOTSUPP) on Unix sockets.
    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = retryingInterrupts("setsockopt(TCP_NODELAY) fd \(fd)") {
            setsockopt(fd, Int32(IPPROTO_TCP), 1 /* TCP_NODELAY */, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }
}
