/// Every signal the supervisor handles or sends, once: its Linux number, its name, and what it means when
/// it arrives (`meaning`). The blocked set (`handled`, checked against CSupervisorSignals' early list), the
/// names in messages and the dispatch (`Pool.signalReceived`, prestart) all read this one table, as nginx's
/// `signals[]` does. A signal an operator may send out of habit is handled, never left to kill the pool.
public enum Signal: Int32, Sendable, CaseIterable {
    case hangup = 1, interrupt = 2, quit = 3, abort = 6, kill = 9, user1 = 10, user2 = 12, alarm = 14
    case terminate = 15, child = 17, cont = 18, ttin = 21, ttou = 22

    /// What the supervisor does when it receives a signal.
    public enum Meaning: Equatable, Sendable {
        /// Drain (after the lame-duck delay, if set); a second one skips the wait, a third kills.
        case stop
        /// Reload: re-read the configuration and roll every worker onto it (`Intent.reload`).
        case reload
        /// One worker more or fewer (`Intent.workers(.by(±1))`), as Gunicorn's TTIN/TTOU.
        case scale(by: Int)
        /// Replace the supervisor's program in place with the installed one (`Intent.upgrade`), as HAProxy's
        /// master re-executes itself on USR2: the same pid, the same workers.
        case upgrade
        /// A child exited: reap.
        case reap
        /// Logged, nothing else (`reason` says why): a habit from another server that means nothing here yet.
        case ignored(reason: String)
    }

    /// What this signal means on arrival; nil for the ones the supervisor only sends.
    public var meaning: Meaning? {
        switch self {
        // SIGQUIT drains too (as nginx does, not Gunicorn's quick exit): a runtime or an operator that sends it
        // still expects in-flight requests to finish.
        case .terminate, .interrupt, .quit: .stop
        case .hangup: .reload
        case .ttin: .scale(by: 1)
        case .ttou: .scale(by: -1)
        case .child: .reap
        // logrotate sends USR1 to Gunicorn and nginx to reopen their logs: ours go to stderr (the journal), never a file.
        case .user1: .ignored(reason: "the supervisor writes no log file to reopen (its log goes to stderr and the journal)")
        // Gunicorn's and nginx's binary upgrade, HAProxy's master reload: ours keeps the pid (no "old master" to stop).
        case .user2: .upgrade
        case .alarm: .ignored(reason: "it means nothing to the supervisor")
        case .abort, .kill, .cont: nil
        }
    }

    /// The signals the supervisor reads from its signalfd: blocked before main, in every thread.
    public static let handled: [Signal] = allCases.filter { $0.meaning != nil }

    /// "SIGTERM".
    public var name: String { SignalName.of(rawValue) }
}

/// Signal names for messages; the core speaks Linux signal numbers but people read names.
public enum SignalName {
    public static func of(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
            9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM",
            15: "SIGTERM", 17: "SIGCHLD", 18: "SIGCONT", 21: "SIGTTIN", 22: "SIGTTOU", 24: "SIGXCPU", 25: "SIGXFSZ",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}
