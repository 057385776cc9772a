import Glibc
import SupervisorCore

/// Lines on stderr. Under journald (JOURNAL_STREAM names our stderr) each line starts with its
/// syslog priority, "<4>", so `journalctl -p warning` works; on a terminal it reads "hyperglass: warning: ...".
struct Log {
    let journal: Bool
    let verbose: Bool

    init(verbose: Bool) {
        self.verbose = verbose
        journal = Log.stderrIsJournal()
    }

    func callAsFunction(_ level: LogLevel, _ message: String) {
        if level == .debug && !verbose { return }
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
