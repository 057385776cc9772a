import Foundation
import Glibc
import Testing

/// `hyperglassctl upgrade`: the real supervisor execs a real second binary (a copy of itself) in place.
@Suite("In-place upgrade", .serialized, .timeLimit(.minutes(2)))
struct UpgradeTests {
    /// A supervisor of `workers` bundled workers (accepting readiness, no settling) and a copy of its binary.
    private func start(workers: Int = 3, environment: [String: String] = [:],
                       command: String = "\(Paths.products)/hyperglass-worker") throws -> (SupervisorProcess, copy: String) {
        let directory = Paths.temporaryDirectory()
        let config = directory + "/supervisor.conf"
        let text = "[supervisor]\nworkers = \(workers)\n\n[worker]\ncommand = \(command)\nmin_ready = 0s\n"
        FileManager.default.createFile(atPath: config, contents: Data(text.utf8))
        let copy = directory + "/hyperglass-copy"
        try FileManager.default.copyItem(atPath: Paths.hyperglass, toPath: copy)
        let supervisor = try SupervisorProcess(["--config", config], worker: nil, environment: environment, directory: directory)
        #expect(eventually(timeout: 10) { supervisor.ctl(["status", "--json"]).out.contains("\"ready\":\(workers)") }, "\(supervisor.log)")
        return (supervisor, copy)
    }

