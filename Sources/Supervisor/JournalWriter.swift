import CSystemd
import Glibc
import SupervisorCore

/// Pool events as structured journal entries (the native protocol, via libsystemd's `sd_journal_sendv`),
/// so `journalctl -u hyperglass WORKER_ID=3` and `journalctl -u hyperglass EVENT=exited` find them.
/// Used only when stderr is the journal (JOURNAL_STREAM matches it); elsewhere events are plain lines.
struct JournalWriter {
    /// The same identifier journald gives our stderr stream, so `journalctl -t hyperglass` shows both.
    static let identifier = "hyperglass"

    /// The entry's fields, in order: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, then the event's own.
    static func fields(_ event: PoolEvent) -> [String] {
        // A newline in MESSAGE is fine for the native protocol (libsystemd length-prefixes such values).
        ["MESSAGE=\(event.message)", "PRIORITY=\(event.level.rawValue)", "SYSLOG_IDENTIFIER=\(identifier)"]
            + event.fields.map { "\($0.name)=\($0.value)" }
    }

    /// Sends one entry; false when journald did not take it (the caller falls back to a stderr line).
    /// Like a write to the stderr stream it may wait while journald is backed up; it never waits otherwise.
    @discardableResult
    func send(_ event: PoolEvent) -> Bool {
        // One buffer for all fields, so every iovec points into memory that lives for the whole call.
        var blob: [UInt8] = []
        var ranges: [Range<Int>] = []
        for field in JournalWriter.fields(event) {
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
