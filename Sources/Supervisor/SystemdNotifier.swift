import CSystemd
import Glibc

/// The supervisor's side of the notify protocol, upwards to systemd, through libsystemd.
/// Without NOTIFY_SOCKET every call is a no-op.
struct SystemdNotifier {
    let enabled: Bool
    /// WATCHDOG_USEC when systemd set it for this process.
    let watchdog: Duration?

    init() {
        enabled = getenv("NOTIFY_SOCKET") != nil
        var usec: UInt64 = 0
        watchdog = sd_watchdog_enabled(0, &usec) > 0 ? .microseconds(Int64(usec)) : nil
    }

    func send(_ assignments: String) {
        guard enabled else { return }
        _ = sd_notify(0, assignments)
    }
}