    private func script(_ directory: String, _ name: String, _ body: String) -> String {
        let path = directory + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data("#!/bin/sh\n\(body)\n".utf8), attributes: [.posixPermissions: 0o755])
        return path
    }

    private func exe(_ pid: Int32) -> String { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? "" }

    /// Pings the supervisor back to back on a thread; the slowest reply and the failures, when stopped.
    final class Pinger: @unchecked Sendable {
        private let lock = NSLock()
        private var running = true
        private(set) var slowest = 0.0
        private(set) var failures: [String] = []
        private(set) var count = 0
        private let done = DispatchSemaphore(value: 0)

        init(_ supervisor: SupervisorProcess) {
            let socket = supervisor.controlSocket
            Thread { [self] in
                while lock.withLock({ running }) {
                    let started = Date()
                    let reply = runProgram(Paths.products + "/hyperglassctl", ["--socket", socket, "ping"])
                    let took = Date().timeIntervalSince(started)
                    lock.withLock {
                        count += 1
                        slowest = max(slowest, took)
                        if reply.status != 0 { failures.append(reply.err) }
                    }
                }
                done.signal()
            }.start()
        }

        func stop() -> (slowest: Double, failures: [String], count: Int) {
            lock.withLock { running = false }
            _ = done.wait(timeout: .now() + 15)
            return lock.withLock { (slowest, failures, count) }
        }
    }

    @Test("10 upgrades alternating two binaries under load: same pid, same workers, 0 failed requests or pings, fds flat")
    func alternatingUpgradesUnderLoad() throws {
        let recorderDirectory = Paths.temporaryDirectory()
        let recorder = try NotifyRecorder(directory: recorderDirectory)
        // A systemd watchdog of 4 s (pings every 2 s): ten upgrades 0.1 s apart must not starve it.
        let (supervisor, copy) = try start(environment: ["NOTIFY_SOCKET": recorder.socketPath, "WATCHDOG_USEC": "4000000"])
        let workers = Set(supervisor.liveWorkers)
        #expect(workers.count == 3)
        let fdsBefore = supervisor.openFDs
        // A follower of the event stream: its connection is handed over with every upgrade.
        let events = Process()
        events.executableURL = URL(fileURLWithPath: Paths.products + "/hyperglassctl")
        events.arguments = ["--socket", supervisor.controlSocket, "events"]
        let eventsPath = supervisor.directory + "/events.jsonl"
        _ = FileManager.default.createFile(atPath: eventsPath, contents: nil)
        events.standardOutput = FileHandle(forWritingAtPath: eventsPath)
        try events.run()
        defer { kill(events.processIdentifier, SIGKILL); events.waitUntilExit() }
        #expect(eventually { supervisor.openFDs == fdsBefore + 1 })
        let load = try ReloadTests.Load(port: supervisor.port)
        let pinger = Pinger(supervisor)
        var fds: [Int] = []
        var replies: [String] = []
        for round in 0..<10 {
            let target = round % 2 == 0 ? copy : Paths.hyperglass
            let upgrade = supervisor.ctl(["upgrade", "--wait", target])
            #expect(upgrade.status == 0, "\(upgrade) \(supervisor.log)")
            replies.append(upgrade.out)
            #expect(exe(supervisor.pid) == target)
            fds.append(supervisor.openFDs)
            usleep(100_000)
        }
        let pings = pinger.stop()
        let counts = load.finish()
        #expect(supervisor.process.isRunning)
        #expect(Set(supervisor.liveWorkers) == workers, "workers before \(workers), now \(supervisor.liveWorkers)")
        #expect(supervisor.startedWorkers.count == 3 || supervisor.log.components(separatedBy: " started (pid").count == 4, "\(supervisor.log)")
        #expect(replies.allSatisfy { $0.hasPrefix("upgraded from 0.1.0 to 0.1.0 in ") && $0.contains("pid \(supervisor.pid) kept, 3 of 3 workers kept") }, "\(replies)")
        #expect(supervisor.log.components(separatedBy: "upgraded from 0.1.0 to 0.1.0 in ").count == 11)
        #expect(eventually { supervisor.openFDs == fdsBefore + 1 }, "open fds before \(fdsBefore) (and the follower), after \(supervisor.openFDs)")
        let followed = ((try? String(contentsOfFile: eventsPath, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(followed.filter { $0.contains("\"event\":\"upgraded\"") }.count == 10, "\(followed)")
        #expect(events.isRunning)
        #expect(pings.failures.isEmpty, "\(pings.failures)")
        #expect(counts["new_failed"] as? Int == 0 && counts["keepalive_resets"] as? Int == 0, "\(counts)")
        #expect((counts["new_ok"] as? Int ?? 0) > 50, "\(counts)")
        let messages = recorder.messages
        #expect(messages.filter { $0.hasPrefix("RELOADING=1|MONOTONIC_USEC=") }.count == 10, "\(messages)")
        #expect(messages.filter { $0.hasPrefix("MAINPID=\(supervisor.pid)|READY=1|WATCHDOG=1|STATUS=upgraded from") }.count == 10, "\(messages)")
        let took = replies.compactMap { $0.split(separator: " ").dropFirst(6).first.flatMap { Int($0) } }
        print("10 upgrades: exec to READY \(took) ms; slowest ping \(Int(pings.slowest * 1000)) ms of \(pings.count); fds \(fds); load \(counts)")
    }

    @Test("a uvicorn --fd 3 pool is upgraded in place under load: same workers, 0 failed requests",
          .enabled(if: AcceptingReadinessTests.haveUvicorn, "needs uvicorn on PATH"))
    func uvicornPool() throws {
        let (supervisor, copy) = try start(workers: 2, command: "uvicorn --fd 3 --app-dir \(Paths.fixtures) slow_asgi:app")
        let workers = Set(supervisor.liveWorkers)
        #expect(workers.count == 2)
        let load = try ReloadTests.Load(port: supervisor.port)
        usleep(300_000)
        for round in 0..<4 {
            let upgrade = supervisor.ctl(["upgrade", "--wait", round % 2 == 0 ? copy : Paths.hyperglass])
            #expect(upgrade.status == 0 && upgrade.out.contains("2 of 2 workers kept"), "\(upgrade) \(supervisor.log)")
            usleep(200_000)
        }
        let counts = load.finish()
        #expect(Set(supervisor.liveWorkers) == workers)
        #expect(counts["new_failed"] as? Int == 0 && counts["keepalive_resets"] as? Int == 0, "\(counts)")
        #expect((counts["new_ok"] as? Int ?? 0) > 50, "\(counts)")
    }

    @Test("status and /metrics go on across an upgrade: uptime, start time, spawn and failure counters")
    func countersCarryOn() throws {
        let (supervisor, copy) = try start(workers: 2)
        let victim = try #require(supervisor.liveWorkers.first)
        kill(victim, SIGKILL)
        #expect(eventually(timeout: 10) { supervisor.ctl(["status", "--json"]).out.contains("\"ready\":2") && !supervisor.liveWorkers.contains(victim) })
        usleep(1_200_000)
        func metric(_ name: String) -> String? {
            supervisor.ctl(["metrics"]).out.split(separator: "\n").first { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }.map(String.init)
        }
        let before = (spawns: metric("hyperglass_worker_spawns_total"), start: metric("process_start_time_seconds"))
        #expect(before.spawns == "hyperglass_worker_spawns_total 3", "\(supervisor.ctl(["metrics"]).out)")
        #expect(supervisor.ctl(["upgrade", "--wait", copy]).status == 0)
        #expect(metric("hyperglass_worker_spawns_total") == before.spawns)
        let start = (before.start?.split(separator: " ").last).flatMap { Double($0) } ?? 0
        let after = (metric("process_start_time_seconds")?.split(separator: " ").last).flatMap { Double($0) } ?? 0
        #expect(abs(after - start) < 0.05, "process_start_time_seconds \(start) before, \(after) after")
        let uptime = supervisor.ctl(["status", "--json"]).out
        #expect(!uptime.contains("\"uptime_seconds\":0,") && !uptime.contains("\"uptime_seconds\":0.0"), "\(uptime)")
    }

    /// Probes `/livez` back to back on a thread, counting answers and failures, until stopped.
    final class LivezProber: @unchecked Sendable {
        private let lock = NSLock()
        private var running = true
        private(set) var answered = 0
        private(set) var failed = 0
        private let done = DispatchSemaphore(value: 0)

        init(port: Int) {
            Thread { [self] in
                while lock.withLock({ running }) {
                    let ok = ObservabilityTests.get(port: port, path: "/livez", timeout: 2)?.status == 200
                    lock.withLock { if ok { answered += 1 } else { failed += 1 } }
                }
                done.signal()
            }.start()
        }

        func stop() -> (answered: Int, failed: Int) {
            lock.withLock { running = false }
            _ = done.wait(timeout: .now() + 10)
            return lock.withLock { (answered, failed) }
        }
    }

    @Test("metrics_bind's listener is handed over too: /livez probed back to back across 3 upgrades is always answered")
    func metricsListenerCarried() throws {
        let port = freePort()
        let (supervisor, copy) = try start(workers: 2, environment: ["HYPERGLASS_METRICS_BIND": "127.0.0.1:\(port)"])
        #expect(eventually(timeout: 5) { ObservabilityTests.get(port: port, path: "/livez")?.status == 200 }, "\(supervisor.log)")
        let prober = LivezProber(port: port)
        for binary in [copy, Paths.hyperglass, copy] {
            #expect(supervisor.ctl(["upgrade", "--wait", binary]).status == 0, "\(supervisor.log)")
            usleep(100_000)
        }
        let seen = prober.stop()
        // Bound again by the new image (before), probes in its first milliseconds were refused.
        #expect(seen.failed == 0 && seen.answered > 10, "\(seen.answered) answered, \(seen.failed) failed")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0)
    }

    @Test("a worker killed while the supervisor execs is reaped by the new image, reported once and replaced")
    func workerKilledInTheGap() throws {
        let (supervisor, _) = try start()
        let before = supervisor.liveWorkers.sorted()
        let victim = try #require(before.first)
        // The new program is a script that kills the worker, waits (builtins only: a shell that forks
        // would reap our zombie) until it is a zombie, then execs the real binary in the same process.
        let gap = script(supervisor.directory, "gap.sh", """
            if [ "$1" = start ]; then
              kill -9 \(victim); i=0
              while [ $i -lt 100000 ]; do read s < /proc/\(victim)/stat; case "$s" in *") Z "*) break;; esac; i=$((i+1)); done
            fi
            exec \(Paths.hyperglass) "$@"
            """)
        let upgrade = supervisor.ctl(["upgrade", "--wait", gap])
        #expect(upgrade.status == 0, "\(upgrade) \(supervisor.log)")
        #expect(eventually(timeout: 10) { supervisor.liveWorkers.count == 3 && !supervisor.liveWorkers.contains(victim) }, "\(supervisor.log)")
        #expect(Set(supervisor.liveWorkers).isSuperset(of: before.dropFirst()))
        let exits = supervisor.log.split(separator: "\n").filter { $0.contains("(pid \(victim))") && ($0.contains("killed by") || $0.contains("vanished")) }
        #expect(exits.count == 1, "\(supervisor.log)")
        // Reaped with its real status by the new image, after the takeover line.
        let log = supervisor.log
        let takeover = try #require(log.range(of: "upgraded from"), "\(log)")
        #expect(log[takeover.upperBound...].contains("(pid \(victim)) exited unexpectedly: killed by SIGKILL"), "\(log)")
        #expect(eventually(timeout: 10) { supervisor.ctl(["status", "--json"]).out.contains("\"ready\":3") })
    }

    @Test("a SIGTERM that arrives during the exec waits, blocked, for the new image, which drains and exits 0")
    func signalInTheGap() throws {
        let (supervisor, _) = try start(workers: 2)
        let workers = supervisor.liveWorkers
        // The shell that runs in our process for a moment inherits the blocked mask; the signal stays pending.
        let gap = script(supervisor.directory, "term.sh", """
            if [ "$1" = start ]; then kill -TERM $$; fi
            exec \(Paths.hyperglass) "$@"
            """)
        _ = supervisor.ctl(["upgrade", gap])
        #expect(supervisor.waitForExit(timeout: 15) == 0, "\(supervisor.log)")
        #expect(supervisor.log.contains("upgraded from"), "\(supervisor.log)")
        #expect(workers.allSatisfy { !ProcFS.isAlive($0) })
        #expect(supervisor.noWorkerLeft)
    }

    @Test("a binary that cannot take over is refused with the reason, and nothing changes")
    func preflightRefusals() throws {
        // A systemd watchdog of 4 s: a hung check (given 5 s) runs while the loop goes on pinging it.
        let (supervisor, _) = try start(workers: 2, environment: ["WATCHDOG_USEC": "4000000"])
        let workers = Set(supervisor.liveWorkers)
        let garbage = script(supervisor.directory, "garbage", "")
        FileManager.default.createFile(atPath: garbage, contents: Data("\u{7F}ELF garbage".utf8), attributes: [.posixPermissions: 0o755])
        let refused = script(supervisor.directory, "exits1.sh", "echo 'something is wrong' >&2; exit 1")
        let hung = script(supervisor.directory, "hung.sh", "exec sleep 60")
        let older = script(supervisor.directory, "older.sh", "echo 'hyperglass 0.0.9 cannot take over: state version 2 is newer than this build reads (1-1)'; exit 1")
        for (path, reason) in [(garbage, "Exec format error"), (refused, "something is wrong"), (older, "state version 2 is newer"),
                               (supervisor.directory + "/missing", "No such file or directory"), (hung, "did not answer within 5s")] {
            let upgrade = supervisor.ctl(["upgrade", "--wait", path])
            #expect(upgrade.status == 1 && upgrade.err.contains(reason) && upgrade.err.contains("nothing changed"), "\(upgrade)")
            #expect(exe(supervisor.pid) == Paths.hyperglass)
        }
        // The real binary's check mode: a newer state version is refused, the current one accepted.
        let newer = runProgram(Paths.hyperglass, ["upgrade-check", "--state-version", "999"])
        #expect(newer.status == 1 && newer.out.contains("state version 999 is newer than this build reads"), "\(newer)")
        let current = runProgram(Paths.hyperglass, ["upgrade-check", "--state-version", "2"])
        #expect(current.status == 0 && current.out.contains("can take over state version 2"), "\(current)")
        // Not during a roll.
        let restart = supervisor.ctl(["restart", "all"])
        #expect(restart.status == 0, "\(restart)")
        let during = supervisor.ctl(["upgrade", "--wait", Paths.hyperglass])
        #expect(during.status == 1 && during.err.contains("restart is in progress"), "\(during)")
        // The restart went on (every old worker replaced; two ready and none besides midway through the roll
        // is not its end), and the upgrade did not happen.
        #expect(eventually(timeout: 15) {
            supervisor.ctl(["status", "--json"]).out.contains("\"ready\":2") && supervisor.liveWorkers.count == 2
                && workers.isDisjoint(with: supervisor.liveWorkers)
        }, "\(supervisor.log)")
        #expect(supervisor.process.isRunning)
        #expect(exe(supervisor.pid) == Paths.hyperglass)
    }

    @Test("an execve that fails after the preflight leaves the supervisor running as before")
    func execFailureCarriesOn() throws {
        let (supervisor, _) = try start(workers: 2)
        let workers = Set(supervisor.liveWorkers)
        // Passes the check, then takes away its own execute permission: the execve itself fails (EACCES).
        let vanishing = script(supervisor.directory, "vanishing.sh", """
            if [ "$1" = upgrade-check ]; then chmod -x "$0"; fi
            exec \(Paths.hyperglass) "$@"
            """)
        let upgrade = supervisor.ctl(["upgrade", "--wait", vanishing])
        #expect(upgrade.status == 1 && upgrade.err.contains("Permission denied") && upgrade.err.contains("carrying on"), "\(upgrade) \(supervisor.log)")
        #expect(supervisor.ctl(["ping"]).status == 0)
        #expect(Set(supervisor.liveWorkers) == workers)
        let again = supervisor.ctl(["upgrade", "--wait", Paths.hyperglass])
        #expect(again.status == 0, "\(again) \(supervisor.log)")
        #expect(Set(supervisor.liveWorkers) == workers)
    }

    @Test("a start whose state fd is not a sealed memfd refuses to take over: exit 1, no worker started")
    func forgedStateRefused() throws {
        let supervisor = try SupervisorProcess(["--workers", "1"], environment: ["HYPERGLASS_UPGRADE_STATE_FD": "0"])
        #expect(supervisor.waitForExit(timeout: 5) == 1, "\(supervisor.log)")
        #expect(supervisor.log.contains("cannot take over: fd 0 (HYPERGLASS_UPGRADE_STATE_FD) is not a sealed memfd"), "\(supervisor.log)")
        #expect(supervisor.startedWorkers.isEmpty)
    }

    @Test("after an upgrade the workers still die with a SIGKILLed supervisor (PR_SET_PDEATHSIG survived the exec)")
    func deathSignalSurvivesExec() throws {
        let (supervisor, copy) = try start(workers: 2)
        let workers = supervisor.liveWorkers
        #expect(supervisor.ctl(["upgrade", "--wait", copy]).status == 0)
        #expect(Set(supervisor.liveWorkers) == Set(workers))
        supervisor.signal(SIGKILL)
        #expect(supervisor.waitForExit(timeout: 5) != nil)
        #expect(eventually(timeout: 5) { workers.allSatisfy { !ProcFS.isAlive($0) } }, "workers \(workers) outlived the supervisor")
    }
}
