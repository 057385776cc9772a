import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore

/// Both ends of the upgrade preflight. The new binary's side is `hyperglass upgrade-check`: can it read
/// the state format the running supervisor offers, and does the configuration load? The running side
/// runs that check on the binary it is asked to exec, and refuses with the check's own words.
enum UpgradeCheck {
    /// How long the check may take before the binary counts as hung. The loop serves (and pings systemd's
    /// watchdog) meanwhile, so it need not be shorter than the watchdog interval.
    static let timeout: Duration = .seconds(5)
    /// The most of the check's output kept: its last lines are quoted in a refusal.
    static let outputLimit = 4095

    /// `hyperglass upgrade-check --state-version N [start's options]`: one line, exit 0 (yes) or 1 (no).
    static func run(_ invocation: Invocation) -> Int32 {
        guard let offered = invocation.stateVersion else {
            fail("error: upgrade-check needs --state-version N\n\(Arguments.usage)\nSee 'hyperglass --help'.", code: 2)
        }
        if let refusal = UpgradeState.canRead(offered) {
            print("hyperglass \(version) cannot take over: \(refusal)")
            return 1
        }
        do {
            _ = try Configuration.load(invocation, environment: Sys.environmentDictionary())
        } catch {
            print("hyperglass \(version) cannot take over: the configuration does not load: \(error)")
            return 1
        }
        print(UpgradeCheckAnswer.yes(version: version, stateVersion: offered))
        return 0
    }

    /// A check under way: the loop reads its output (`outputFD`, in epoll) and reaps it like any child; the
    /// answer is known once both have ended, or at `deadline` (EventLoop+UpgradeCheck.swift).
    struct Running {
        let path: String
        let pid: Int32
        /// The read end of its stdout and stderr; -1 once at end of file.
        var outputFD: Int32
        var output: [UInt8] = []
        var exit: ExitStatus? = nil
        let deadline: Instant
        let requester: Requester

        /// Both its output and its process have ended.
        var isDone: Bool { outputFD < 0 && exit != nil }
    }

    /// Starts `path upgrade-check` with the options this supervisor was started with, and returns at once.
    static func start(_ path: String, startArguments: [String], for requester: Requester, at now: Instant) -> Result<Running, ControlError> {
        let arguments = [path, "upgrade-check", "--state-version", String(UpgradeState.version)] + startArguments
        var outputFD: Int32 = -1
        var error: Int32 = 0
        let pid = withCStrings(arguments) { argv in hg_check_start(path, argv, &outputFD, &error) }
        guard pid > 0 else {
            return .failure(ControlError("cannot upgrade: cannot run \(path) to check it: \(SystemError(operation: "fork", errno: error))"))
        }
        return .success(Running(path: path, pid: pid, outputFD: outputFD, deadline: now + timeout, requester: requester))
    }

    /// What a finished check said: the new version, or why not (its last lines quoted).
    static func verdict(of check: Running) -> Result<String, ControlError> {
        let output = String(decoding: check.output, as: UTF8.self)
        let exit = check.exit ?? .exited(127)
        guard exit == .exited(0), let newVersion = UpgradeCheckAnswer.version(in: output, offered: UpgradeState.version) else {
            let said = output.split(separator: "\n").suffix(3).joined(separator: "; ")
            let shown = said.isEmpty ? "no output" : "'\(UpgradeCheckAnswer.shown(said))'"
            let expected = exit == .exited(0) ? " (not the line '\(UpgradeCheckAnswer.yes(version: "VERSION", stateVersion: UpgradeState.version))')" : ""
            return .failure(ControlError("cannot upgrade: \(check.path) refused to take over (\(exit)): \(shown)\(expected); nothing changed"))
        }
        return .success(newVersion)
    }

    /// The refusal of a check that did not answer in time.
    static func timedOut(_ check: Running) -> String {
        "cannot upgrade: \(check.path) upgrade-check did not answer within \(timeout.spoken); nothing changed"
    }

    /// Where the installed supervisor is now: our argv[0] made absolute, or found on PATH. Never
    /// /proc/self/exe: after a package upgrade that names the replaced (deleted) inode, the old program.
    static func installedPath() -> String? {
        guard let first = CommandLine.arguments.first, !first.isEmpty else { return nil }
        if first.hasPrefix("/") { return first }
        if first.contains("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
            guard getcwd(&buffer, buffer.count) != nil else { return nil }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + first
        }
        let search = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in search.split(separator: ":") where directory.hasPrefix("/") {
            let candidate = "\(directory)/\(first)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Our start options: what followed `start` on the command line (the check loads the configuration as start did).
    static var startArguments: [String] {
        let arguments = CommandLine.arguments
        guard arguments.count > 1, arguments[1] == "start" else { return [] }
        return Array(arguments.dropFirst(2))
    }
}

/// Calls `body` with a NULL-terminated C array of the strings, valid only during the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
