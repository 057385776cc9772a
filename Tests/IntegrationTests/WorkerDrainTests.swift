import Foundation
import Glibc
import Testing

/// Whole pools of real servers under the real `hyperglass start`: the bundled worker, a Python `websockets`
/// server, uvicorn `--fd 3` and gunicorn. A real WebSocket client (Python `websockets`) and a slow HTTP request
/// are connected through the supervisor's socket when SIGTERM arrives; the client reports the close code it
/// received and how the slow request ended.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct WorkerDrainTests {
    static let slowPath = "/sleep?ms=1500"

    @Test("4 bundled workers: echo through the supervisor, SIGTERM closes the WebSocket with 1001, the slow request ends 200, exit 0, nothing left")
    func bundledWorkerDrain() throws {
        let supervisor = try SupervisorProcess(["--workers", "4", "--readiness", "notify", "--graceful-timeout", "10s"], worker: nil)
        let pool = try #require(ServingPool(supervisor, workers: 4))
        defer { pool.killLeftovers() }
        let outcome = try #require(try pool.drain("bundled hyperglass-worker x4", wsPath: "/ws"))
        outcome.expectGracefulDrain(closeCode: 1001)
        #expect(outcome.exitStatus == 0, "\(supervisor.log)")
        #expect(pool.leftovers.isEmpty, "still alive: \(pool.leftovers)")
    }

    @Test("4 Python websockets workers from config/websockets-worker.conf drain the same way: 1001, 200, exit 0, nothing left",
          .enabled(if: Python.canImport("websockets"), "needs Python's websockets (make deps)"))
    func pythonWebsocketsWorkerDrain() throws {
        let directory = Paths.temporaryDirectory()
        let config = try ExampleConfig.prepare("websockets-worker.conf", in: directory)
        let supervisor = try SupervisorProcess(["--config", config, "--workers", "4", "--graceful-timeout", "10s"], worker: nil, directory: directory)
        let pool = try #require(ServingPool(supervisor, workers: 4))
        defer { pool.killLeftovers() }
        let outcome = try #require(try pool.drain("Python websockets x4", wsPath: "/"))
        outcome.expectGracefulDrain(closeCode: 1001)
        #expect(outcome.exitStatus == 0, "\(supervisor.log)")
        #expect(pool.leftovers.isEmpty, "still alive: \(pool.leftovers)")
    }

    @Test("uvicorn --fd 3: HTTP 200 through the supervisor, SIGTERM closes WebSockets with 1012 (uvicorn's own code), exit 0, nothing left",
          .enabled(if: Python.canImport("uvicorn") && Python.scriptOnPath("uvicorn") && Python.canImport("websockets"),
                   "needs uvicorn (on PATH) and websockets: make deps"))
    func uvicornSmoke() throws {
        let supervisor = try SupervisorProcess(["--workers", "2", "--readiness", "notify", "--graceful-timeout", "10s", "--",
                                                "uvicorn", "--fd", "3", "--lifespan", "on", "--app-dir", ExampleConfig.examples, "asgi_app:app"],
                                               worker: nil)
        let pool = try #require(ServingPool(supervisor, workers: 2))
        defer { pool.killLeftovers() }
        #expect(httpGet(port: supervisor.port, path: "/")?.hasPrefix("hello from asgi_app ") == true)
        let outcome = try #require(try pool.drain("uvicorn --fd 3 x2", wsPath: "/ws"))
        // A checked fact for docs/workers.md and config/uvicorn.conf: uvicorn says "service restart", not "going away".
        outcome.expectGracefulDrain(closeCode: 1012)
        #expect(outcome.exitStatus == 0, "\(supervisor.log)")
        // Another: uvicorn re-raises SIGTERM on itself once drained, so it ends killed by SIGTERM, not exit 0.
        #expect(supervisor.log.contains("stopped: killed by SIGTERM"), "\(supervisor.log)")
        #expect(pool.leftovers.isEmpty, "still alive: \(pool.leftovers)")
    }

    @Test("uvicorn from config/uvicorn.conf: the example app closes its WebSockets with 1001 before uvicorn's 1012",
          .enabled(if: Python.canImport("uvicorn") && Python.scriptOnPath("uvicorn") && Python.canImport("websockets"),
                   "needs uvicorn (on PATH) and websockets: make deps"))
    func uvicornConfigSendsGoingAway() throws {
        let directory = Paths.temporaryDirectory()
        let config = try ExampleConfig.prepare("uvicorn.conf", in: directory)
        let supervisor = try SupervisorProcess(["--config", config, "--workers", "2", "--graceful-timeout", "10s"], worker: nil, directory: directory)
        let pool = try #require(ServingPool(supervisor, workers: 2))
        defer { pool.killLeftovers() }
        let outcome = try #require(try pool.drain("uvicorn.conf x2", wsPath: "/ws"))
        outcome.expectGracefulDrain(closeCode: 1001)
        #expect(outcome.exitStatus == 0, "\(supervisor.log)")
        #expect(pool.leftovers.isEmpty, "still alive: \(pool.leftovers)")
    }

    @Test("gunicorn from config/gunicorn.conf (asgi worker): READY=1 from the arbiter, 1001 via the app, slow request 200, exit 0, nothing left",
          .enabled(if: Python.canImport("gunicorn.workers.gasgi") && Python.scriptOnPath("gunicorn") && Python.canImport("websockets"),
                   "needs a gunicorn with its asgi worker class, on PATH, and websockets: make deps"))
    func gunicornAsgiDrain() throws {
        let directory = Paths.temporaryDirectory()
        let config = try ExampleConfig.prepare("gunicorn.conf", in: directory)
        let supervisor = try SupervisorProcess(["--config", config, "--workers", "2", "--graceful-timeout", "10s"], worker: nil, directory: directory)
        let pool = try #require(ServingPool(supervisor, workers: 2))
        defer { pool.killLeftovers() }
        // Each slot is an arbiter with gunicorn workers of its own, in the arbiter's process group.
        #expect(eventually { ProcFS.members(ofGroups: pool.groups).count >= 6 }, "2 arbiters x (1 + 2 workers)")
        let outcome = try #require(try pool.drain("gunicorn.conf x2", wsPath: "/ws"))
        outcome.expectGracefulDrain(closeCode: 1001)
        #expect(outcome.exitStatus == 0, "\(supervisor.log)")
        #expect(pool.leftovers.isEmpty, "still alive: \(pool.leftovers)")
    }

    @Test("gunicorn serves the supervisor's socket only when LISTEN_PID is its own pid; a forking wrapper makes it bind its own",
          .enabled(if: Python.canImport("gunicorn") && Python.scriptOnPath("gunicorn"), "gunicorn is not installed (on PATH): pip install gunicorn, or make deps"))
    func gunicornHonoursListenPID() throws {
        func gunicorn(fallback: String) -> [String] {
            ["gunicorn", "--workers", "1", "--bind", "unix:" + fallback, "--chdir", ExampleConfig.examples, "wsgi_app:app"]
                // gunicorn 25.1+ opens a control socket every arbiter of the pool would share.
                + (Python.canImport("gunicorn.ctl") ? ["--no-control-socket"] : [])
        }
        do {
            let directory = Paths.temporaryDirectory()
            let fallback = directory + "/fallback.sock"
            let supervisor = try SupervisorProcess(["--workers", "2", "--readiness", "notify", "--graceful-timeout", "10s", "--"]
                + gunicorn(fallback: fallback), worker: nil, directory: directory)
            let pool = try #require(ServingPool(supervisor, workers: 2))
            defer { pool.killLeftovers() }
            #expect(httpGet(port: supervisor.port, path: "/")?.hasPrefix("hello from wsgi_app ") == true)
            #expect(!FileManager.default.fileExists(atPath: fallback), "gunicorn bound its --bind although it was given fd 3")
            supervisor.signal(SIGTERM)
            #expect(supervisor.waitForExit(timeout: 10) == 0, "\(supervisor.log)")
            #expect(pool.leftovers.isEmpty, "still alive: \(pool.leftovers)")
        }
        // `sh -c '...; exit 0'` forks gunicorn: LISTEN_PID is the shell's pid, so gunicorn ignores LISTEN_FDS.
        let directory = Paths.temporaryDirectory()
        let fallback = directory + "/fallback.sock"
        let wrapped = gunicorn(fallback: fallback).map { $0.contains("/") || $0.contains(":") ? "'\($0)'" : $0 }.joined(separator: " ") + "; exit 0"
        let supervisor = try SupervisorProcess(["--workers", "1", "--graceful-timeout", "10s", "--", "/bin/sh", "-c", wrapped],
                                               worker: nil, directory: directory)
        #expect(eventually(timeout: 8) { FileManager.default.fileExists(atPath: fallback) }, "\(supervisor.log)")
        let groups = Set(supervisor.liveWorkers)
        defer { for pid in ProcFS.members(ofGroups: groups) { kill(pid, SIGKILL) } }
        #expect(httpGet(port: supervisor.port, path: "/", timeout: 1) == nil, "nothing should accept on the supervisor's socket")
        supervisor.signal(SIGTERM)
        #expect(supervisor.waitForExit(timeout: 10) == 0, "\(supervisor.log)")
        #expect(eventually(timeout: 3) { ProcFS.members(ofGroups: groups).isEmpty })
    }
}

