import Foundation
import Glibc
import Testing

/// Parallel rolls through the real binaries (issue 23): `max_surge` (25 % by default) new workers start at
/// once and each one's `min_ready` overlaps the next start; a release that dies after it started serving is
/// still rolled back whole; `reload --wait` shows the roll advancing.
@Suite("Parallel rolls", .serialized, .timeLimit(.minutes(3)))
struct ParallelRollTests {
    /// "worker 3 ready (pid 4242, 120ms after start)": the longest start-up among the workers after the
    /// first `skipping` (the pool's own start), in seconds.
    static func longestStart(_ log: String, skipping: Int) -> Double {
        var starts: [Double] = []
        for line in log.split(separator: "\n") where line.contains(" ready (pid ") && line.contains(" after start)") {
            guard let range = line.range(of: ", "), let end = line.range(of: " after start)") else { continue }
            let text = line[range.upperBound..<end.lowerBound]
            let seconds: Double? = text.hasSuffix("ms") ? Double(text.dropLast(2)).map { $0 / 1000 }
                : text.hasSuffix("s") ? Double(text.dropLast()) : nil
            starts.append(seconds ?? 0)
        }
        return starts.dropFirst(skipping).max() ?? 0
    }

    /// The pids of the new workers a roll started: "worker 3 generation 2 started (pid 4242) beside pid 4100".
    static func successors(_ log: String) -> [Int32] {
        log.split(separator: "\n").compactMap { line in
            guard line.contains(" beside pid "), let start = line.range(of: "started (pid ") else { return nil }
            return Int32(line[start.upperBound...].prefix { $0.isNumber })
        }
    }

    @Test("default configuration: a reload of 8 to a release that serves, then exits 2 s after start, is rolled back; every new worker of the roll gone, the old untouched, 0 failed requests")
    func servingThenExitingRollsBackEveryNewWorker() throws {
        let directory = Paths.temporaryDirectory()
        let config = AcceptingReadinessTests.config(in: directory, workers: 8)
        let supervisor = try SupervisorProcess(["--config", config], worker: nil, directory: directory)
        #expect(eventually(timeout: 20) { AcceptingReadinessTests.readyCount(supervisor) == 8 }, "\(supervisor.log)")
        let before = Set(supervisor.liveWorkers)
        #expect(before.count == 8)
        _ = AcceptingReadinessTests.config(in: directory, workers: 8, extra: "command = \(Paths.fixtures)/exit_later.py --serve --after 2 --status 0\n")
        let load = try ReloadTests.Load(port: supervisor.port, rate: 200, keepalive: 2)
        usleep(300_000)
        let watcher = ReloadTests.CountWatcher(supervisor: supervisor.pid)
        let reload = supervisor.ctl(["reload", "--wait"])
        usleep(500_000)
        let lowest = watcher.stop()
        let counts = load.finish()
        let fresh = Self.successors(supervisor.log)
        #expect(reload.status == 1, "\(reload) \(supervisor.log)")
        #expect(reload.err.contains("reload failed at worker"), "\(reload)")
        #expect(reload.err.contains("exit status 0 "), "\(reload)")
        // Parallel: more than one new worker was started before the first one died.
        #expect(fresh.count > 2, "new workers started: \(fresh) \(supervisor.log)")
        #expect(eventually(timeout: 5) { fresh.allSatisfy { !ProcFS.isAlive($0) } }, "every new worker gone: \(fresh.filter { ProcFS.isAlive($0) })")
        #expect(Set(supervisor.liveWorkers) == before, "the old workers serve on, untouched: \(supervisor.log)")
        #expect(!supervisor.log.contains("draining pid"), "no old worker was drained: \(supervisor.log)")
        #expect(lowest >= 8, "the pool fell to \(lowest) live workers")
        #expect(counts["new_failed"] as? Int == 0 && counts["keepalive_resets"] as? Int == 0, "\(counts)")
        #expect((counts["new_ok"] as? Int ?? 0) > 20, "\(counts)")
        print("parallel reload of 8 to a release dying 2 s after start: \(fresh.count) new workers started, all gone; lowest live \(lowest); load \(counts)")
    }

