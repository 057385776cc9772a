import CHyperglass
import CSystemd
import Glibc
import SupervisorCore
import SystemCalls

/// The supervisor's side of the notify protocol, upwards to systemd. Without NOTIFY_SOCKET every call
/// is a no-op.
///
/// It never blocks: libsystemd's `sd_notify` sends with a blocking `sendmsg`, so a systemd that reads
/// slowly (busy with a daemon-reload, or a stopped reader) filled the socket's queue and froze the whole
/// loop with it: no reaping, no watchdogs, no control answers (Tests/Chaos/slow_systemd.py). Here a
/// message that does not fit waits, in order, and the loop watches `fd` for EPOLLOUT while `hasPending`.
final class SystemdNotifier {
    /// WATCHDOG_USEC when systemd set it for this process.
    let watchdog: Duration?
    private let address: String?
    /// Connected lazily; -1 until the first message, or after systemd's socket went away.
    private(set) var fd: Int32 = -1
    /// Counts connections, so the loop can tell a new socket that reused the old one's number.
    private(set) var connection = 0
    private var pending: [[SystemdNotice]] = []
    /// Beyond this many waiting messages the oldest one that only reports (STATUS=, WATCHDOG=1) is dropped:
    /// a reader that far behind needs the state changes (READY=1, RELOADING=1, STOPPING=1), not the chatter.
    static let pendingLimit = 64

    init() {
        address = getenv("NOTIFY_SOCKET").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        var usec: UInt64 = 0
        watchdog = sd_watchdog_enabled(0, &usec) > 0 ? .microseconds(Int64(usec)) : nil
    }

    var hasPending: Bool { !pending.isEmpty }

    /// Sends these notices as one datagram (`SystemdNotice.datagram`), now or once systemd has room.
    func send(_ notices: [SystemdNotice]) {
        guard address != nil else { return }
        pending.append(notices)
        if pending.count > SystemdNotifier.pendingLimit {
            let chatter = pending.firstIndex { $0.allSatisfy(\.isChatter) }
            pending.remove(at: chatter ?? 0)
        }
        flush()
    }

    /// Sends what waits, oldest first, until systemd's queue is full again.
    func flush() {
        while let message = pending.first {
            if transmit(SystemdNotice.datagram(message)) == .wouldBlock { return }
            pending.removeFirst()
        }
    }

    /// One datagram; `.wouldBlock` keeps it for later, anything else is done with it (sent, or lost
    /// because there is no systemd to hear it: reported once per connection attempt, never retried forever).
    private func transmit(_ message: String) -> Sys.IO {
        for attempt in 0..<2 {
            if fd < 0, let address {
                fd = hg_connect_unix_datagram(address)
                if fd < 0 { return .failed(Errno.current) }
                connection += 1
            }
            let result = message.utf8CString.withUnsafeBytes { bytes in
                Sys.send(fd, UnsafeRawBufferPointer(rebasing: bytes.dropLast()))
            }
            // systemd re-executed (daemon-reexec): the socket we were connected to is gone; reconnect once.
            if case .failed(let error) = result, attempt == 0,
               error.rawValue == ECONNREFUSED || error.rawValue == ENOTCONN || error.rawValue == ECONNRESET {
                Sys.close(fd)
                fd = -1
                continue
            }
            return result
        }
        return .failed(Errno(ECONNREFUSED))
    }
}
