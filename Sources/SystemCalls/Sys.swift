import CHyperglass
import Glibc

/// The one door to the kernel shared by the supervisor, hyperglassctl, the bundled worker and WorkerKit:
/// EINTR is retried in `retryingInterrupts` and nowhere else, a bad fd or buffer (EBADF, EFAULT) is our
/// bug and crashes, and what the peer or the environment can cause comes back as a value or a typed
/// error. Each wrapper names its C call. A call a program alone needs (the supervisor's /proc reads)
/// lives in that program as an `extension Sys`, built on `retryingInterrupts`/`check`.
public enum Sys {
    /// Runs `call` until it does not fail with EINTR; the result, or the errno of the failure.
    /// EBADF and EFAULT crash with `operation` in the message: a closed or foreign fd is a bookkeeping bug.
    @inlinable @inline(__always)
    public static func retryingInterrupts<T: BinaryInteger>(_ operation: @autoclosure () -> String, _ call: () -> T) -> Result<T, Errno> {
        while true {
            let result = call()
            if result >= 0 { return .success(result) }
            let error = Glibc.errno
            if error == EINTR { continue }
            precondition(error != EBADF && error != EFAULT, "\(operation()): bad file descriptor or buffer (errno \(error))")
            return .failure(Errno(error))
        }
    }

    /// Any call returning -1 and errno on failure, as a `SystemError` naming `operation`.
    @discardableResult
    public static func check(_ operation: @autoclosure () -> String, _ call: () -> Int32) throws(SystemError) -> Int32 {
        switch retryingInterrupts(operation(), call) {
        case .success(let value): return value
        case .failure(let error): throw SystemError(operation: operation(), errno: error.rawValue)
        }
    }

    /// What a non-blocking read or write did.
    public enum IO: Equatable {
        case bytes(Int)
        case wouldBlock
        /// read() returned 0: the peer will send nothing more.
        case endOfFile
        /// The connection is gone (reset, broken pipe): close it.
        case failed(Errno)
    }

    @usableFromInline
    static func io(_ result: Result<Int, Errno>) -> IO {
        switch result {
        case .success(0): return .endOfFile
        case .success(let n): return .bytes(n)
        case .failure(let error) where error.rawValue == EAGAIN || error.rawValue == EWOULDBLOCK: return .wouldBlock
        case .failure(let error): return .failed(error)
        }
    }

    /// The corresponding C function is `read`. Inlinable, like `send`, because the worker calls both
    /// once per request: across the module boundary they cost it 0.7% more instructions per request.
    @inlinable
    public static func read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> IO {
        io(retryingInterrupts("read fd \(fd)") { Glibc.read(fd, buffer.baseAddress, buffer.count) })
    }

    /// The corresponding C function is `send` with MSG_NOSIGNAL | MSG_DONTWAIT: a vanished peer is EPIPE,
    /// not a signal, and a full socket is `.wouldBlock` even on a blocking fd. A zero-byte send is `.bytes(0)`.
    @inlinable
    public static func send(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> IO {
        if buffer.isEmpty { return .bytes(0) }
        return io(retryingInterrupts("send fd \(fd)") { Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) })
    }

    /// The corresponding C function is `recv` (blocking, bounded by the socket's SO_RCVTIMEO).
    public static func receive(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> IO {
        io(retryingInterrupts("recv fd \(fd)") { Glibc.recv(fd, buffer.baseAddress, buffer.count, 0) })
    }

    /// The corresponding C function is `accept4` (non-blocking, close-on-exec).
    public static func accept(_ fd: Int32) -> Result<Int32, Errno> {
        retryingInterrupts("accept4 fd \(fd)") { hg_accept(fd) }
    }

    /// The corresponding C function is `close`. EINTR is not retried: on Linux the fd is gone anyway.
    public static func close(_ fd: Int32) {
        if Glibc.close(fd) < 0 { precondition(errno != EBADF, "closed fd \(fd) twice: a bookkeeping bug") }
    }

    /// The corresponding C function is `write(2, ...)`: a whole line to stderr, short writes continued.
    public static func writeStandardError(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let result = bytes.withUnsafeBytes { raw in retryingInterrupts("write stderr") { Glibc.write(2, raw.baseAddress, raw.count) } }
            guard case .success(let n) = result, n > 0 else { return }  // stderr gone: nowhere left to complain
            bytes = bytes.dropFirst(n)
        }
    }

    /// The corresponding C function is `waitpid(pid, &status, 0)`: blocks until our child `pid` has
    /// exited and reaps it; its raw status, or nil when it is not our child.
    public static func waitForExit(_ pid: Int32) -> Int32? {
        var status: Int32 = 0
        switch retryingInterrupts("waitpid \(pid)", { waitpid(pid, &status, 0) }) {
        case .success: return status
        case .failure: return nil
        }
    }
}

/// The epoll calls, named as the kernel names them. Every result is checked: epoll_ctl only fails on
/// our bugs (a closed fd, a double add) or on ENOMEM/ENOSPC, which `add` reports.
public enum Epoll {
    /// EPOLLEXCLUSIVE (Linux 4.5): wake one waiter per connection, not every worker sharing the socket.
    public static let exclusive: UInt32 = 1 << 28

    /// The corresponding C function is `epoll_ctl(EPOLL_CTL_ADD)`.
    public static func add(_ epfd: Int32, _ fd: Int32, _ events: UInt32, _ data: UInt64) throws(SystemError) {
        try Sys.check("epoll_ctl(ADD, fd \(fd))") { hg_epoll_add(epfd, fd, events, data) }
    }

    /// The corresponding C function is `epoll_ctl(EPOLL_CTL_MOD)`; the fd must be registered.
    public static func modify(_ epfd: Int32, _ fd: Int32, _ events: UInt32, _ data: UInt64) {
        let result = Sys.retryingInterrupts("epoll_ctl(MOD, fd \(fd))") { hg_epoll_mod(epfd, fd, events, data) }
        if case .failure(let error) = result { preconditionFailure("epoll_ctl(MOD, fd \(fd)) failed: \(error): a bookkeeping bug") }
    }

    /// The corresponding C function is `epoll_ctl(EPOLL_CTL_DEL)`. An fd not registered (ENOENT) is
    /// no error: removing twice leaves the set as removing once does.
    public static func remove(_ epfd: Int32, _ fd: Int32) {
        _ = Sys.retryingInterrupts("epoll_ctl(DEL, fd \(fd))") { hg_epoll_del(epfd, fd) }
    }

    /// The corresponding C function is `epoll_wait`; an interrupted wait returns no events.
    public static func wait(_ epfd: Int32, _ events: inout [hg_event], timeoutMilliseconds: Int32) -> Int {
        events.withUnsafeMutableBufferPointer { wait(epfd, $0, timeoutMilliseconds: timeoutMilliseconds) }
    }

    /// The corresponding C function is `epoll_wait`, into a buffer the caller allocated once: a loop
    /// that wakes per request (the worker's) then pays no exclusivity check on a stored array per wake
    /// and per event (3.4% more instructions per keep-alive request with the array).
    public static func wait(_ epfd: Int32, _ events: UnsafeMutableBufferPointer<hg_event>, timeoutMilliseconds: Int32) -> Int {
        let n = hg_epoll_wait(epfd, events.baseAddress, Int32(events.count), timeoutMilliseconds)
        if n >= 0 { return Int(n) }
        precondition(errno == EINTR, "epoll_wait failed: \(Errno.current)")
        return 0
    }
}