    @Test("with the defaults and under load, a roll of 16 bundled workers ends within 2 × (start + min_ready) + 2 s, 0 failed requests")
    func sixteenUnderLoad() throws {
        let directory = Paths.temporaryDirectory()
        let config = AcceptingReadinessTests.config(in: directory, workers: 16)
        let supervisor = try SupervisorProcess(["--config", config], worker: nil, directory: directory)
        #expect(eventually(timeout: 30) { AcceptingReadinessTests.readyCount(supervisor) == 16 }, "\(supervisor.log)")
        let before = Set(supervisor.liveWorkers)
        let load = try ReloadTests.Load(port: supervisor.port)
        usleep(500_000)
        let watcher = ReloadTests.CountWatcher(supervisor: supervisor.pid)
        let started = Date()
        let reload = supervisor.ctl(["reload", "--wait"])
        let elapsed = Date().timeIntervalSince(started)
        usleep(500_000)
        let lowest = watcher.stop()
        let counts = load.finish()
        let start = Self.longestStart(supervisor.log, skipping: 16)
        let bound = 2 * (start + 3) + 2
        #expect(reload.status == 0, "\(reload) \(supervisor.log)")
        #expect(elapsed <= bound, "the roll took \(elapsed) s, bound \(bound) s (longest start \(start) s)")
        #expect(lowest >= 16, "the pool fell to \(lowest) live workers")
        #expect(eventually { let now = Set(supervisor.liveWorkers); return now.count == 16 && now.isDisjoint(with: before) })
        #expect(counts["new_failed"] as? Int == 0 && counts["keepalive_resets"] as? Int == 0, "\(counts)")
        print("reload of 16 bundled workers (defaults: accepting, min_ready 3s, max_surge 25%) took \(String(format: "%.2f", elapsed)) s under load; longest start \(String(format: "%.3f", start)) s, bound \(String(format: "%.2f", bound)) s; lowest live \(lowest); load \(counts)")
    }

    @Test("with the defaults and under load, a roll of 4 uvicorn --fd 3 workers ends within 2 × (start + min_ready), 0 failed requests on new connections",
          .enabled(if: AcceptingReadinessTests.haveUvicorn, "needs uvicorn on PATH: make test-deps"))
    func fourUvicornUnderLoad() throws {
        let directory = Paths.temporaryDirectory()
        let supervisor = try SupervisorProcess(["--workers", "4", "--", "uvicorn", "--fd", "3", "--no-access-log", "--app-dir", Paths.fixtures, "slow_asgi:app"],
                                               worker: nil, environment: ["SLOW_STARTUP": "0"], directory: directory)
        #expect(eventually(timeout: 30) { AcceptingReadinessTests.readyCount(supervisor) == 4 }, "\(supervisor.log)")
        let before = Set(supervisor.liveWorkers)
        let load = try ReloadTests.Load(port: supervisor.port, rate: 200, keepalive: 0)
        usleep(500_000)
        let watcher = ReloadTests.CountWatcher(supervisor: supervisor.pid)
        let started = Date()
        let restart = supervisor.ctl(["restart", "all", "--wait"])
        let elapsed = Date().timeIntervalSince(started)
        usleep(500_000)
        let lowest = watcher.stop()
        let counts = load.finish()
        let start = Self.longestStart(supervisor.log, skipping: 4)
        let bound = 2 * (start + 3)
        #expect(restart.status == 0, "\(restart) \(supervisor.log)")
        #expect(elapsed <= bound, "the roll took \(elapsed) s, bound \(bound) s (slowest start \(start) s)")
        #expect(lowest >= 4, "the pool fell to \(lowest) live workers")
        #expect(eventually { Set(supervisor.liveWorkers).isDisjoint(with: before) })
        // uvicorn's own shutdown closes a connection it accepted in the instant before SIGTERM whose request it
        // had not read yet: the client sees EOF, or a reset when the request was in the socket's buffer (the
        // kernel resets a socket closed with unread data). About 1 roll in 4 on a loaded machine, and the same
        // with uvicorn alone under systemd. One such loss is uvicorn's; anything else is ours.
        let failed = counts["new_failed"] as? Int ?? -1
        let errors = counts["errors"] as? [String] ?? []
        let uvicornsRace = errors.allSatisfy { $0.contains("EOF before a complete response head (nothing received)") || $0.contains("ConnectionResetError(104") }
        #expect(failed == 0 || failed == 1 && uvicornsRace, "\(counts)")
        supervisor.signal(SIGTERM)
        _ = supervisor.waitForExit(timeout: 30)
        print("restart all of 4 uvicorn --fd 3 (defaults) took \(String(format: "%.2f", elapsed)) s under load; slowest start \(String(format: "%.3f", start)) s, bound \(String(format: "%.2f", bound)) s; lowest live \(lowest); load \(counts)")
    }

