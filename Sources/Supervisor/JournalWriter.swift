import CHyperglass
import Glibc
import SupervisorCore

/// Entries in the journal through its native protocol, spoken here rather than through libsystemd's
/// `sd_journal_sendv` (linking libsystemd mapped it and its chain, libgcrypt, zstd, lzma, lz4, libcap:
/// 0.9 MiB of the supervisor's resident memory, for one datagram per entry). The protocol
/// (systemd's JOURNAL_NATIVE_PROTOCOL) is one datagram to /run/systemd/journal/socket per entry, each field
/// `NAME=value\n`, or `NAME\n`, the value's length as 64-bit little endian, the value and `\n` when the
/// value holds a newline. Pool events carry `EVENT=`, `WORKER_ID=`, `WORKER_PID=`, `GENERATION=`,
/// `REASON=`..., so `journalctl -u hyperglass WORKER_ID=3` and `journalctl -u hyperglass EVENT=exited` find
/// them. Used only when stderr is the journal (`Log`); every supervisor line goes this one way then, so
/// plain lines and events keep their order (two transports, the stream and the socket, interleaved them).
final class JournalWriter {
    /// The same identifier journald gives our stderr stream, so `journalctl -t hyperglass` shows both.
    static let identifier = "hyperglass"
    static let socketPath = "/run/systemd/journal/socket"
    /// How long an entry may wait for room in journald's queue before it goes to stderr instead.
    static let waitForRoomMilliseconds: Int32 = 1000

    /// Connected on first use; -1 before, and after journald went away (the next entry reconnects).
    private var fd: Int32 = -1

    /// The entry's fields, in order: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, then the event's own.
    static func fields(_ level: LogLevel, _ message: String, _ extra: [(name: String, value: String)]) -> [(name: String, value: String)] {
        [("MESSAGE", message), ("PRIORITY", String(level.rawValue)), ("SYSLOG_IDENTIFIER", identifier)] + extra
    }

    /// One entry as the native protocol's datagram.
    static func datagram(_ fields: [(name: String, value: String)]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (name, value) in fields {
            bytes += name.utf8
            if value.utf8.contains(UInt8(ascii: "\n")) {
                bytes.append(UInt8(ascii: "\n"))
                withUnsafeBytes(of: UInt64(value.utf8.count).littleEndian) { bytes += $0 }
            } else {
                bytes.append(UInt8(ascii: "="))
            }
            bytes += value.utf8
            bytes.append(UInt8(ascii: "\n"))
        }
        return bytes
    }

    /// Sends one entry; false when journald did not take it (the caller falls back to a stderr line).
    /// It waits for room in journald's queue up to `waitForRoomMilliseconds` (libsystemd waited forever).
    func send(_ level: LogLevel, _ message: String, fields extra: [(name: String, value: String)] = []) -> Bool {
        let bytes = JournalWriter.datagram(JournalWriter.fields(level, message, extra))
        for attempt in 0..<2 {
            if fd < 0 {
                fd = hg_connect_unix_datagram(JournalWriter.socketPath)
                if fd < 0 { return false }
            }
            var result = bytes.withUnsafeBytes { Sys.send(fd, $0) }
            if result == .wouldBlock, Sys.waitWritable(fd, milliseconds: JournalWriter.waitForRoomMilliseconds) {
                result = bytes.withUnsafeBytes { Sys.send(fd, $0) }
            }
            switch result {
            case .bytes: return true
            case .wouldBlock, .endOfFile: return false
            case .failed(let error):
                // journald restarted: its socket is a new one; reconnect once. Anything else (an entry too
                // large for a datagram) goes to stderr.
                guard attempt == 0, error.rawValue == ECONNREFUSED || error.rawValue == ENOTCONN || error.rawValue == ECONNRESET else { return false }
                Sys.close(fd)
                fd = -1
            }
        }
        return false
    }
}
