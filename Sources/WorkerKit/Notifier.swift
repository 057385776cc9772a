import Glibc
import SystemCalls

/// The `sd_notify` protocol towards whoever started us (the supervisor or systemd itself).
/// Every call is a no-op when `NOTIFY_SOCKET` is unset, so a worker run by hand needs no flag.
///
/// A send never blocks. A datagram to a Unix socket whose receive queue is full (the supervisor is
/// stopped by SIGSTOP, a debugger or a swap storm; `net.unix.max_dgram_qlen` is 10 by default)
/// would otherwise put the whole event loop to sleep in the kernel, so every request would wait
/// for the supervisor. The socket is non-blocking and each send says `MSG_DONTWAIT`; a full queue
/// comes back as `.wouldBlock` and the caller decides: a `WATCHDOG=1` can be dropped (the next one
/// is due in half the interval), a state change (`READY=1`, `STOPPING=1`) is kept and retried
/// (see `Announcements` in the bundled worker).
public final class Notifier: Sendable {
    /// What became of one notification.
    public enum Delivery: Equatable, Sendable {
        /// The kernel queued the datagram.
        case sent
        /// `NOTIFY_SOCKET` is unset: nobody listens.
        case disabled
        /// The receiver's queue is full (EAGAIN): try again later, or drop it.
        case wouldBlock
        /// Any other error (no such socket, refused, address malformed): the receiver is gone.
        case failed(Int32)
    }

    /// The `NOTIFY_SOCKET` address (a path, or "@name" for the abstract namespace).
    public let address: String?
    /// One socket for the notifier's life, opened up front: at EMFILE (a flood of connections) the
    /// watchdog must still get out. -1 when it could not be opened; then each send opens its own.
    private let fd: Int32

    /// A notifier for `NOTIFY_SOCKET` as found in the environment.
    public convenience init() {
        self.init(address: Environment.get("NOTIFY_SOCKET"))
    }

    public init(address: String?) {
        let address = address.flatMap { $0.isEmpty ? nil : $0 }
        self.address = address
        fd = address == nil ? -1 : ((try? Notifier.openSocket().get()) ?? -1)
    }

    /// A class so that its socket is closed with it: a notifier made per message must not leak fds.
    deinit {
        if fd >= 0 { Sys.close(fd) }
    }

    /// `READY=1`: we accept connections now.
    @discardableResult
    public func ready() -> Delivery { send("READY=1") }

    /// `STOPPING=1`: we are draining; the supervisor should not count us as serving.
    @discardableResult
    public func stopping() -> Delivery { send("STOPPING=1") }

    /// `WATCHDOG=1`: the event loop is alive. Dropping one when the queue is full is harmless.
    @discardableResult
    public func watchdog() -> Delivery { send("WATCHDOG=1") }

    /// `STATUS=…`: a line an operator reads in `hyperglassctl status` or `systemctl status`.
    @discardableResult
    public func status(_ text: String) -> Delivery { send("STATUS=" + text) }

    /// Sends raw assignments, one per line, as one datagram, without ever blocking.
    @discardableResult
    public func send(_ message: String) -> Delivery {
        guard let address else { return .disabled }
        guard var target = Notifier.socketAddress(address) else { return .failed(EINVAL) }
        let socket: Int32
        if fd >= 0 {
            socket = fd
        } else {
            switch Notifier.openSocket() {
            case .success(let opened): socket = opened
            case .failure(let error): return .failed(error.rawValue)
            }
        }
        defer { if socket != fd { Sys.close(socket) } }
        let bytes = Array(message.utf8)
        let length = socklen_t(MemoryLayout<sa_family_t>.size + Notifier.pathLength(address))
        let result = withUnsafePointer(to: &target) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                bytes.withUnsafeBytes { raw in Sys.sendDatagram(socket, raw, to: sockaddrPointer, length: length) }
            }
        }
        switch result {
        case .success: return .sent
        // A full queue, or the kernel short of buffers for a moment: worth another try later.
        case .failure(let error) where [EAGAIN, EWOULDBLOCK, ENOBUFS, ENOMEM].contains(error.rawValue): return .wouldBlock
        case .failure(let error): return .failed(error.rawValue)
        }
    }

    private static func openSocket() -> Result<Int32, Errno> {
        Sys.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
    }

    /// The bytes of `sun_path` used: a path and its NUL, or "@name" as a leading NUL and the name.
    private static func pathLength(_ address: String) -> Int {
        address.hasPrefix("@") ? address.utf8.count : address.utf8.count + 1
    }

    /// `sockaddr_un` for a path or an abstract "@name"; nil when it does not fit.
    static func socketAddress(_ address: String) -> sockaddr_un? {
        var result = sockaddr_un()
        result.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(address.utf8)
        let capacity = MemoryLayout.size(ofValue: result.sun_path)
        guard !bytes.isEmpty, pathLength(address) <= capacity else { return nil }
        withUnsafeMutableBytes(of: &result.sun_path) { path in
            for (index, byte) in bytes.enumerated() { path[index] = byte }
            if bytes[0] == UInt8(ascii: "@") { path[0] = 0 }
        }
        return result
    }
}