/// A supervisor whose pool is serving, with the process groups of its workers remembered for the final check.
private struct ServingPool {
    let supervisor: SupervisorProcess
    /// Each worker leads its own process group; a worker's children (gunicorn's) stay in it.
    let groups: Set<Int32>

    /// Waits until the supervisor reports `workers` ready and the pool answers `/health`; nil (with the log) if not.
    init?(_ supervisor: SupervisorProcess, workers: Int) {
        self.supervisor = supervisor
        let ready = eventually(timeout: 8) {
            supervisor.log.contains("\(workers)/\(workers) workers ready") && supervisor.liveWorkers.count == workers
                && httpGet(port: supervisor.port, path: "/health", timeout: 1) != nil
        }
        groups = Set(supervisor.liveWorkers)
        if !ready {
            Issue.record("the pool did not become ready: \(supervisor.log)")
            for pid in ProcFS.members(ofGroups: groups) { kill(pid, SIGKILL) }
            return nil
        }
    }

    /// Every process of the pool still alive, by pid.
    var leftovers: [Int32] {
        _ = eventually(timeout: 2) { ProcFS.members(ofGroups: groups).isEmpty }
        return Set(ProcFS.members(ofGroups: groups) + groups.filter(ProcFS.isAlive)).sorted()
    }

