import CSystemd
import Glibc
import SupervisorCore

/// Entries in the journal through its native protocol (libsystemd's `sd_journal_sendv`), with fields:
/// pool events carry `EVENT=`, `WORKER_ID=`, `WORKER_PID=`, `GENERATION=`, `REASON=`..., so
/// `journalctl -u hyperglass WORKER_ID=3` and `journalctl -u hyperglass EVENT=exited` find them.
/// Used only when stderr is the journal (`Log`); every supervisor line goes this one way then, so plain
/// lines and events keep their order (two transports, the stream and the socket, interleaved them).
enum JournalWriter {
    /// The same identifier journald gives our stderr stream, so `journalctl -t hyperglass` shows both.
    static let identifier = "hyperglass"

    /// The entry's fields, in order: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, then the event's own.
    static func fields(_ level: LogLevel, _ message: String, _ extra: [(name: String, value: String)]) -> [String] {
        // A newline in MESSAGE is fine for the native protocol (libsystemd length-prefixes such values).
        ["MESSAGE=\(message)", "PRIORITY=\(level.rawValue)", "SYSLOG_IDENTIFIER=\(identifier)"] + extra.map { "\($0.name)=\($0.value)" }
    }

    /// Sends one entry; false when journald did not take it (the caller falls back to a stderr line).
    /// Like a write to the stderr stream it may wait while journald is backed up; it never waits otherwise.
    static func send(_ level: LogLevel, _ message: String, fields extra: [(name: String, value: String)] = []) -> Bool {
        // One buffer for all fields, so every iovec points into memory that lives for the whole call.
        var blob: [UInt8] = []
        var ranges: [Range<Int>] = []
        for field in fields(level, message, extra) {
            let start = blob.count
            blob += field.utf8
            ranges.append(start..<blob.count)
        }
        return blob.withUnsafeMutableBytes { bytes in
            let vectors = ranges.map { iovec(iov_base: bytes.baseAddress! + $0.lowerBound, iov_len: $0.count) }
            return sd_journal_sendv(vectors, Int32(vectors.count)) >= 0
        }
    }
}
