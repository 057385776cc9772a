import ControlProtocol
import Glibc

/// `hyperglassctl status --watch`: the status table, redrawn every interval until Ctrl-C, like `watch`.
/// On a terminal the screen is cleared and redrawn in place; into a pipe each table follows the last.
enum StatusWatch {
    static func run(path: String, intervalSeconds: Double, json: Bool) -> Never {
        let terminal = isatty(1) == 1
        while true {
            var screen = ""
            do {
                let reply = try ControlClient.send(.status, to: path, timeoutSeconds: 10)
                guard reply["ok"]?.bool == true else {
                    stderrLine("hyperglassctl: \(reply["error"]?.string ?? "the supervisor refused without a reason")")
                    exit(1)
                }
                screen = json ? reply.serialized + "\n" : StatusTable.render(reply)
            } catch {
                // A supervisor restarting under systemd comes back: keep watching, and say so.
                screen = "hyperglassctl: \(error)\n"
            }
            if terminal { screen = "\u{1B}[H\u{1B}[2J" + clock() + "\n\n" + screen }
            var bytes = Array(screen.utf8)
            _ = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
            var pause = timespec(tv_sec: Int(intervalSeconds), tv_nsec: Int((intervalSeconds - intervalSeconds.rounded(.down)) * 1e9))
            var left = timespec()
            while nanosleep(&pause, &left) < 0 && errno == EINTR { pause = left }
        }
    }

    private static func clock() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "hyperglassctl status --watch    \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))    (Ctrl-C to quit)"
    }
}

/// The commands that run until stopped (`status --watch`, `events`) make sure Ctrl-C and SIGTERM can
/// stop them: a parent may have started us with those signals blocked (Foundation's Process does,
/// from a Dispatch thread), and a blocked SIGTERM would leave the loop running forever.
func unblockStopSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGHUP)
    sigaddset(&set, SIGPIPE)
    sigprocmask(SIG_UNBLOCK, &set, nil)
}
