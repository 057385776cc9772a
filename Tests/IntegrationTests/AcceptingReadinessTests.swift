import Foundation
import Glibc
import Testing

/// `readiness = accepting` (the default) against real servers: the supervisor sees from /proc when a
/// worker accepts on its inherited socket, settles for `min_ready`, and a broken release fails its reload.
@Suite("Accepting readiness", .serialized, .timeLimit(.minutes(3)))
struct AcceptingReadinessTests {
    static let fixtures = Paths.fixtures
    static let haveUvicorn = Python.canImport("uvicorn") && Python.scriptOnPath("uvicorn")
    static let haveGunicorn = Python.canImport("gunicorn") && Python.scriptOnPath("gunicorn") && haveUvicorn

    /// The JSON status of the supervisor, parsed.
    static func status(_ supervisor: SupervisorProcess) -> [String: Any] {
        let out = supervisor.ctl(["status", "--json"]).out
        return (try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:]
    }

    static func workers(_ supervisor: SupervisorProcess) -> [[String: Any]] { status(supervisor)["workers"] as? [[String: Any]] ?? [] }

    static func readyCount(_ supervisor: SupervisorProcess) -> Int {
        (status(supervisor)["supervisor"] as? [String: Any])?["ready"] as? Int ?? -1
    }

    /// A config file with the default readiness (none named) and `extra` lines in [worker].
    static func config(in directory: String, workers: Int, extra: String = "", health: String = "") -> String {
        let path = directory + "/supervisor.conf"
        let text = "[supervisor]\nworkers = \(workers)\n\n[worker]\n\(extra)" + (health.isEmpty ? "" : "\n[health]\n\(health)")
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    struct Server: CustomStringConvertible, Sendable {
        let name: String
        let command: [String]
        var environment: [String: String] = [:]
        /// Text the evidence must contain ("its child" for gunicorn: the arbiter never accepts).
        var evidence = "accepting on fd 3 (127.0.0.1:"
        var startsAfter: Double = 0
        var needs: Bool = true
        var description: String { name }
    }

    static let servers: [Server] = [
        Server(name: "bundled hyperglass-worker", command: []),
        Server(name: "uvicorn --fd 3 (asyncio), 1 s lifespan startup",
               command: ["uvicorn", "--fd", "3", "--loop", "asyncio", "--app-dir", fixtures, "slow_asgi:app"],
               environment: ["SLOW_STARTUP": "1"], startsAfter: 1, needs: haveUvicorn),
        Server(name: "uvicorn --fd 3 --loop uvloop, 1 s lifespan startup",
               command: ["uvicorn", "--fd", "3", "--loop", "uvloop", "--app-dir", fixtures, "slow_asgi:app"],
               environment: ["SLOW_STARTUP": "1"], startsAfter: 1, needs: haveUvicorn && Python.canImport("uvloop")),
        Server(name: "gunicorn sync -w 2 (systemd socket activation)",
               command: ["gunicorn", "-k", "sync", "-w", "2", "--chdir", ExampleConfig.examples, "wsgi_app:app"],
               evidence: "its child", needs: haveGunicorn),
        Server(name: "gunicorn gthread -w 2",
               command: ["gunicorn", "-k", "gthread", "-w", "2", "--chdir", ExampleConfig.examples, "wsgi_app:app"],
               evidence: "its child", needs: haveGunicorn),
        Server(name: "gunicorn -k uvicorn.workers.UvicornWorker, 1 s lifespan startup",
               command: ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "1", "--chdir", fixtures, "slow_asgi:app"],
               environment: ["SLOW_STARTUP": "1"], evidence: "its child", startsAfter: 1, needs: haveGunicorn),
        Server(name: "Python websockets (config/examples/echo_websockets.py)",
               command: ["/usr/bin/env", "python3", ExampleConfig.examples + "/echo_websockets.py"], needs: Python.canImport("websockets")),
    ]

