import Foundation
import Glibc
import Testing

/// The supervision core end to end: the real `hyperglass` binary, real worker processes, real signals.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct SupervisionTests {
    @Test("N workers start, each in its own process group, with the sockets passed as socket activation does")
    func workersGetSocketActivation() throws {
        let supervisor = try SupervisorProcess(["--workers", "3"])
        #expect(eventually { supervisor.liveWorkers.count == 3 && supervisor.startedWorkers.count == 3 }, "\(supervisor.log)")
        for record in supervisor.records where record.contains(" started ") {
            let pid = String(record.prefix { $0 != " " })
            #expect(record.contains("listen_pid=\(pid) "), "LISTEN_PID must be the worker's own pid: \(record)")
            #expect(record.contains("fds=1 names=http "), "\(record)")
            #expect(record.contains("pgid=\(pid) "), "each worker leads its own process group: \(record)")
            // Its own notify socket, in the supervisor's private directory beside the control socket.
            #expect(record.contains("notify=\(supervisor.directory)/workers."), "\(record)")
            #expect(record.contains("/notify-"), "\(record)")
        }
        let ids = Set(supervisor.records.compactMap { $0.split(separator: " ").first { $0.hasPrefix("id=") } })
        #expect(ids == ["id=0", "id=1", "id=2"])
        // Every worker accepts on the inherited fd 3: enough requests reach more than one of them.
        var answeredBy: Set<String> = []
        for _ in 0..<30 {
            guard let body = httpGet(port: supervisor.port) else { continue }
            #expect(body.contains("\"listen_pid\""))
            answeredBy.insert(body)
        }
        #expect(!answeredBy.isEmpty, "no worker answered on the shared socket: \(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
        #expect(supervisor.noWorkerLeft)
    }

    @Test("a SIGKILLed worker is replaced within a second and the others are untouched")
    func killedWorkerIsReplaced() throws {
        let supervisor = try SupervisorProcess(["--workers", "3"])
        #expect(eventually { supervisor.liveWorkers.count == 3 })
        let before = supervisor.liveWorkers
        let victim = before[1]
        kill(victim, SIGKILL)
        let killedAt = Date()
        #expect(eventually(timeout: 3) { supervisor.liveWorkers.count == 3 && !supervisor.liveWorkers.contains(victim) })
        #expect(Date().timeIntervalSince(killedAt) < 1.0, "replacement took too long")
        #expect(Set(supervisor.liveWorkers).isSuperset(of: before.filter { $0 != victim }), "other workers must be untouched")
        #expect(supervisor.log.contains("exited unexpectedly: killed by SIGKILL"))
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }

    @Test("a worker that exits at once is restarted ever more slowly, as the backoff says")
    func failingWorkerBacksOff() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--backoff-initial", "200ms", "--backoff-max", "800ms"], worker: ["--exit", "3"])
        #expect(eventually(timeout: 20) { supervisor.startedWorkers.count >= 6 }, "\(supervisor.log)")
        let starts = supervisor.log.split(separator: "\n").filter { $0.contains("restarting worker 0 in") }
        // Immediate, then 200ms, 400ms, 800ms (capped), 800ms, each ±10 %.
        let delays = starts.compactMap { line -> Double? in
            guard let range = line.range(of: "in ") else { return nil }
            let text = line[range.upperBound...]
            return text.hasSuffix("ms") ? Double(text.dropLast(2)).map { $0 / 1000 } : Double(text.dropLast(1))
        }
        #expect(delays.count >= 4, "\(supervisor.log)")
        let expected = [0.2, 0.4, 0.8, 0.8]
        for (delay, want) in zip(delays, expected) {
            #expect(abs(delay - want) <= want * 0.1 + 0.001, "delay \(delay) should be \(want) ± 10 %")
        }
        #expect(supervisor.log.contains("exit status 3 before ready") || supervisor.log.contains("exit status 3"))
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
        #expect(supervisor.noWorkerLeft)
    }

    @Test("SIGTERM drains the workers and exits 0 well within the graceful timeout, leaving no process")
    func sigtermDrains() throws {
        let supervisor = try SupervisorProcess(["--workers", "4", "--graceful-timeout", "10s"])
        #expect(eventually { supervisor.liveWorkers.count == 4 && supervisor.startedWorkers.count == 4 })
        let workers = supervisor.liveWorkers
        let start = Date()
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
        #expect(Date().timeIntervalSince(start) < 5)
        for worker in workers {
            #expect(supervisor.records.contains("\(worker) signal 15"), "worker \(worker) must have received SIGTERM")
        }
        #expect(supervisor.noWorkerLeft)
    }

    @Test("SIGQUIT drains like SIGTERM: the workers get SIGTERM and the supervisor exits 0")
    func sigquitDrains() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--graceful-timeout", "10s"])
        #expect(eventually { supervisor.liveWorkers.count == 2 && supervisor.startedWorkers.count == 2 })
        let workers = supervisor.liveWorkers
        supervisor.signal(SIGQUIT)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
        for worker in workers {
            #expect(supervisor.records.contains("\(worker) signal 15"), "worker \(worker) must have received SIGTERM")
        }
        #expect(supervisor.noWorkerLeft)
    }

    @Test("a worker that ignores SIGTERM is killed right after the graceful timeout")
    func stubbornWorkerIsKilled() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--graceful-timeout", "1s"], worker: ["--ignore-term"])
        #expect(eventually { supervisor.liveWorkers.count == 2 && supervisor.startedWorkers.count == 2 })
        let start = Date()
        supervisor.signal(SIGTERM)
        let status = supervisor.waitForExit(timeout: 5)
        let elapsed = Date().timeIntervalSince(start)
        #expect(status == 0)
        #expect(elapsed >= 0.95 && elapsed < 2.0, "took \(elapsed)s for a 1s graceful timeout")
        #expect(supervisor.log.contains("outlived the graceful timeout"))
        #expect(supervisor.noWorkerLeft)
    }

    @Test("a second SIGTERM kills the workers at once")
    func secondSignalSkipsTheWait() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--graceful-timeout", "30s"], worker: ["--ignore-term"])
        #expect(eventually { supervisor.liveWorkers.count == 2 && supervisor.startedWorkers.count == 2 })
        supervisor.signal(SIGTERM)
        #expect(eventually { supervisor.records.filter { $0.contains("signal 15") }.count == 2 })
        let start = Date()
        supervisor.signal(SIGINT)
        #expect(supervisor.waitForExit(timeout: 5) == 0)
        #expect(Date().timeIntervalSince(start) < 1.5)
        #expect(supervisor.noWorkerLeft)
    }

    @Test("systemd hears READY=1 once the pool is ready, STATUS= with the count, and STOPPING=1")
    func notifiesSystemd() throws {
        let directory = Paths.temporaryDirectory()
        let recorder = try NotifyRecorder(directory: directory)
        let supervisor = try SupervisorProcess(["--workers", "2", "--readiness", "notify"], worker: ["--notify", "--delay", "0.5"],
                                               environment: ["NOTIFY_SOCKET": recorder.socketPath], directory: directory)
        #expect(eventually { recorder.messages.contains("READY=1") }, "\(recorder.messages) \(supervisor.log)")
        let ready = recorder.messages.firstIndex(of: "READY=1")!
        #expect(recorder.messages[..<ready].contains { $0.hasPrefix("STATUS=0/2 workers ready") || $0.hasPrefix("STATUS=1/2 workers ready") },
                "before READY=1 the status must show the pool filling: \(recorder.messages)")
        #expect(eventually { recorder.messages.contains("STATUS=2/2 workers ready") }, "\(recorder.messages)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
        #expect(recorder.messages.contains { $0.hasPrefix("STOPPING=1") }, "\(recorder.messages)")
        #expect(recorder.messages.contains("STATUS=draining 2 workers"), "\(recorder.messages)")
        // READY=1 must not arrive before the workers said READY=1 themselves.
        #expect(recorder.messages.filter { $0 == "READY=1" }.count == 1)
    }

    @Test("SIGTTIN and SIGTTOU add and remove one worker")
    func ttinTtouScale() throws {
        let supervisor = try SupervisorProcess(["--workers", "2"])
        #expect(eventually { supervisor.liveWorkers.count == 2 })
        supervisor.signal(SIGTTIN)
        #expect(eventually { supervisor.liveWorkers.count == 3 && supervisor.startedWorkers.count == 3 })
        let highest = supervisor.records.first { $0.contains(" id=2 ") }.map { Int32($0.prefix { $0 != " " })! }
        // Signals of one kind coalesce while pending: wait for each to take effect before the next.
        supervisor.signal(SIGTTOU)
        #expect(eventually { supervisor.liveWorkers.count == 2 })
        supervisor.signal(SIGTTOU)
        #expect(eventually { supervisor.liveWorkers.count == 1 }, "\(supervisor.log)")
        if let highest { #expect(supervisor.records.contains("\(highest) signal 15"), "the removed worker is drained with SIGTERM") }
        supervisor.signal(SIGTTOU)
        usleep(300_000)
        #expect(supervisor.liveWorkers.count == 1, "never below one worker")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }

    @Test("SIGUSR1 and SIGALRM, sent out of habit, are logged and change nothing; SIGUSR2 upgrades in place: same pid, same workers, no drain")
    func habitualSignalsDoNotKill() throws {
        let supervisor = try SupervisorProcess(["--workers", "2"])
        #expect(eventually { supervisor.liveWorkers.count == 2 })
        let workers = supervisor.liveWorkers
        for (signal, name) in [(SIGUSR1, "SIGUSR1"), (SIGALRM, "SIGALRM")] {
            supervisor.signal(signal)
            #expect(eventually { supervisor.log.contains("\(name) ignored: ") }, "\(name): \(supervisor.log)")
        }
        // Refused while the pool starts (as `hyperglassctl upgrade`), with the reason.
        #expect(eventually(timeout: 10) { supervisor.ctl(["health", "--ready-share", "1"]).status == 0 }, "\(supervisor.log)")
        supervisor.signal(SIGUSR2)
        #expect(eventually(timeout: 10) { supervisor.log.contains("upgraded from ") }, "\(supervisor.log)")
        #expect(supervisor.log.contains("SIGUSR2: upgrading in place to the installed program"), "\(supervisor.log)")
        #expect(supervisor.log.contains(": pid \(supervisor.pid) kept, 2 of 2 workers kept"), "\(supervisor.log)")
        #expect(supervisor.process.isRunning)
        #expect(supervisor.ctl(["ping"]).status == 0)
        #expect(supervisor.liveWorkers == workers, "no worker was drained or replaced")
        #expect(!supervisor.records.contains { $0.hasSuffix(" signal 15") })
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }

    @Test("crash_loop = exit stops the supervisor with status 1 so systemd's Restart= takes over")
    func crashLoopExit() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--crash-loop", "exit", "--crash-loop-threshold", "3", "--backoff-initial", "50ms"],
                                               worker: ["--exit", "1"])
        #expect(supervisor.waitForExit(timeout: 10) == 1, "\(supervisor.log)")
        #expect(supervisor.log.contains("crash_loop = exit"))
        #expect(supervisor.noWorkerLeft)
    }

    @Test("a bad configuration file exits 78 naming the file and line")
    func badConfigExits78() throws {
        let directory = Paths.temporaryDirectory()
        let config = directory + "/supervisor.conf"
        try "[supervisor]\nwrokers = 4\n".write(toFile: config, atomically: true, encoding: .utf8)
        let supervisor = try SupervisorProcess(["--config", config], worker: nil, directory: directory)
        #expect(supervisor.waitForExit(timeout: 5) == 78)
        #expect(supervisor.log.contains("supervisor.conf:2: unknown key 'wrokers'; did you mean 'workers'?"), "\(supervisor.log)")
    }
}