    func killLeftovers() {
        for pid in ProcFS.members(ofGroups: groups) { kill(pid, SIGKILL) }
    }

    /// Connects the client, SIGTERMs the supervisor once the slow request is in flight, and collects what happened.
    func drain(_ label: String, wsPath: String) throws -> DrainOutcome? {
        let client = try DrainClient(port: supervisor.port, wsPath: wsPath, slowPath: WorkerDrainTests.slowPath, directory: supervisor.directory)
        guard eventually(timeout: 8, { client.armed || client.result != nil }), client.armed else {
            Issue.record("the client never got its WebSocket and slow request going: \(client.result ?? [:]) \(client.log) \(supervisor.log)")
            return nil
        }
        let signalled = Date()
        supervisor.signal(SIGTERM)
        let status = supervisor.waitForExit(timeout: 10)
        let stopped = Date().timeIntervalSince(signalled)
        _ = eventually(timeout: 5) { client.result != nil }
        let result = client.result ?? [:]
        print("\(label): close \(result["close_code"] ?? "none") after \(result["close_after_armed"] ?? "-") s, "
            + "slow request \(result["slow_status"] ?? "none") after \(result["slow_after_armed"] ?? "-") s, "
            + "supervisor exit \(status.map(String.init) ?? "none") after \(String(format: "%.3f", stopped)) s (times from SIGTERM)")
        return DrainOutcome(result: client.result ?? [:], exitStatus: status, stopSeconds: status == nil ? nil : stopped,
                            context: "client: \(client.log)\nsupervisor: \(supervisor.log)")
    }
}