    @Test("under the default readiness each real server is ready once it accepts, not before, with the evidence in status",
          arguments: servers)
    func readyWhenAccepting(server: Server) throws {
        // A case that cannot run here is reported skipped (cancelled), never passed.
        guard server.needs else { try Test.cancel("\(server.name): its Python packages are missing (make test-deps)") }
        let directory = Paths.temporaryDirectory()
        let config = Self.config(in: directory, workers: 1)
        var arguments = ["--config", config]
        if !server.command.isEmpty { arguments += ["--"] + server.command }
        let supervisor = try SupervisorProcess(arguments, worker: nil, environment: server.environment, directory: directory)
        let started = Date()
        #expect(eventually(timeout: 20) { Self.readyCount(supervisor) == 1 }, "\(supervisor.log)")
        let readyAfter = Date().timeIntervalSince(started)
        // Ready must mean serving: the first request right now is answered at once.
        let asked = Date()
        let body = httpGet(port: supervisor.port, path: "/health", timeout: 5) ?? httpGet(port: supervisor.port, timeout: 5)
        let answeredIn = Date().timeIntervalSince(asked)
        #expect(body != nil, "\(supervisor.log)")
        #expect(answeredIn < 0.5, "ready, but the first request took \(answeredIn) s")
        #expect(readyAfter >= server.startsAfter, "ready after \(readyAfter) s, before its startup finished")
        let worker = Self.workers(supervisor).first ?? [:]
        let evidence = worker["ready_evidence"] as? String ?? ""
        #expect(evidence.contains(server.evidence), "evidence: \(evidence)")
        #expect(supervisor.log.contains("worker 0 ready (pid"), "\(supervisor.log)")
        #expect(supervisor.ctl(["status"]).out.contains("readiness   accepting, min_ready 3s"))
        print("\(server): ready \(String(format: "%.2f", readyAfter)) s after start, first request \(String(format: "%.0f", answeredIn * 1000)) ms: \(evidence)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 20) == 0, "\(supervisor.log)")
    }

    /// Reloads a running pool of the bundled worker to `command` under load; the reload must fail.
    /// `loseRequests`: a successor that takes connections and drops them while it starts (accept-then-close)
    /// fails some requests before the roll stops; what matters then is the refusal and the old workers.
    func reloadToBrokenRelease(_ command: String, cause: String, extra: String = "", health: String = "", loseRequests: Bool = false) throws {
        let directory = Paths.temporaryDirectory()
        let config = Self.config(in: directory, workers: 2, extra: extra, health: health)
        let supervisor = try SupervisorProcess(["--config", config], worker: nil, directory: directory)
        #expect(eventually(timeout: 10) { Self.readyCount(supervisor) == 2 }, "\(supervisor.log)")
        let before = Set(supervisor.liveWorkers)
        _ = Self.config(in: directory, workers: 2, extra: extra + "command = \(command)\n", health: health)
        let load = try ReloadTests.Load(port: supervisor.port, rate: 200, keepalive: 2)
        usleep(300_000)
        let started = Date()
        let reload = supervisor.ctl(["reload", "--wait"])
        let elapsed = Date().timeIntervalSince(started)
        usleep(300_000)
        let counts = load.finish()
        #expect(reload.status == 1, "\(reload) \(supervisor.log)")
        #expect(reload.err.contains("reload failed at worker 0 (1/2): \(cause)"), "\(reload)")
        #expect(Set(supervisor.liveWorkers) == before, "the old workers must serve throughout: \(supervisor.log)")
        #expect(!supervisor.log.contains("draining pid"), "no old worker was drained: \(supervisor.log)")
        #expect(loseRequests || counts["new_failed"] as? Int == 0 && counts["keepalive_resets"] as? Int == 0, "\(counts)")
        #expect((counts["new_ok"] as? Int ?? 0) > 20, "\(counts)")
        #expect(supervisor.ctl(["status"]).out.contains("last roll   FAILED: reload failed at worker 0"))
        print("reload to \(command): failed in \(String(format: "%.2f", elapsed)) s: \(reload.err.trimmingCharacters(in: .newlines)); load \(counts)")
    }

    @Test("default configuration: a reload to /bin/sh -c 'exit 3' fails, the old workers serve throughout, 0 failed requests")
    func reloadToExit3() throws {
        try reloadToBrokenRelease("/bin/sh -c 'exit 3'", cause: "exit status 3 before ready (it had not accepted on its listening sockets)")
    }

    @Test("default configuration: a reload to an app that exits 0 two seconds after starting, never accepting, fails")
    func reloadToExit0Later() throws {
        try reloadToBrokenRelease("\(Self.fixtures)/exit_later.py --after 2 --status 0",
                                  cause: "exit status 0 before ready (it had not accepted on its listening sockets)")
    }

    @Test("default configuration: a reload to an app that serves, then exits 0 two seconds after starting, fails within min_ready")
    func reloadToServingThenExit0() throws {
        try reloadToBrokenRelease("\(Self.fixtures)/exit_later.py --serve --after 2 --status 0", cause: "exit status 0 ")
    }

    @Test("default configuration: a reload to a worker whose child registers fd 3 in an epoll set and hangs fails (ready_timeout 4s here)")
    func reloadToChildThatRegistersAndHangs() throws {
        try reloadToBrokenRelease("\(Self.fixtures)/non_serving.py child-epoll", cause: "not ready within 4s", extra: "ready_timeout = 4s\n")
    }

    @Test("default configuration: a reload to an asyncio server whose loop blocks after start_server fails (ready_timeout 4s here)")
    func reloadToBlockedLoop() throws {
        try reloadToBrokenRelease("\(Self.fixtures)/non_serving.py blocked-loop", cause: "not ready within 4s", extra: "ready_timeout = 4s\n")
    }

    @Test("default configuration: a reload to a worker that polls fd 3 and never accepts fails once the new workers serve alone (backlog_wait), rolls back, and no request fails")
    func reloadToPollThatNeverAccepts() throws {
        let directory = Paths.temporaryDirectory()
        let config = Self.config(in: directory, workers: 2)
        let supervisor = try SupervisorProcess(["--config", config], worker: nil, directory: directory)
        #expect(eventually(timeout: 10) { Self.readyCount(supervisor) == 2 }, "\(supervisor.log)")
        _ = Self.config(in: directory, workers: 2, extra: "command = \(Self.fixtures)/non_serving.py poll-no-accept\n")
        let load = try ReloadTests.Load(port: supervisor.port, rate: 100, keepalive: 2)
        usleep(300_000)
        let started = Date()
        let reload = supervisor.ctl(["reload", "--wait"])
        let elapsed = Date().timeIntervalSince(started)
        #expect(reload.status == 1, "\(reload) \(supervisor.log)")
        #expect(reload.err.contains("reload failed: the new workers do not take connections ("), "\(reload)")
        #expect(reload.err.contains("waiting unaccepted, the oldest for"), "\(reload)")
        // The rollback's workers serve again: the bundled worker in both slots, nothing of the broken release left.
        #expect(eventually(timeout: 15) {
            let workers = supervisor.liveWorkers
            return workers.count == 2 && workers.allSatisfy { ProcFS.commandLine(of: $0).contains("hyperglass-worker") }
        }, "\(supervisor.log)")
        let counts = load.finish()
        #expect(counts["new_failed"] as? Int == 0 && counts["keepalive_resets"] as? Int == 0, "\(counts)")
        #expect((counts["new_ok"] as? Int ?? 0) > 20, "\(counts)")
        #expect(httpGet(port: supervisor.port, timeout: 5) != nil)
        #expect(supervisor.ctl(["health"]).status == 0, "\(supervisor.ctl(["health"]))")
        print("reload to poll-no-accept: refused in \(String(format: "%.2f", elapsed)) s: \(reload.err.trimmingCharacters(in: .newlines)); load \(counts)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 20) == 0, "\(supervisor.log)")
    }

