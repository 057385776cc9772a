import CHyperglass
import ControlProtocol
import Glibc
import SupervisorCore

/// Both ends of the upgrade preflight. The new binary's side is `hyperglass upgrade-check`: can it read
/// the state format the running supervisor offers, and does the configuration load? The running side
/// runs that check on the binary it is asked to exec, and refuses with the check's own words.
enum UpgradeCheck {
    /// How long the check may take before the binary counts as hung (less with a systemd watchdog).
    static let timeout: Duration = .seconds(5)

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

    /// Runs `path upgrade-check` with the options this supervisor was started with; the new version, or why not.
    static func preflight(_ path: String, startArguments: [String], timeout: Duration) -> Result<String, ControlError> {
        let milliseconds = Int32(clamping: timeout.nanoseconds / 1_000_000)
        let arguments = [path, "upgrade-check", "--state-version", String(UpgradeState.version)] + startArguments
        var buffer = [CChar](repeating: 0, count: 4096)
        var status: Int32 = 0
        var timedOut: Int32 = 0
        let started = withCStrings(arguments) { argv in
            hg_run_check(path, argv, milliseconds, &buffer, buffer.count, &status, &timedOut)
        }
        guard started == 0 else {
            return .failure(ControlError("cannot upgrade: cannot run \(path) to check it: \(SystemError(operation: "fork", errno: errno))"))
        }
        let output = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if timedOut != 0 {
            return .failure(ControlError("cannot upgrade: \(path) upgrade-check did not answer within \(timeout.spoken); nothing changed"))
        }
        let exit: ExitStatus = hg_wifsignaled(status) != 0 ? .signaled(hg_wtermsig(status)) : .exited(hg_wexitstatus(status))
        guard exit == .exited(0), let newVersion = UpgradeCheckAnswer.version(in: output, offered: UpgradeState.version) else {
            let said = output.split(separator: "\n").suffix(3).joined(separator: "; ")
            let shown = said.isEmpty ? "no output" : "'\(UpgradeCheckAnswer.shown(said))'"
            let expected = exit == .exited(0) ? " (not the line '\(UpgradeCheckAnswer.yes(version: "VERSION", stateVersion: UpgradeState.version))')" : ""
            return .failure(ControlError("cannot upgrade: \(path) refused to take over (\(exit)): \(shown)\(expected); nothing changed"))
        }
        return .success(newVersion)
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
