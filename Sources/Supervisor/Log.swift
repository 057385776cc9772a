import Glibc
import SupervisorCore

/// Lines on stderr, or under journald (JOURNAL_STREAM names our stderr) journal entries with their
/// priority, so `journalctl -p warning` works, and for pool events their fields (`JournalWriter`);
/// on a terminal a line reads "hyperglass[PID]: warning: ...".
struct Log {
    let journal: Bool
    let verbose: Bool
    /// The journal's socket, when stderr is the journal.
    private let journalWriter: JournalWriter?

    init(verbose: Bool) {
        self.verbose = verbose
        journal = Log.stderrIsJournal()
        journalWriter = journal ? JournalWriter() : nil
    }

    func callAsFunction(_ level: LogLevel, _ message: String) {
        write(level, message, fields: [])
    }

    /// A pool event: in the journal with its fields, elsewhere the same line as any other.
    func callAsFunction(_ event: PoolEvent) {
        write(event.level, event.message, fields: event.fields)
    }

    private func write(_ level: LogLevel, _ message: String, fields: [(name: String, value: String)]) {
        if level == .debug && !verbose { return }
        if let journalWriter, journalWriter.send(level, message, fields: fields) { return }
        let line: String
        if journal {
            line = "<\(level.rawValue)>\(message)\n"
        } else {
            let label = level == .error ? "error: " : level == .warning ? "warning: " : ""
            line = "hyperglass[\(getpid())]: \(label)\(message)\n"
        }
        Sys.writeStandardError(line)
    }

    /// JOURNAL_STREAM is "DEV:INO" of the stream systemd connected; it only counts if it is still our stderr.
    private static func stderrIsJournal() -> Bool {
        guard let value = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return value == "\(info.st_dev):\(info.st_ino)"
    }
}
