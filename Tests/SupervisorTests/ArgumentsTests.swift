import Testing
import SupervisorCore
@testable import Supervisor

@Suite("Arguments.parse", .timeLimit(.minutes(1)))
struct ArgumentsTests {
    private func usageError(_ argv: [String]) -> String? {
        do { _ = try Arguments.parse(argv); return nil } catch { return error.description }
    }

    @Test("flags in both spellings, --config, a bare --debug and the worker command after --")
    func fullCommandLine() throws {
        let invocation = try Arguments.parse(["start", "--workers", "4", "--ready-timeout=5s", "--debug", "--config=/etc/x.conf",
                                              "--", "python3", "app.py", "--workers", "9"])
        #expect(invocation == Invocation(subcommand: .start, configPath: "/etc/x.conf",
                                         flags: [("workers", "4"), ("ready_timeout", "5s"), ("debug", "true")],
                                         command: ["python3", "app.py", "--workers", "9"]))
    }

    @Test("help and version win wherever they stand")
    func helpAndVersion() throws {
        #expect(try Arguments.parse(["--help"]).subcommand == .help)
        #expect(try Arguments.parse(["help"]).subcommand == .help)
        #expect(try Arguments.parse(["check-config", "--workers", "2", "-h"]).subcommand == .help)
        #expect(try Arguments.parse(["--version"]).subcommand == .version)
        #expect(try Arguments.parse(["version"]).subcommand == .version)
    }

    @Test("every configuration key is a flag")
    func everyKeyIsAFlag() throws {
        for key in ConfigKey.all {
            let invocation = try Arguments.parse(["check-config", key.flag + "=value"])
            #expect(invocation.flags.first?.key == key.name, "\(key.flag)")
        }
    }

    @Test("usage errors say what is wrong and, for a typo, what was meant")
    func usageErrors() {
        #expect(usageError([]) == "missing command (start, check-config, version)")
        #expect(usageError(["strat"]) == "unknown command 'strat' (start, check-config, version)")
        #expect(usageError(["start", "--wrokers", "2"]) == "unknown option '--wrokers'; did you mean '--workers'?")
        #expect(usageError(["start", "--workers"]) == "option '--workers' needs a value")
        #expect(usageError(["start", "app.py"]) == "unexpected argument 'app.py'; put the worker command after '--'")
        #expect(usageError(["start", "--"]) == "'--' must be followed by the worker command")
    }

    @Test("the help lists every flag with its section")
    func helpListsFlags() {
        for key in ConfigKey.all {
            #expect(Arguments.help.contains(key.flag) && Arguments.help.contains("[\(key.section)] \(key.accepts)"), "\(key.flag)")
        }
    }
}
