import CHyperglass
import Glibc

/// For `check-config`: compares the installed unit's stop timeout with `graceful_timeout`, because
/// systemd SIGKILLs whatever is left when `TimeoutStopSec=` runs out, which would cut a drain short.
enum UnitCheck {
    static let unit = "hyperglass.service"

    /// Prints the warning below to stderr, if there is one; check-config still exits 0.
    static func warnIfStopTimeoutTooShort(graceful: Duration) {
        guard let warning = stopTimeoutWarning(graceful: graceful) else { return }
        Sys.writeStandardError("hyperglass: \(warning)\n")
    }

    /// A warning when the loaded unit's TimeoutStopSec is not longer than `graceful`; nil when it is,
    /// or when there is no systemd, no such unit, or no answer (then there is nothing to compare).
    static func stopTimeoutWarning(graceful: Duration) -> String? {
        guard let output = run(["systemctl", "show", "--property=LoadState,TimeoutStopUSec", unit]) else { return nil }
        var properties: [Substring: Substring] = [:]
        for line in output.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            properties[line[..<eq]] = line[line.index(after: eq)...]
        }
        guard properties["LoadState"] == "loaded", let text = properties["TimeoutStopUSec"],
              let stop = parseTimespan(text) else { return nil }
        guard stop <= graceful else { return nil }
        let suggested = (graceful + .seconds(15)).components.seconds
        return "warning: \(unit) has TimeoutStopSec=\(text), not longer than graceful_timeout "
            + "(\(graceful.components.seconds)s): systemd would SIGKILL workers still draining. "
            + "Set TimeoutStopSec=\(suggested)s (`systemctl edit hyperglass`) or lower graceful_timeout."
    }

    /// A systemd time span as `systemctl show` prints it ("45s", "1min 30s", "500ms", "infinity").
    static func parseTimespan(_ text: Substring) -> Duration? {
        if text == "infinity" { return .seconds(Int64.max / 1_000_000_000) }
        let units: [(String, Int64)] = [("us", 1), ("ms", 1_000), ("s", 1_000_000), ("min", 60_000_000),
                                        ("h", 3_600_000_000), ("d", 86_400_000_000), ("w", 604_800_000_000)]
        var total: Int64 = 0
        for word in text.split(separator: " ") {
            guard let split = word.firstIndex(where: { !$0.isNumber && $0 != "." }), split != word.startIndex,
                  let number = Double(word[..<split]),
                  let factor = units.first(where: { $0.0 == word[split...] })?.1 else { return nil }
            total += Int64(number * Double(factor))
        }
        return .microseconds(total)
    }

    /// Runs a program found in PATH and returns its stdout, or nil if it could not run or failed.
    /// The child starts with an empty signal mask: main() blocked the signals the loop reads.
    private static func run(_ argv: [String]) -> String? {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        _ = hg_set_cloexec(fds[0])
        _ = hg_set_cloexec(fds[1])
        defer { Sys.close(fds[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, argv[0], &actions, &attributes, cArguments, hg_environ())
        Sys.close(fds[1])
        guard spawned == 0 else { return nil }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        reading: while bytes.count < 1 << 16 {
            switch buffer.withUnsafeMutableBytes({ Sys.read(fds[0], $0) }) {
            case .bytes(let count): bytes += buffer.prefix(count)
            case .endOfFile, .wouldBlock, .failed: break reading
            }
        }
        guard let status = Sys.waitForExit(pid) else { return nil }
        // WIFEXITED && WEXITSTATUS == 0, spelled out: Glibc's macros are not imported.
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
