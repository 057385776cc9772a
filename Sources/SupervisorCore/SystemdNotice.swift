/// One state change or report for systemd's notify socket (sd_notify(3)), as a value: the core says what,
/// `datagram` says how, in one place (the µs conversions included). A list of notices is one datagram.
public enum SystemdNotice: Equatable, Sendable {
    /// READY=1: started, or a reload finished.
    case ready
    /// RELOADING=1 with MONOTONIC_USEC= (systemd 253's Type=notify-reload wants both; 252 ignores them).
    case reloading(at: Instant)
    /// STOPPING=1: the drain began.
    case stopping
    /// EXTEND_TIMEOUT_USEC=: the current start, reload or stop needs this much more time.
    case extendTimeout(Duration)
    /// STATUS=: the one line `systemctl status` shows.
    case status(String)
    /// WATCHDOG=1.
    case watchdog
    /// MAINPID=: the service's main process, after an in-place upgrade (the same pid, now running the new program).
    case mainPID(Int32)

    /// The assignment, "KEY=VALUE" lines.
    public var assignment: String {
        switch self {
        case .ready: "READY=1"
        case .reloading(let at): "RELOADING=1\nMONOTONIC_USEC=\(Self.microseconds(at.nanoseconds))"
        case .stopping: "STOPPING=1"
        case .extendTimeout(let duration): "EXTEND_TIMEOUT_USEC=\(Self.microseconds(duration.nanoseconds))"
        case .status(let text): "STATUS=\(text)"
        case .watchdog: "WATCHDOG=1"
        case .mainPID(let pid): "MAINPID=\(pid)"
        }
    }

    /// Only reports how things are (STATUS=, WATCHDOG=1): a reader far behind can lose these, never a state change.
    public var isChatter: Bool {
        switch self {
        case .status, .watchdog: true
        case .ready, .reloading, .stopping, .extendTimeout, .mainPID: false
        }
    }

    /// The datagram for these notices, in order.
    public static func datagram(_ notices: [SystemdNotice]) -> String { notices.map(\.assignment).joined(separator: "\n") }

    private static func microseconds(_ nanoseconds: some BinaryInteger) -> String { String(max(0, nanoseconds / 1000)) }
}