    @Test("workers that poll fd 3 and never accept look ready from /proc, but health and /readyz say no once a connection waits backlog_wait, naming the listener")
    func healthSeesConnectionsNobodyTakes() throws {
        let metricsPort = freePort()
        let supervisor = try SupervisorProcess(["--workers", "2", "--backlog-wait", "1s", "--metrics-bind", "127.0.0.1:\(metricsPort)",
                                                "--", "\(Self.fixtures)/non_serving.py", "poll-no-accept"], worker: nil)
        #expect(eventually(timeout: 10) { Self.readyCount(supervisor) == 2 }, "\(supervisor.log)")
        #expect(supervisor.ctl(["health"]).status == 0, "nothing waits yet: \(supervisor.ctl(["health"]))")
        #expect(ObservabilityTests.get(port: metricsPort, path: "/readyz")?.status == 200)
        // Three clients connect and send a request; the kernel queues them, no worker takes them.
        let clients = (0..<3).map { _ in ObservabilityTests.connectLoopback(port: supervisor.port, timeout: 5) }
        defer { clients.forEach { close($0) } }
        for fd in clients { _ = send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, Int32(MSG_NOSIGNAL)) }
        var health = supervisor.ctl(["health"])
        #expect(eventually(timeout: 5) { health = supervisor.ctl(["health"]); return health.status == 1 }, "\(health) \(supervisor.log)")
        #expect(health.out.contains("unhealthy: 3 connections on 127.0.0.1:\(supervisor.port) waiting unaccepted, the oldest for"), "\(health)")
        let readyz = ObservabilityTests.get(port: metricsPort, path: "/readyz")
        #expect(readyz?.status == 503 && readyz?.body.contains("waiting unaccepted") == true, "\(String(describing: readyz))")
        #expect(ObservabilityTests.get(port: metricsPort, path: "/livez")?.status == 200, "alive: the supervisor is fine, its workers are not")
        let status = supervisor.ctl(["status", "--json"]).out
        #expect(status.contains("\"waiting\":3"), "\(status)")
        #expect(supervisor.log.contains("3 connections on 127.0.0.1:\(supervisor.port) waiting unaccepted"), "\(supervisor.log)")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 20) == 0, "\(supervisor.log)")
    }

    @Test("a reload to a worker that accepts and closes every connection fails under readiness = http, the setting that catches it")
    func reloadToAcceptThenClose() throws {
        try reloadToBrokenRelease("\(Self.fixtures)/non_serving.py accept-close", cause: "not ready within 4s",
                                  extra: "readiness = http\nready_timeout = 4s\n", health: "health_path = /health\n", loseRequests: true)
    }

    @Test("a ready worker whose /health turns bad is replaced within health_interval × health_failures + 1 s, health_grace notwithstanding")
    func unhealthyReplacedPromptly() throws {
        let directory = Paths.temporaryDirectory()
        let supervisor = try SupervisorProcess(["--workers", "1", "--health-path", "/health", "--health-interval", "500ms",
                                                "--health-failures", "3", "--health-grace", "60s"],
                                               worker: ["--health-dir", directory], directory: directory)
        #expect(eventually(timeout: 10) { Self.readyCount(supervisor) == 1 }, "\(supervisor.log)")
        usleep(1_000_000)
        let sick = try #require(supervisor.liveWorkers.first)
        let turned = Date()
        _ = FileManager.default.createFile(atPath: directory + "/unhealthy-\(sick)", contents: nil)
        #expect(eventually(timeout: 10) { supervisor.log.contains("draining pid \(sick)") }, "\(supervisor.log)")
        let replacedIn = Date().timeIntervalSince(turned)
        #expect(replacedIn <= 0.5 * 3 + 1, "replaced \(replacedIn) s after /health turned bad")
        #expect(supervisor.log.contains("is unhealthy: 3/3 health probes failed (last: HTTP 500)"), "\(supervisor.log)")
        print("unhealthy worker replaced \(String(format: "%.2f", replacedIn)) s after /health turned bad (bound 2.5 s)")
    }

    /// The latency fixture: requests on new connections, each timed, until `finish()`.
    final class Latency {
        let process = Process()
        private let input = Pipe(), output = Pipe()

        init(port: Int, rate: Int) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", Paths.fixtures + "/latency_client.py", "--port", "\(port)", "--rate", "\(rate)"]
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            _ = output.fileHandleForReading.availableData
        }

        /// Requests sent from now on count as "during the roll".
        func mark() { input.fileHandleForWriting.write(Data("roll\n".utf8)) }

        func finish() -> [String: Any] {
            try? input.fileHandleForWriting.close()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            if !eventually(timeout: 20, { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
            return (try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]) ?? ["unreadable": last]
        }

        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
    }

    /// Rolls 2 uvicorn workers whose startup takes 2 s under `readiness`; the latency figures.
    func rollSlowUvicorn(_ options: [String]) throws -> (counts: [String: Any], rollSeconds: Double, status: Int32) {
        let directory = Paths.temporaryDirectory()
        let supervisor = try SupervisorProcess(["--workers", "2"] + options + ["--", "uvicorn", "--fd", "3", "--app-dir", Self.fixtures, "slow_asgi:app"],
                                               worker: nil, environment: ["SLOW_STARTUP": "2"], directory: directory)
        #expect(eventually(timeout: 20) { Self.readyCount(supervisor) == 2 && httpGet(port: supervisor.port) != nil }, "\(supervisor.log)")
        usleep(500_000)
        let latency = try Latency(port: supervisor.port, rate: 40)
        usleep(1_500_000)
        latency.mark()
        let started = Date()
        let restart = supervisor.ctl(["restart", "all", "--wait"])
        let rollSeconds = Date().timeIntervalSince(started)
        // Requests sent just after the roll still meet whatever it left behind.
        usleep(2_500_000)
        let counts = latency.finish()
        supervisor.signal(SIGTERM)
        _ = supervisor.waitForExit(timeout: 30)
        return (counts, rollSeconds, restart.status)
    }

    @Test("an unmodified uvicorn --fd 3 app that takes 2 s to start is rolled with no request waiting more than ~100 ms longer than usual",
          .enabled(if: haveUvicorn, "needs uvicorn on PATH: make test-deps"))
    func slowUvicornRollLatency() throws {
        let accepting = try rollSlowUvicorn([])
        let exec = try rollSlowUvicorn(["--readiness", "exec", "--min-ready", "0"])
        print("uvicorn 2 s startup, 2 workers, restart all: accepting (default, min_ready 3s): roll \(String(format: "%.2f", accepting.rollSeconds)) s, \(accepting.counts)")
        print("uvicorn 2 s startup, 2 workers, restart all: exec, min_ready 0 (the old default): roll \(String(format: "%.2f", exec.rollSeconds)) s, \(exec.counts)")
        #expect(accepting.status == 0)
        #expect(accepting.counts["failed"] as? Int == 0, "\(accepting.counts)")
        let baseline = accepting.counts["baseline_max_ms"] as? Double ?? .infinity
        let during = accepting.counts["roll_max_ms"] as? Double ?? .infinity
        // ~100 ms is the goal; the bound leaves room for a loaded 2-core test machine.
        #expect(during - baseline < 250, "worst request during the roll \(during) ms vs \(baseline) ms before it")
        // The same roll under exec readiness is printed beside it, not judged: whether requests wait for uvicorn's
        // startup then depends on which old worker the kernel hands them to while the other drains.
    }
}
