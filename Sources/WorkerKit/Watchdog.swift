import Glibc

/// The per-worker watchdog, as systemd defines it for services: `WATCHDOG_USEC` says how long the
/// supervisor waits for a `WATCHDOG=1`; sending at half that leaves room for one late wake-up.
public enum Watchdog {
    /// How often to send `WATCHDOG=1`, in nanoseconds, or nil when no watchdog is asked of us.
    public static func interval() -> UInt64? {
        interval(usec: Environment.get("WATCHDOG_USEC"), pid: Environment.get("WATCHDOG_PID"), ownPID: getpid())
    }

    /// The pure reading: a `WATCHDOG_PID` naming another process means the variable is not for us.
    static func interval(usec: String?, pid: String?, ownPID: Int32) -> UInt64? {
        guard let usec, let micros = UInt64(usec), micros > 0 else { return nil }
        if let pid, !pid.isEmpty {
            guard let value = Int32(pid), value == ownPID else { return nil }
        }
        return max(micros / 2, 1) * 1_000
    }
}
