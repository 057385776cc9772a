import SupervisorCore

/// What the command line asked for. Parsing is pure so tests can feed it argv.
struct Invocation: Equatable {
    enum Subcommand: String { case start, checkConfig = "check-config", upgradeCheck = "upgrade-check", version, help }

    var subcommand: Subcommand
    var configPath: String? = nil
    var flags: [(key: String, value: String)] = []
    /// The worker command after `--`.
    var command: [String]? = nil
    /// `upgrade-check --state-version N`: the state format the running supervisor offers.
    var stateVersion: Int? = nil

    static func == (a: Invocation, b: Invocation) -> Bool {
        a.subcommand == b.subcommand && a.configPath == b.configPath && a.command == b.command
            && a.flags.map(\.key) == b.flags.map(\.key) && a.flags.map(\.value) == b.flags.map(\.value)
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
}

enum Arguments {
    static func parse(_ argv: [String]) throws(UsageError) -> Invocation {
        guard let first = argv.first else { throw UsageError(description: "missing command (start, check-config, version)") }
        if first == "--help" || first == "-h" || first == "help" { return Invocation(subcommand: .help) }
        if first == "--version" { return Invocation(subcommand: .version) }
        guard let subcommand = Invocation.Subcommand(rawValue: first) else {
            throw UsageError(description: "unknown command '\(first)' (start, check-config, version)")
        }
        var invocation = Invocation(subcommand: subcommand)
        var index = 1
        while index < argv.count {
            let argument = argv[index]
            index += 1
            if argument == "--" {
                guard index < argv.count else { throw UsageError(description: "'--' must be followed by the worker command") }
                invocation.command = Array(argv[index...])
                break
            }
            if argument == "--help" || argument == "-h" { return Invocation(subcommand: .help) }
            guard argument.hasPrefix("--") else {
                throw UsageError(description: "unexpected argument '\(argument)'; put the worker command after '--'")
            }
            var name = String(argument.dropFirst(2))
            var value: String? = nil
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            let keyName = name.replacingOccurrences(of: "-", with: "_")
            let isBoolean = keyName == "debug"
            if subcommand == .upgradeCheck && name == "state-version" {
                guard let text = value ?? (index < argv.count ? argv[index] : nil), let number = Int(text) else {
                    throw UsageError(description: "--state-version needs a whole number")
                }
                if value == nil { index += 1 }
                invocation.stateVersion = number
                continue
            }
            if name != "config" && ConfigKey.named(keyName) == nil {
                let known = ["config"] + ConfigKey.all.map(\.name)
                let hint = Suggestion.closest(to: keyName, among: known).map { "; did you mean '--\($0.replacingOccurrences(of: "_", with: "-"))'?" } ?? ""
                throw UsageError(description: "unknown option '--\(name)'\(hint)")
            }
            if value == nil {
                if isBoolean {
                    value = "true"
                } else {
                    guard index < argv.count else { throw UsageError(description: "option '--\(name)' needs a value") }
                    value = argv[index]
                    index += 1
                }
            }
            if name == "config" { invocation.configPath = value } else { invocation.flags.append((keyName, value!)) }
        }
        return invocation
    }

    static let usage = """
        Usage: hyperglass start [--config FILE] [--workers N|auto] [--bind ADDR]... [--graceful-timeout DURATION]
                                [--debug] [--OPTION VALUE]... [-- COMMAND [ARG...]]
               hyperglass check-config [same options as start]
               hyperglass upgrade-check --state-version N [same options as start]
               hyperglass version
        """

    static var help: String {
        var text = """
            hyperglass - a systemd-first supervisor for a pool of web-application workers

            \(usage)

            'start' runs in the foreground (under systemd as a Type=notify service, or in a terminal):
            it binds the listening sockets once, starts the workers with the sockets passed the way
            systemd socket activation passes them (fds 3.., LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES,
            NOTIFY_SOCKET, HYPERGLASS_WORKER_ID), restarts workers that die or fail their health
            checks, and drains them on SIGTERM or SIGINT (a second signal kills at once). SIGHUP
            re-reads the configuration and replaces the workers, a quarter at a time (max_surge),
            each new one accepting before the old one drains, and rolls back if the new ones do not
            come up or do not take connections. SIGTTIN/SIGTTOU add/remove a worker. SIGUSR2
            replaces the supervisor's program in place with the installed one (same pid, same
            workers), as 'hyperglassctl upgrade'. SIGUSR1 and SIGALRM are logged and ignored.
            Without a COMMAND the bundled hyperglass-worker beside this binary is run. The running pool is shown and changed with hyperglassctl.

            'check-config' validates the configuration and prints the effective values.

            'upgrade-check' answers whether this binary can take over a running supervisor that offers
            its state in format version N (hyperglassctl upgrade runs it first): it loads the
            configuration as 'start' would, prints one line and exits 0 (yes) or 1 (no, and why).

            Configuration comes from, in rising precedence: FILE (--config, $HYPERGLASS_CONFIG, or
            /etc/hyperglass-supervisor/supervisor.conf, else the old /etc/hyperglass/supervisor.conf,
            if it exists), HYPERGLASS_<KEY> variables, then flags.
            Every key has a flag of the same name: ready_timeout is --ready-timeout and
            HYPERGLASS_READY_TIMEOUT. Durations take ms, s, m, h (500ms, 30s, 2m). Sizes take K, M, G (512M).

            Options:

            """
        for key in ConfigKey.all {
            let flag = "  " + key.flag + (key.name == "debug" ? "" : " VALUE")
            text += flag.padding(to: 30) + "[\(key.section)] \(key.accepts)\(key.repeatable ? " (repeatable)" : "")\n"
        }
        text += """
              --config FILE               the configuration file
              -h, --help                  this text

            Exit status: 0 after a clean stop, 1 on a runtime failure (or a crash loop with
            crash_loop = exit), 2 for usage errors, 78 for configuration errors.

            """
        return text
    }
}

extension String {
    func replacingOccurrences(of target: Character, with replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }

    func padding(to width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
