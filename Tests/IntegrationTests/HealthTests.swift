import Foundation
import Glibc
import Testing

/// Worker watchdog, HTTP probes, ready timeout, memory ceiling and systemd's watchdog, with real processes.
@Suite("Health", .timeLimit(.minutes(2)))
struct HealthTests {
    /// The slot's current worker, from `status --json`.
    static func workerPid(_ supervisor: SupervisorProcess, slot: Int) -> Int32? {
        let out = supervisor.ctl(["status", "--json"]).out
        guard let json = try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
              let workers = json["workers"] as? [[String: Any]],
              let entry = workers.first(where: { ($0["id"] as? Int) == slot && ($0["state"] as? String) == "ready" }) else { return nil }
        return (entry["pid"] as? Int).map(Int32.init)
    }

    @Test("a worker that pings its watchdog and then freezes (SIGSTOP) is replaced within watchdog + 1 s")
    func frozenWorkerReplaced() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--readiness", "notify", "--watchdog", "1s"],
                                               worker: ["--notify", "--ping", "0.2"])
        #expect(eventually { Self.workerPid(supervisor, slot: 0) != nil && Self.workerPid(supervisor, slot: 1) != nil }, "\(supervisor.log)")
        let frozen = Self.workerPid(supervisor, slot: 0)!, other = Self.workerPid(supervisor, slot: 1)!
        usleep(500_000)
        kill(frozen, SIGSTOP)
        let stoppedAt = Date()
        #expect(eventually(timeout: 4) { (Self.workerPid(supervisor, slot: 0) ?? frozen) != frozen }, "\(supervisor.log)")
        let replacedAfter = Date().timeIntervalSince(stoppedAt)
        #expect(replacedAfter < 2.0, "replaced after \(replacedAfter) s")
        #expect(supervisor.log.contains("worker 0 (pid \(frozen)): watchdog missed: no WATCHDOG=1 for 1s; sending SIGABRT"))
        #expect(eventually { !ProcFS.isAlive(frozen) }, "the frozen worker was not ended")
        #expect(Self.workerPid(supervisor, slot: 1) == other, "the healthy worker was left alone")
    }

    @Test("a worker whose /health turns 500 is replaced after the threshold; its replacement serves before it is asked to stop")
    func failingProbesReplaced() throws {
        let directory = Paths.temporaryDirectory()
        let supervisor = try SupervisorProcess(["--workers", "2", "--readiness", "notify", "--health-path", "/health",
                                                "--health-interval", "200ms", "--health-failures", "3", "--health-grace", "0"],
                                               worker: ["--notify", "--delay", "0.3", "--health-dir", directory], directory: directory)
        #expect(eventually { Self.workerPid(supervisor, slot: 0) != nil && Self.workerPid(supervisor, slot: 1) != nil }, "\(supervisor.log)")
        let status = supervisor.ctl(["status"]).out
        #expect(status.contains("ok, probe HTTP 200"), "\(status)")
        let sick = Self.workerPid(supervisor, slot: 0)!
        FileManager.default.createFile(atPath: directory + "/unhealthy-\(sick)", contents: nil)
        #expect(eventually(timeout: 5) { (Self.workerPid(supervisor, slot: 0) ?? sick) != sick }, "\(supervisor.log)")
        let replacement = Self.workerPid(supervisor, slot: 0)!
        #expect(supervisor.log.contains("worker 0 (pid \(sick)) is unhealthy: 3/3 health probes failed (last: HTTP 500); starting its replacement"), "\(supervisor.log)")
        #expect(supervisor.log.contains("worker 0: generation 2 (pid \(replacement)) ready; draining pid \(sick)"), "\(supervisor.log)")
        // The unhealthy one got SIGTERM only after its replacement said READY=1 (0.3 s after it started).
        let records = supervisor.records
        let started = records.firstIndex { $0.hasPrefix("\(replacement) started") }
        let signalled = records.firstIndex { $0.hasPrefix("\(sick) signal 15") }
        #expect(started != nil && signalled != nil && started! < signalled!, "\(records)")
        #expect(eventually { !ProcFS.isAlive(sick) })
        let table = supervisor.ctl(["status"]).out
        #expect(table.contains("3/3 health probes failed (last: HTTP 500)"), "the reason stays in status: \(table)")
    }

    @Test("the bundled worker needs no change for probes: readiness http makes it ready at its first good probe on its health socket")
    func bundledWorkerProbed() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--readiness", "http", "--health-path", "/health",
                                                "--health-interval", "200ms"], worker: nil)
        #expect(eventually { Self.workerPid(supervisor, slot: 0) != nil && Self.workerPid(supervisor, slot: 1) != nil }, "\(supervisor.log)")
        #expect(supervisor.log.contains("ready (pid"), "\(supervisor.log)")
        #expect(supervisor.log.contains("first good probe"), "\(supervisor.log)")
        #expect(eventually { supervisor.ctl(["status"]).out.components(separatedBy: "ok, probe HTTP 200").count == 3 }, "\(supervisor.ctl(["status"]).out)")
        // Each worker was given its own health socket, named as such.
        let environ = (try? String(contentsOfFile: "/proc/\(Self.workerPid(supervisor, slot: 0)!)/environ", encoding: .utf8)) ?? ""
        #expect(environ.contains("LISTEN_FDNAMES=http:health"), "\(environ.split(separator: "\0").filter { $0.hasPrefix("LISTEN") })")
    }

    @Test("a probe waiting on a frozen worker costs the supervisor no CPU: it sleeps until the answer or the timeout")
    func hangingProbeDoesNotSpin() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--health-path", "/health", "--health-interval", "300ms",
                                                "--health-timeout", "3s", "--health-failures", "100"], worker: nil)
        #expect(eventually { Self.workerPid(supervisor, slot: 0) != nil && supervisor.ctl(["status"]).out.contains("probe HTTP 200") })
        let frozen = Self.workerPid(supervisor, slot: 0)!
        kill(frozen, SIGSTOP)
        defer { kill(frozen, SIGCONT) }
        usleep(500_000)  // a probe of the frozen worker is now in flight
        func cpuTicks() -> Int {
            let fields = ((try? String(contentsOfFile: "/proc/\(supervisor.pid)/stat", encoding: .utf8)) ?? "")
                .split(separator: ")").last?.split(separator: " ") ?? []
            return fields.count > 13 ? (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) : 0
        }
        let before = cpuTicks()
        usleep(2_000_000)
        let used = cpuTicks() - before
        #expect(used < 30, "the supervisor used \(used) clock ticks in 2 s while a probe waited")
    }

    @Test("a worker never ready is killed at ready_timeout and restarted with backoff")
    func readyTimeout() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--readiness", "notify", "--ready-timeout", "500ms",
                                                "--backoff-initial", "1s"], worker: [])
        #expect(eventually(timeout: 15) { supervisor.log.components(separatedBy: "worker 0 started").count > 3 }, "\(supervisor.log)")
        #expect(supervisor.log.contains("was not ready within 500ms (ready_timeout); killing it"), "\(supervisor.log)")
        #expect(supervisor.log.contains("restarting worker 0 in "), "\(supervisor.log)")
    }

    @Test("a worker that grows past max_memory is recycled gracefully")
    func memoryCeiling() throws {
        let supervisor = try SupervisorProcess(["--workers", "1", "--readiness", "notify", "--max-memory", "60M",
                                                "--health-interval", "300ms"], worker: ["--notify", "--grow", "100"])
        #expect(eventually(timeout: 5) { supervisor.startedWorkers.count >= 2 }, "\(supervisor.log)")
        let first = supervisor.startedWorkers[0]
        #expect(supervisor.log.contains("worker 0 (pid \(first)) uses"), "\(supervisor.log)")
        #expect(supervisor.log.contains("over max_memory (60 MiB); recycling it in"), "\(supervisor.log)")
        #expect(eventually { supervisor.records.contains("\(first) signal 15") }, "recycled with SIGTERM, not killed: \(supervisor.records)")
    }

    @Test("systemd's watchdog hears WATCHDOG=1 every half interval while healthy, and nothing once no worker can get ready")
    func supervisorWatchdog() throws {
        let directory = Paths.temporaryDirectory()
        let recorder = try NotifyRecorder(directory: directory)
        let healthy = try SupervisorProcess(["--workers", "1"], worker: [],
                                            environment: ["NOTIFY_SOCKET": recorder.socketPath, "WATCHDOG_USEC": "400000"], directory: directory)
        #expect(eventually { recorder.messages.contains("READY=1") })
        // Pings start with the supervisor, READY=1 once the worker accepts: count from READY=1.
        let atReady = recorder.messages.filter { $0 == "WATCHDOG=1" }.count
        usleep(1_100_000)
        let pings = recorder.messages.filter { $0 == "WATCHDOG=1" }.count - atReady
        #expect((4...7).contains(pings), "every 200 ms over ~1.1 s: \(pings)")
        healthy.signal(SIGTERM)
        #expect(healthy.waitForExit(timeout: 10) == 0)

        let directory2 = Paths.temporaryDirectory()
        let recorder2 = try NotifyRecorder(directory: directory2)
        let hopeless = try SupervisorProcess(["--workers", "1", "--readiness", "notify", "--unready-timeout", "1s", "--backoff-max", "200ms", "--backoff-initial", "100ms"],
                                             worker: ["--exit", "1"],
                                             environment: ["NOTIFY_SOCKET": recorder2.socketPath, "WATCHDOG_USEC": "400000"], directory: directory2)
        #expect(eventually(timeout: 10) { hopeless.log.contains("withholding systemd's watchdog ping") }, "\(hopeless.log)")
        let before = recorder2.messages.filter { $0 == "WATCHDOG=1" }.count
        #expect((3...7).contains(before), "pings until unready_timeout: \(before)")
        usleep(1_000_000)
        #expect(recorder2.messages.filter { $0 == "WATCHDOG=1" }.count == before, "no ping once the pool is hopeless")
    }
}