/// What the client saw across the drain, and how the supervisor ended.
private struct DrainOutcome {
    let result: [String: Any]
    let exitStatus: Int32?
    let stopSeconds: Double?
    let context: String

    var closeCode: Int? { result["close_code"] as? Int }
    var slowAfterArmed: Double? { result["slow_after_armed"] as? Double }
    var closeAfterArmed: Double? { result["close_after_armed"] as? Double }

    /// Echo worked; the WebSocket got `closeCode` promptly; the slow request, in flight at SIGTERM, still ended 200.
    func expectGracefulDrain(closeCode expected: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result["error"] is NSNull, "client error: \(result["error"] ?? "no result") \(context)", sourceLocation: sourceLocation)
        #expect(result["echo"] as? Bool == true, "echo through the supervisor", sourceLocation: sourceLocation)
        #expect(closeCode == expected, "close code \(closeCode.map(String.init) ?? "none"), expected \(expected): \(context)", sourceLocation: sourceLocation)
        #expect(result["slow_status"] as? Int == 200, "slow request: \(result["slow_status"] ?? "no status") \(context)", sourceLocation: sourceLocation)
        #expect((result["slow_body"] as? String)?.contains("slept 1500 ms") == true, sourceLocation: sourceLocation)
        // It was sent ~0.3 s before SIGTERM and takes 1.5 s: it ended well after the signal, so the drain waited for it.
        #expect((slowAfterArmed ?? 0) >= 0.8, "slow request ended \(slowAfterArmed ?? -1) s after SIGTERM", sourceLocation: sourceLocation)
        // The WebSocket is closed as the drain starts, not when the slow request finally lets the worker go.
        if let close = closeAfterArmed, let slow = slowAfterArmed {
            #expect(close < slow, "WebSocket closed \(close) s after SIGTERM, slow request ended at \(slow) s", sourceLocation: sourceLocation)
        }
        if let seconds = stopSeconds {
            #expect(seconds < 6, "the supervisor took \(seconds) s to stop", sourceLocation: sourceLocation)
        }
    }
}

/// `Fixtures/ws_drain_client.py` as a process, killed by pid when the test lets go of it.
private final class DrainClient {
    let output: String
    let logPath: String
    private let process = Process()

    init(port: Int, wsPath: String, slowPath: String, directory: String) throws {
        output = directory + "/client.json"
        logPath = directory + "/client.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Paths.fixtures + "/ws_drain_client.py", "--port", String(port), "--out", output,
                             "--ws-path", wsPath, "--slow-path", slowPath, "--timeout", "12"]
        process.standardOutput = FileHandle(forWritingAtPath: logPath)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
    }

    var armed: Bool { FileManager.default.fileExists(atPath: output + ".armed") }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var result: [String: Any]? {
        guard let data = FileManager.default.contents(atPath: output) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// The shipped configs in config/, made runnable from this checkout: their example apps live in
/// /etc/hyperglass-supervisor/examples once installed, and in config/examples here.
enum ExampleConfig {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
    static let examples = repository + "/config/examples"

    /// Writes config/NAME into `directory` with the installed example path pointed at this checkout; its path.
    static func prepare(_ name: String, in directory: String) throws -> String {
        let text = try String(contentsOfFile: repository + "/config/" + name, encoding: .utf8)
        #expect(text.contains("/etc/hyperglass-supervisor/examples"), "config/\(name) should run an example app")
        let path = directory + "/" + name
        try text.replacingOccurrences(of: "/etc/hyperglass-supervisor/examples", with: examples).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

enum Python {
    /// Whether `python3 -c 'import MODULE'` succeeds.
    static func canImport(_ module: String) -> Bool {
        runProgram("/usr/bin/env", ["python3", "-c", "import \(module)"]).status == 0
    }

    /// Whether the package's script (`uvicorn`, `gunicorn`) is where the supervisor looks for commands.
    static func scriptOnPath(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }
}
