/// Signal names for messages; the core speaks Linux signal numbers but people read names.
public enum SignalName {
    public static func of(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
            9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM",
            15: "SIGTERM", 21: "SIGTTIN", 22: "SIGTTOU", 24: "SIGXCPU", 25: "SIGXFSZ",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}

/// The Linux signal numbers the core asks the shell to send or learns about.
public enum Signal: Int32, Sendable {
    case hangup = 1, interrupt = 2, quit = 3, abort = 6, kill = 9, terminate = 15, cont = 18, ttin = 21, ttou = 22
}