    @Test("reload --wait shows the roll advancing: one line per step into a pipe, one live line rewritten in place on a terminal")
    func progressPipedAndOnTerminal() throws {
        let directory = Paths.temporaryDirectory()
        let config = AcceptingReadinessTests.config(in: directory, workers: 8, extra: "min_ready = 1s\n")
        let recorder = try NotifyRecorder(directory: directory)
        let supervisor = try SupervisorProcess(["--config", config], worker: nil, environment: ["NOTIFY_SOCKET": recorder.socketPath], directory: directory)
        #expect(eventually(timeout: 20) { AcceptingReadinessTests.readyCount(supervisor) == 8 }, "\(supervisor.log)")

        let piped = supervisor.ctl(["reload", "--wait"])
        let lines = piped.out.split(separator: "\n").map(String.init)
        #expect(piped.status == 0, "\(piped)")
        #expect(lines.last?.hasPrefix("reload complete: 8 workers replaced") == true, "\(lines)")
        let steps = lines.dropLast()
        #expect(steps.first == "rolling: 0/8 new, 2 starting, 0 settling, 0 failed", "\(lines)")
        // Every slot took over: then the reload watches the new workers take connections (backlog_wait).
        #expect(steps.last == "rolling: 8/8 new, checking that they take connections", "\(lines)")
        #expect(steps.dropLast().allSatisfy { $0.hasPrefix("rolling: ") && $0.hasSuffix(", 0 failed") }, "\(lines)")
        #expect(Set(steps).count == steps.count, "one line per step, none repeated: \(lines)")
        #expect(steps.contains { !$0.hasPrefix("rolling: 0/8 new") }, "slots taking over shown: \(lines)")
        #expect(steps.contains { !$0.contains(" 0 settling") }, "settling shown: \(lines)")
        // `systemctl reload` (and `systemctl status`) see the same line through STATUS=.
        let statuses = recorder.messages.filter { $0.hasPrefix("STATUS=rolling: ") }
        #expect(statuses.contains("STATUS=rolling: 0/8 new, 2 starting, 0 settling, 0 failed; 8/8 workers ready"), "\(recorder.messages)")
        #expect(Set(statuses).count > 4, "STATUS= follows the roll: \(statuses)")

        let terminal = runProgram("/usr/bin/env", ["python3", Paths.fixtures + "/pty_run.py", Paths.products + "/hyperglassctl",
                                                   "--socket", supervisor.controlSocket, "reload", "--wait"])
        #expect(terminal.status == 0, "\(terminal)")
        let screen = terminal.out
        guard let end = screen.range(of: "reload complete: 8 workers replaced") else {
            Issue.record("no summary on the terminal: \(screen.debugDescription)")
            return
        }
        let live = screen[..<end.lowerBound]
        #expect(live.components(separatedBy: "\r\u{1B}[K").count > 4, "the line is rewritten at each step: \(screen.debugDescription)")
        #expect(!live.contains("\n"), "no new line until the end: \(screen.debugDescription)")
        #expect(screen.components(separatedBy: "reload complete").count == 2, "the outcome once: \(screen.debugDescription)")
        #expect(live.contains("rolling: 0/8 new, 2 starting"), "\(screen.debugDescription)")
    }
}
