import Testing
@testable import SupervisorCore

/// A state given to a fresh `hyperglass start` by whoever can set its environment: whatever it says, the
/// decoder refuses it with a line number, and never hands the pool a value that traps on its next use
/// (an overflowing counter, an instant whose difference overflows) or a pid or fd that means something else.
@Suite("Upgrade state: forged or corrupt values are refused when read", .timeLimit(.minutes(1)))
struct UpgradeStateForgedTests {
    static func text(_ replacing: [String: String] = [:], extra: [String] = []) -> String {
        var fields = ["PID": "4242", "WSLOT": "0", "CFD": "5", "NFD": "7", "STARTED": "1000", "USEC": "5000000", "GEN": "1", "FAILURES": "0"]
        for (key, value) in replacing { fields[key] = value }
        var lines = [
            "hyperglass-state 2",
            "from version=0.1.0 handover=2000 started=STARTED",
            "pool release=1 rollSerial=0",
            "slot id=0 pid=PID generation=GEN release=1 failures=FAILURES",
            "worker pid=PID slot=WSLOT generation=GEN release=1 startedAt=STARTED watchdogUsec=USEC lastWatchdogAt=1500",
            "control fd=CFD path=/run/hyperglass/control.sock",
            "sockets directory=/run/hyperglass/workers.x started=1",
            "workerSockets pid=PID startTime=99 notifyFD=NFD notify=n",
        ] + extra + ["end"]
        for (key, value) in fields { lines = lines.map { $0.replacing(key, with: value) } }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test("the fixture itself is a good state")
    func fixtureDecodes() throws {
        let state = try UpgradeState.decode(Self.text())
        #expect(state.pool.workers.map(\.pid) == [4242])
        #expect(state.control.fd == 5)
    }

    @Test("values no real pool holds are refused, each with its line",
          arguments: [
              ("pid -1 (every process)", Self.text(["PID": "-1"])),
              ("pid 0 (the group)", Self.text(["PID": "0"])),
              ("pid 1 (init)", Self.text(["PID": "1"])),
              ("control fd -5", Self.text(["CFD": "-5"])),
              ("notify fd -1", Self.text(["NFD": "-1"])),
              ("a worker of a slot the state does not have", Self.text(["WSLOT": "7"])),
              ("a worker of slot -1", Self.text(["WSLOT": "-1"])),
              ("a generation whose next increment overflows", Self.text(["GEN": String(Int.max)])),
              ("failures at Int.max", Self.text(["FAILURES": String(Int.max)])),
              ("an instant whose difference from now overflows", Self.text(["STARTED": String(UInt64.max)])),
              ("a watchdog interval past Duration's nanoseconds", Self.text(["USEC": String(Int64.max)])),
              ("roll counts that add past UInt64.max", Self.text(extra: [
                  "rolls kind=reload succeeded=true count=18446744073709551615",
                  "rolls kind=reload succeeded=true count=18446744073709551615"])),
              ("a failure counter at UInt64.max", Self.text(extra: ["failures reason=crash count=18446744073709551615"])),
              ("a histogram count at UInt64.max", Self.text(extra: [
                  "histogram name=rollSeconds bounds=1 counts=18446744073709551615,1 sum=1 count=1"])),
              ("the same worker twice", Self.text().replacing("control fd", with:
                  "worker pid=4242 slot=0 generation=1 release=1 startedAt=1\ncontrol fd")),
          ])
    func forgedValuesAreRefused(_ case: (String, String)) {
        let (name, text) = `case`
        #expect(throws: UpgradeStateError.self, "\(name) was accepted") { try UpgradeState.decode(text) }
        do {
            _ = try UpgradeState.decode(text)
        } catch {
            guard case .malformed(let line, _) = error else { Issue.record("\(name): \(error)"); return }
            #expect(line > 0, "\(name): \(error)")
        }
    }
}
