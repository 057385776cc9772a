import Testing
@testable import Supervisor

/// systemd's protocols as the supervisor speaks them without libsystemd: the journal's native datagram
/// and the watchdog variables (the real journald reads them in Tests/Acceptance).
@Suite("journal datagram and watchdog variables", .timeLimit(.minutes(1)))
struct SystemdProtocolTests {
    @Test("fields are NAME=value lines; a value holding a newline is NAME, its 64-bit little-endian length, the value")
    func journalDatagram() {
        let bytes = JournalWriter.datagram([("MESSAGE", "two\nlines"), ("PRIORITY", "4"), ("WORKER_ID", "3")])
        let expected: [UInt8] = Array("MESSAGE\n".utf8) + [9, 0, 0, 0, 0, 0, 0, 0] + Array("two\nlines\n".utf8)
            + Array("PRIORITY=4\nWORKER_ID=3\n".utf8)
        #expect(bytes == expected)
    }

    @Test("an entry starts with MESSAGE, PRIORITY and SYSLOG_IDENTIFIER, then the event's fields")
    func journalFields() {
        let fields = JournalWriter.fields(.warning, "worker 1 exited", [("EVENT", "exited")])
        #expect(fields.map(\.name) == ["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "EVENT"])
        #expect(fields.map(\.value) == ["worker 1 exited", "4", "hyperglass", "exited"])
    }

    @Test("WATCHDOG_USEC counts when positive and WATCHDOG_PID is absent or ours, as sd_watchdog_enabled reads them")
    func watchdogVariables() {
        #expect(SystemdNotifier.watchdogInterval(usec: "10000000", pid: nil, ownPID: 42) == .seconds(10))
        #expect(SystemdNotifier.watchdogInterval(usec: "10000000", pid: "42", ownPID: 42) == .seconds(10))
        #expect(SystemdNotifier.watchdogInterval(usec: "10000000", pid: "41", ownPID: 42) == nil)
        #expect(SystemdNotifier.watchdogInterval(usec: "0", pid: nil, ownPID: 42) == nil)
        #expect(SystemdNotifier.watchdogInterval(usec: "ten", pid: nil, ownPID: 42) == nil)
        #expect(SystemdNotifier.watchdogInterval(usec: nil, pid: nil, ownPID: 42) == nil)
    }
}
