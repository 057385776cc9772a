import CHyperglass

/// The `sd_notify` protocol towards whoever started us (the supervisor or systemd itself).
/// Every call is a no-op when `NOTIFY_SOCKET` is unset, so a worker run by hand needs no flag.
public struct Notifier: Sendable {
    /// The `NOTIFY_SOCKET` address (a path, or "@name" for the abstract namespace).
    public let address: String?

    /// A notifier for `NOTIFY_SOCKET` as found in the environment.
    public init() {
        self.init(address: Environment.get("NOTIFY_SOCKET"))
    }

    public init(address: String?) {
        self.address = address.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `READY=1`: we accept connections now.
    public func ready() { send("READY=1") }

    /// `STOPPING=1`: we are draining; the supervisor should not count us as serving.
    public func stopping() { send("STOPPING=1") }

    /// `WATCHDOG=1`: the event loop is alive.
    public func watchdog() { send("WATCHDOG=1") }

    /// `STATUS=…`: a line an operator reads in `hyperglassctl status` or `systemctl status`.
    public func status(_ text: String) { send("STATUS=" + text) }

    /// Sends raw assignments, one per line. Failures are ignored: a lost datagram must not stop serving.
    @discardableResult
    public func send(_ message: String) -> Bool {
        guard let address else { return false }
        var bytes = Array(message.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                hg_notify_send(address, chars.baseAddress, chars.count) == 0
            }
        }
    }
}
